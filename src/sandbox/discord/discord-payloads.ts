/**
 * Wire shapes of the Discord API objects the emulator sends, built the way
 * Discord documents them (https://discord.com/developers/docs/resources/guild),
 * with every field discord.js reads present so its structures patch cleanly.
 */

/** A role as the emulator keeps it. */
export interface EmulatedRole {
  readonly id: string;
  readonly name: string;
  /** Higher is above; @everyone is 0. */
  position: number;
  /** Permission bit set, as Discord sends it (a decimal string) or a number/bigint. */
  permissions: string | number | bigint;
  /** Bot, booster and integration roles: nobody can assign them. */
  readonly managed?: boolean;
  readonly tags?: Readonly<Record<string, unknown>>;
}

export interface EmulatedUser {
  readonly id: string;
  readonly username: string;
  readonly bot?: boolean;
}

export interface EmulatedMember {
  readonly user: EmulatedUser;
  roles: string[];
  readonly joinedAt: string;
}

/** Permission bits used by the checks (https://discord.com/developers/docs/topics/permissions). */
export const ADMINISTRATOR = 1n << 3n;
export const MANAGE_ROLES = 1n << 28n;

export function userJson(user: EmulatedUser): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    discriminator: "0",
    global_name: null,
    avatar: null,
    public_flags: 0,
    ...(user.bot === true ? { bot: true } : {}),
  };
}

export function roleJson(role: EmulatedRole): Record<string, unknown> {
  return {
    id: role.id,
    name: role.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position: role.position,
    permissions: BigInt(role.permissions).toString(),
    managed: role.managed === true,
    mentionable: false,
    flags: 0,
    ...(role.tags ? { tags: role.tags } : {}),
  };
}

export function memberJson(member: EmulatedMember): Record<string, unknown> {
  return {
    user: userJson(member.user),
    nick: null,
    avatar: null,
    banner: null,
    roles: [...member.roles],
    joined_at: member.joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0,
    pending: false,
    communication_disabled_until: null,
  };
}

export interface GuildShape {
  readonly id: string;
  readonly name: string;
  readonly ownerId: string;
  readonly roles: Iterable<EmulatedRole>;
}

export function guildJson(guild: GuildShape): Record<string, unknown> {
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    splash: null,
    discovery_splash: null,
    owner_id: guild.ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    roles: [...guild.roles].map(roleJson),
    emojis: [],
    stickers: [],
    features: [],
    mfa_level: 0,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    preferred_locale: "en-US",
    public_updates_channel_id: null,
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    safety_alerts_channel_id: null,
  };
}

/** Snowflakes compare as 64-bit integers, not as strings. */
export function compareSnowflakes(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
