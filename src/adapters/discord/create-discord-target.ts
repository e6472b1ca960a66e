import {
  Client,
  DiscordjsError,
  DiscordjsErrorCodes,
  Events,
  GatewayCloseCodes,
  GatewayDispatchEvents,
  GatewayIntentBits,
  MessageFlags,
  Options,
  type Guild,
  type Interaction,
} from "discord.js";
import { z } from "zod";
import type { CheckResult, Clock, PerkAction, PerkTarget, SyncResult } from "../../core/ports.js";
import { classifyDiscordError, isMissingPermissions, missingPermissionFix } from "./classify-discord-error.js";
import { diffMemberRoles } from "./diff-member-roles.js";
import type { EnforceMode } from "./drift-actions.js";
import { ExpectedChanges } from "./expected-changes.js";
import { preflightGuild, roleProblem } from "./preflight.js";

export type { EnforceMode } from "./drift-actions.js";

/** One guild perkbridge manages roles in. */
export interface DiscordGuildConfig {
  readonly id: string;
  readonly enforce: EnforceMode;
}

/** The part of a pino logger the target uses. */
export interface DiscordTargetLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Roles of a member before and after a change; `before` is `null` when the bot did not know them. */
export interface RoleChangeContext {
  readonly before: readonly string[] | null;
  readonly after: readonly string[];
}

export interface DiscordTargetOptions {
  /** The bot token. Never logged. */
  readonly token: string;
  /** Base of the REST API, e.g. `http://127.0.0.1:port/api` for the emulator; default Discord's. */
  readonly restApi?: string;
  readonly guilds: readonly DiscordGuildConfig[];
  /** Roles that appear in some plan for this guild: the only roles perkbridge ever changes or watches. */
  managedRoles(guildId: string): ReadonlySet<string>;
  readonly logger?: DiscordTargetLogger;
  /** A user joined a managed guild (rejoin restore). */
  onMemberJoin?(guildId: string, userId: string): void | Promise<void>;
  /** A user left (or was removed from) a managed guild. */
  onMemberLeave?(guildId: string, userId: string): void | Promise<void>;
  /**
   * Someone other than perkbridge changed a member's plan roles. `added` and
   * `removed` hold plan roles only; see {@link RoleChangeContext} for the full lists.
   */
  onRolesChanged?(guildId: string, userId: string, added: readonly string[], removed: readonly string[], context: RoleChangeContext): void | Promise<void>;
  /** Text of the ephemeral answer to `/perks`; the command is registered only when this is given. */
  describePerks?(userId: string, guildId: string): Promise<string>;
  readonly clock?: Clock;
  /** How long an own role change is expected to echo back; default 10 s. */
  readonly expectedChangeTtlMs?: number;
  /** Cached members per guild (the bot's own member is always kept); default 1000. */
  readonly memberCacheSize?: number;
  /** Delay before another login after a failed one; default 60 s. */
  readonly reconnectDelayMs?: number;
}

/** A PerkTarget with the Discord-only extras. */
export interface DiscordTarget extends PerkTarget {
  readonly name: "discord";
  /** True once the client is logged in and has received every guild. */
  readonly connected: boolean;
}

const PERKS_COMMAND = { name: "perks", description: "Show the perks your membership gives you and when they end" };

const INTENT_FIX = "enable the Server Members Intent in the Discord Developer Portal → your app → Bot → Privileged Gateway Intents";
const TOKEN_FIX = "reset the bot token in the Discord Developer Portal → your app → Bot and update it in the perkbridge configuration";

const memberEventSchema = z.object({
  guild_id: z.string(),
  user: z.object({ id: z.string() }),
  roles: z.array(z.string()).optional(),
});

interface ConnectionFailure {
  readonly detail: string;
  readonly fix: string;
}

const systemClock: Clock = { now: () => Date.now() };
const silentLogger: DiscordTargetLogger = { debug() {}, info() {}, warn() {}, error() {} };

function auditReason(action: PerkAction): string {
  // Member keys are `source:id`; the id is what an admin can search for on the billing side.
  const members = action.members.map((key) => key.slice(key.indexOf(":") + 1)).join(", ");
  const reason = `perkbridge: ${action.reason}${members ? ` (${members})` : ""}`;
  return reason.length > 512 ? `${reason.slice(0, 511)}…` : reason;
}

