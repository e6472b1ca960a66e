import { PermissionFlagsBits, type Client, type Guild, type GuildMember, type Role } from "discord.js";
import type { CheckResult } from "../../core/ports.js";
import { classifyDiscordError, missingPermissionFix, type MissingPermissionCause } from "./classify-discord-error.js";

/** Why a role cannot be assigned by the bot, or `null` when it can. */
export function roleProblem(guild: Guild, me: GuildMember | null, role: Role): MissingPermissionCause | null {
  if (role.id === guild.id || role.managed) return "role-not-assignable";
  if (!me) return "unknown";
  if (!me.permissions.has(PermissionFlagsBits.ManageRoles)) return "no-manage-roles";
  if (me.roles.highest.comparePositionTo(role) <= 0) return "role-too-high";
  return null;
}

/**
 * The checks of one guild for `perkbridge check`: the bot is in it, has
 * Manage Roles, and can assign every plan role. Reads fresh roles and the
 * bot's member from Discord so a fix made a minute ago shows.
 */
export async function preflightGuild(client: Client<true>, guildId: string, managedRoles: ReadonlySet<string>): Promise<CheckResult[]> {
  const prefix = `discord guild ${guildId}`;
  const guild = client.guilds.cache.get(guildId);
  if (!guild) {
    return [
      {
        ok: false,
        name: `${prefix}: bot is a member`,
        detail: "the bot is not in this server",
        fix: "invite the perkbridge bot to the server (OAuth2 URL with the bot and applications.commands scopes and Manage Roles)",
      },
    ];
  }
  const results: CheckResult[] = [{ ok: true, name: `${prefix}: bot is a member`, detail: guild.name }];
  let me: GuildMember;
  try {
    await guild.roles.fetch(undefined, { force: true });
    me = await guild.members.fetchMe({ force: true });
  } catch (error) {
    const result = classifyDiscordError(error, { guildId, roleId: "" });
    results.push({ ok: false, name: `${prefix}: read roles`, detail: result.kind === "failed" ? result.reason : result.kind, ...(result.kind === "failed" && result.fix ? { fix: result.fix } : {}) });
    return results;
  }
  const manageRoles = me.permissions.has(PermissionFlagsBits.ManageRoles);
  results.push(
    manageRoles
      ? { ok: true, name: `${prefix}: Manage Roles` }
      : { ok: false, name: `${prefix}: Manage Roles`, detail: "the bot lacks Manage Roles", fix: missingPermissionFix({ guildId, roleId: "", permissionCause: "no-manage-roles" }) },
  );
  for (const roleId of [...managedRoles].sort()) {
    const role = guild.roles.cache.get(roleId);
    const name = `${prefix}: role ${role?.name ?? roleId} (${roleId})`;
    if (!role) {
      results.push({ ok: false, name, detail: `role ${roleId} does not exist in guild ${guildId}`, fix: `role ${roleId} does not exist in guild ${guildId}: fix the plan in the config` });
      continue;
    }
    const problem = roleProblem(guild, me, role);
    if (problem === null) {
      results.push({ ok: true, name, detail: "assignable" });
      continue;
    }
    results.push({
      ok: false,
      name,
      detail:
        problem === "role-too-high"
          ? `the bot's highest role (${me.roles.highest.name}) is not above ${role.name}`
          : problem === "no-manage-roles"
            ? "the bot lacks Manage Roles"
            : `${role.name} cannot be assigned by any bot`,
      fix: missingPermissionFix({ guildId, roleId, roleName: role.name, permissionCause: problem }),
    });
  }
  return results;
}
