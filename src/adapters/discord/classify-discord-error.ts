import { DiscordAPIError, HTTPError, RateLimitError } from "discord.js";
import type { SyncResult } from "../../core/ports.js";

/** Why Discord answered 50013 to a role change, as far as the bot's view of the guild tells. */
export type MissingPermissionCause = "no-manage-roles" | "role-too-high" | "role-not-assignable" | "unknown";

/** What the classifier needs to name the problem to an admin. */
export interface DiscordErrorContext {
  readonly guildId: string;
  readonly roleId: string;
  /** The role's name, when the bot's cache knows it. */
  readonly roleName?: string;
  readonly permissionCause?: MissingPermissionCause;
}

/** Discord JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json). */
export const DiscordErrorCode = {
  UnknownGuild: 10004,
  UnknownMember: 10007,
  UnknownRole: 10011,
  UnknownUser: 10013,
  MissingAccess: 50001,
  MissingPermissions: 50013,
} as const;

const INVITE_FIX = "invite the perkbridge bot to the server (OAuth2 URL with the bot and applications.commands scopes and Manage Roles)";

function roleLabel(context: DiscordErrorContext): string {
  return context.roleName === undefined ? `role ${context.roleId}` : `role ${context.roleName} (${context.roleId})`;
}

/** How to let the bot assign a role, by the cause of a 50013. */
export function missingPermissionFix(context: DiscordErrorContext): string {
  const name = context.roleName ?? context.roleId;
  switch (context.permissionCause) {
    case "no-manage-roles":
      return "give the perkbridge bot's role the Manage Roles permission in Server Settings → Roles";
    case "role-not-assignable":
      return `${name} is @everyone or managed by an integration (bot, booster or linked role) and cannot be assigned: pick another role in the plan`;
    case "role-too-high":
      return `move the perkbridge bot's role above ${name} in Server Settings → Roles`;
    default:
      return `give the bot Manage Roles and move the perkbridge bot's role above ${name} in Server Settings → Roles`;
  }
}

/** True when the error is Discord refusing the bot for lack of permission (50013). */
export function isMissingPermissions(error: unknown): boolean {
  return error instanceof DiscordAPIError && error.code === DiscordErrorCode.MissingPermissions;
}

/**
 * Maps an error thrown by discord.js during a role change to the expected
 * outcome it stands for. Rate limits and 5xx were already retried inside
 * discord.js, so what reaches here failed for good this time: retryable.
 */
export function classifyDiscordError(error: unknown, context: DiscordErrorContext): SyncResult {
  const where = `guild ${context.guildId}`;
  if (error instanceof DiscordAPIError) {
    if (error.status >= 500) return { kind: "failed", retryable: true, reason: `discord answered ${error.status} (${String(error.code)})` };
    switch (error.code) {
      case DiscordErrorCode.MissingPermissions:
        return {
          kind: "failed",
          retryable: false,
          reason: `discord refused to change ${roleLabel(context)} in ${where}: Missing Permissions (50013)`,
          fix: missingPermissionFix(context),
        };
      case DiscordErrorCode.UnknownMember:
        return { kind: "target-missing", reason: "not in the guild: applied when they join" };
      case DiscordErrorCode.UnknownRole:
        return {
          kind: "failed",
          retryable: false,
          reason: `role ${context.roleId} does not exist in ${where}`,
          fix: `role ${context.roleId} does not exist in ${where}: fix the plan in the config`,
        };
      case DiscordErrorCode.UnknownGuild:
      case DiscordErrorCode.MissingAccess:
        return { kind: "failed", retryable: false, reason: `the bot has no access to ${where} (${String(error.code)})`, fix: INVITE_FIX };
      case DiscordErrorCode.UnknownUser:
        return { kind: "failed", retryable: false, reason: "this Discord account does not exist (10013)", fix: "check the member's linked Discord user id" };
      default:
        break;
    }
    if (error.status === 401) {
      return {
        kind: "failed",
        retryable: false,
        reason: "discord refused the bot token (401)",
        fix: "reset the bot token in the Discord Developer Portal → your app → Bot and update it in the perkbridge configuration",
      };
    }
    if (error.status === 429) return { kind: "failed", retryable: true, reason: "discord rate limit (429)" };
    return { kind: "failed", retryable: false, reason: `discord answered ${error.status} with code ${String(error.code)}: ${error.message}` };
  }
  if (error instanceof RateLimitError) {
    return { kind: "failed", retryable: true, reason: `discord rate limit on ${error.route}`, retryAfterMs: error.retryAfter };
  }
  if (error instanceof HTTPError) {
    return { kind: "failed", retryable: true, reason: `discord answered ${error.status} after retries` };
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { kind: "failed", retryable: true, reason: `discord request failed: ${message}` };
}