/**
 * The Discord lane: grants and revokes plan roles with the real discord.js
 * client, reports role edits by humans and members joining, answers `/perks`,
 * and checks the bot's permissions for `perkbridge check`.
 */
export async function createDiscordTarget(options: DiscordTargetOptions): Promise<DiscordTarget> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const expected = new ExpectedChanges(clock, options.expectedChangeTtlMs ?? 10_000);
  const guildConfigs = new Map(options.guilds.map((guild) => [guild.id, guild]));
  const memberCacheSize = options.memberCacheSize ?? 1000;
  const reconnectDelayMs = options.reconnectDelayMs ?? 60_000;
  /** `guild:role` refused with 50013: further actions fail here, sparing Discord an invalid-request flood. */
  const blocked = new Map<string, SyncResult>();
  const commandChecks = new Map<string, CheckResult>();

  let client: Client | null = null;
  let ready = false;
  let stopped = false;
  let failure: ConnectionFailure | null = null;
  let reconnectTimer: NodeJS.Timeout | null = null;

  function buildClient(): { created: Client; closeFailure(): ConnectionFailure | null } {
    const created = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMembers],
      rest: options.restApi === undefined ? {} : { api: options.restApi },
      // Bounded caches keep memory flat in a guild of 100k members; members are fetched on demand.
      makeCache: Options.cacheWithLimits({
        ...Options.DefaultMakeCacheSettings,
        MessageManager: 0,
        PresenceManager: 0,
        ReactionManager: 0,
        ThreadMemberManager: 0,
        VoiceStateManager: 0,
        GuildMemberManager: { maxSize: memberCacheSize, keepOverLimit: (member) => member.id === member.client.user.id },
        UserManager: { maxSize: memberCacheSize, keepOverLimit: (user) => user.id === user.client.user.id },
      }),
      sweepers: { ...Options.DefaultSweeperSettings },
    });
    let closeFailure: ConnectionFailure | null = null;
    // Classified by close code, the only stable signal: discord.js rejects login with a plain Error here.
    created.on(Events.ShardDisconnect, (event) => {
      if (event.code === GatewayCloseCodes.DisallowedIntents) closeFailure = { detail: "Discord refused the Server Members intent (close 4014)", fix: INTENT_FIX };
      else if (event.code === GatewayCloseCodes.AuthenticationFailed) closeFailure = { detail: "Discord refused the bot token (close 4004)", fix: TOKEN_FIX };
      else closeFailure = { detail: `the Discord gateway closed the connection (close ${event.code})`, fix: "check the bot's settings in the Discord Developer Portal" };
      logger.warn({ code: event.code }, "discord gateway closed for good");
    });
    created.on(Events.ShardError, (error) => logger.warn({ err: error.message }, "discord gateway error"));
    created.on(Events.Error, (error) => logger.error({ err: error.message }, "discord client error"));
    created.ws.on(GatewayDispatchEvents.GuildMemberAdd, (data: unknown) => onMemberEvent("add", data));
    created.ws.on(GatewayDispatchEvents.GuildMemberRemove, (data: unknown) => onMemberEvent("remove", data));
    created.ws.on(GatewayDispatchEvents.GuildMemberUpdate, (data: unknown) => onMemberEvent("update", data));
    created.on(Events.InteractionCreate, (interaction) => void onInteraction(interaction));
    return { created, closeFailure: () => closeFailure };
  }

  function callback(what: string, run: () => void | Promise<void>): void {
    Promise.resolve()
      .then(run)
      .catch((error: unknown) => logger.error({ err: error instanceof Error ? error.message : String(error) }, `discord ${what} handler failed`));
  }

  function onMemberEvent(kind: "add" | "remove" | "update", raw: unknown): void {
    const parsed = memberEventSchema.safeParse(raw);
    if (!parsed.success || !client) return;
    const { guild_id: guildId, user, roles } = parsed.data;
    if (!guildConfigs.has(guildId) || user.id === client.user?.id) return;
    if (kind === "add") {
      const join = options.onMemberJoin;
      if (join) callback("member join", () => join(guildId, user.id));
      return;
    }
    if (kind === "remove") {
      const leave = options.onMemberLeave;
      if (leave) callback("member leave", () => leave(guildId, user.id));
      return;
    }
    // The raw dispatch is emitted before discord.js patches its cache: the cached member still holds the old roles.
    const cached = client.guilds.cache.get(guildId)?.members.cache.get(user.id);
    const before = cached && !cached.partial ? [...cached.roles.cache.keys()].filter((id) => id !== guildId) : null;
    const change = diffMemberRoles({ guildId, userId: user.id }, before, roles ?? [], options.managedRoles(guildId), expected);
    const changed = options.onRolesChanged;
    if (change && changed) callback("role change", () => changed(guildId, user.id, change.added, change.removed, { before: change.before, after: change.after }));
  }

  async function onInteraction(interaction: Interaction): Promise<void> {
    const describe = options.describePerks;
    if (!describe || !interaction.isChatInputCommand() || interaction.commandName !== PERKS_COMMAND.name) return;
    const guildId = interaction.guildId;
    try {
      const content = guildId === null ? "Use /perks in the server your membership is for." : await describe(interaction.user.id, guildId);
      await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    } catch (error) {
      logger.error({ err: error instanceof Error ? error.message : String(error) }, "discord /perks reply failed");
    }
  }

  async function registerCommands(logged: Client<true>): Promise<void> {
    if (!options.describePerks) return;
    for (const guildId of guildConfigs.keys()) {
      const name = `discord guild ${guildId}: /perks command`;
      try {
        await logged.application.commands.set([PERKS_COMMAND], guildId);
        commandChecks.set(guildId, { ok: true, name });
      } catch (error) {
        const result = classifyDiscordError(error, { guildId, roleId: "" });
        commandChecks.set(guildId, {
          ok: false,
          name,
          detail: result.kind === "failed" ? result.reason : result.kind,
          fix: "re-invite the bot with the applications.commands scope (OAuth2 URL Generator in the Developer Portal)",
        });
      }
    }
  }

  function scheduleReconnect(): void {
    if (stopped || reconnectTimer) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      void connect();
    }, reconnectDelayMs);
    reconnectTimer.unref();
  }

  async function connect(): Promise<void> {
    if (stopped) return;
    const { created: attempt, closeFailure } = buildClient();
    client = attempt;
    // clientReady fires once every guild of READY has arrived; listen before login so it cannot be missed.
    const allGuilds = new Promise<void>((resolve) => attempt.once(Events.ClientReady, () => resolve()));
    try {
      await attempt.login(options.token);
      await allGuilds;
    } catch (error) {
      if (client !== attempt) return;
      client = null;
      await attempt.destroy().catch(() => undefined);
      if (error instanceof DiscordjsError && error.code === DiscordjsErrorCodes.TokenInvalid) failure = { detail: "Discord refused the bot token (401)", fix: TOKEN_FIX };
      else failure = closeFailure() ?? { detail: `could not connect to Discord: ${error instanceof Error ? error.message : String(error)}`, fix: "check the network and https://discordstatus.com" };
      logger.warn({ detail: failure.detail }, "discord login failed; the discord lane waits");
      scheduleReconnect();
      return;
    }
    if (stopped) {
      await attempt.destroy();
      return;
    }
    failure = null;
    ready = true;
    logger.info({ guilds: attempt.guilds.cache.size }, "discord connected");
    await registerCommands(attempt as Client<true>);
  }

  function failedNotConnected(): SyncResult {
    return {
      kind: "failed",
      retryable: true,
      reason: failure ? `discord not connected: ${failure.detail}` : "discord not connected",
      ...(failure ? { fix: failure.fix } : {}),
      retryAfterMs: 5000,
    };
  }

  async function changeRole(guild: Guild, action: PerkAction, userId: string, roleId: string): Promise<SyncResult> {
    const grant = action.type === "grant";
    const member = await guild.members.fetch({ user: userId, force: true });
    const has = member.roles.cache.has(roleId);
    if (grant && has) return { kind: "granted", preExisting: true };
    if (!grant && !has) return { kind: "revoked", wasAbsent: true };
    const change = { guildId: guild.id, userId, roleId, add: grant };
    expected.record(change);
    const request = { user: userId, role: roleId, reason: auditReason(action) };
    try {
      if (grant) await guild.members.addRole(request);
      else await guild.members.removeRole(request);
    } catch (error) {
      expected.forget(change);
      throw error;
    }
    return grant ? { kind: "granted" } : { kind: "revoked" };
  }

  /**
   * A refusal the bot's cached view of the guild already predicts (kept fresh by
   * GUILD_ROLE_UPDATE): answered without a request, because several actions for
   * the same role run at once and would all reach Discord before the first 50013
   * comes back (an invalid-request flood). Not remembered in `blocked`: once an
   * admin fixes the roles, the next attempt goes through.
   */
  function knownRefusal(guild: Guild, roleId: string): SyncResult | undefined {
    const role = guild.roles.cache.get(roleId);
    const me = guild.members.me;
    if (!role || !me || guild.ownerId === me.id) return undefined;
    const cause = roleProblem(guild, me, role);
    if (cause === null || cause === "unknown") return undefined;
    return {
      kind: "failed",
      retryable: false,
      reason: `discord would refuse to change role ${role.name} (${roleId}) in guild ${guild.id}: Missing Permissions (checked before sending)`,
      fix: missingPermissionFix({ guildId: guild.id, roleId, roleName: role.name, permissionCause: cause }),
    };
  }

  async function apply(action: PerkAction): Promise<SyncResult> {
    const { perk } = action;
    if (perk.target !== "discord" || perk.kind !== "role") {
      return { kind: "failed", retryable: false, reason: `the discord target applies role perks only, not ${perk.target} ${perk.kind}`, fix: "fix the plan in the config" };
    }
    if (!action.subject.startsWith("discord:")) return { kind: "not-linked", reason: "no Discord account linked" };
    const userId = action.subject.slice("discord:".length);
    const guildId = perk.scope;
    const roleId = perk.value;
    if (!guildConfigs.has(guildId)) {
      return { kind: "failed", retryable: false, reason: `guild ${guildId} is not configured`, fix: `add guild ${guildId} under discord.guilds in the config` };
    }
    const blockedResult = blocked.get(`${guildId}:${roleId}`);
    if (blockedResult) return blockedResult;
    const logged = client;
    if (!ready || !logged?.isReady()) return failedNotConnected();
    const guild = logged.guilds.cache.get(guildId);
    if (!guild) {
      return {
        kind: "failed",
        retryable: false,
        reason: `the bot is not in guild ${guildId}`,
        fix: "invite the perkbridge bot to the server (OAuth2 URL with the bot and applications.commands scopes and Manage Roles)",
      };
    }
    const known = knownRefusal(guild, roleId);
    if (known) return known;
    try {
      return await changeRole(guild, action, userId, roleId);
    } catch (error) {
      const role = guild.roles.cache.get(roleId);
      let permissionCause = undefined;
      if (isMissingPermissions(error)) {
        const me = await guild.members.fetchMe({ force: true }).catch(() => guild.members.me);
        permissionCause = role ? (roleProblem(guild, me, role) ?? "unknown") : "unknown";
      }
      const result = classifyDiscordError(error, {
        guildId,
        roleId,
        ...(role ? { roleName: role.name } : {}),
        ...(permissionCause ? { permissionCause } : {}),
      });
      if (isMissingPermissions(error)) blocked.set(`${guildId}:${roleId}`, result);
      // A revoke for someone who left is done: leaving the guild took every role.
      if (result.kind === "target-missing" && action.type === "revoke") return { kind: "revoked", wasAbsent: true };
      if (result.kind === "failed") logger.warn({ guildId, roleId, reason: result.reason }, "discord role change failed");
      return result;
    }
  }

  async function preflight(): Promise<readonly CheckResult[]> {
    const logged = client;
    if (!ready || !logged?.isReady()) {
      return [
        {
          ok: false,
          name: "discord: login",
          detail: failure?.detail ?? "not connected yet",
          fix: failure?.fix ?? "start the daemon and wait for the Discord connection",
        },
      ];
    }
    const results: CheckResult[] = [
      { ok: true, name: "discord: login", detail: `as ${logged.user.username}` },
      { ok: true, name: "discord: Server Members Intent", detail: "enabled" },
    ];
    for (const guildId of guildConfigs.keys()) {
      const guildResults = await preflightGuild(logged, guildId, options.managedRoles(guildId));
      const command = commandChecks.get(guildId);
      if (command) guildResults.push(command);
      if (guildResults.every((result) => result.ok)) {
        for (const key of [...blocked.keys()]) if (key.startsWith(`${guildId}:`)) blocked.delete(key);
      }
      results.push(...guildResults);
    }
    return results;
  }

  return {
    name: "discord",
    get connected() {
      return ready && client?.isReady() === true;
    },
    async start() {
      stopped = false;
      await connect();
    },
    async stop() {
      stopped = true;
      ready = false;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      const current = client;
      client = null;
      await current?.destroy();
    },
    preflight,
    apply,
  };
}
