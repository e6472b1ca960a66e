// Reads what a Minecraft server answered over RCON. RCON has no status code: the only evidence
// that a command worked is its reply text, so the known LuckPerms and vanilla messages are
// matched here, failures first, so that a reply that says it failed is never taken for success.
//
// Texts follow LuckPerms' en translations (luckperms_en.properties: `{0} now inherits
// permissions from {1} in context {2}`, `A group named {0} could not be found`, …), older
// LuckPerms 4 wording where it differs, and vanilla's en_us.json (`Added %s to the whitelist`,
// `Player is already whitelisted`, `That player does not exist`, …).

/** What a reply says about the thing a command changes. */
export type ReplyVerdict =
  /** The reply names the resulting state; `changed` is false when it already was so. */
  | { readonly kind: "done"; readonly state: "present" | "absent"; readonly changed: boolean }
  /** No output at all: LuckPerms on Paper/Spigot answers RCON before its async command ran (LuckPerms #1365, #3411). */
  | { readonly kind: "empty" }
  /** Text we do not know: neither a known success nor a known failure. */
  | { readonly kind: "unrecognized"; readonly text: string }
  /** The player must be online (or have joined once) for this to work. */
  | { readonly kind: "needs-online"; readonly reason: string }
  | { readonly kind: "failed"; readonly retryable: boolean; readonly reason: string; readonly fix?: string };

interface Rule {
  readonly pattern: RegExp;
  readonly verdict: (match: RegExpExecArray) => ReplyVerdict;
}

const FAILURES: readonly Rule[] = [
  {
    // Vanilla (Brigadier) and Bukkit's unknown-command texts: the plugin is missing or the template is wrong.
    pattern: /^(Unknown or incomplete command|Unknown command\.|Incorrect argument for command|Command not recognised)/i,
    verdict: () => ({
      kind: "failed",
      retryable: false,
      reason: "the server does not know this command",
      fix: "install LuckPerms on this server (or point the perk at a server that has it), or correct the command template",
    }),
  },
  {
    pattern: /^A group named (\S+) could not be found|^A group could not be found with that name/i,
    verdict: (m) => ({
      kind: "failed",
      retryable: false,
      reason: m[1] === undefined ? "the group does not exist on the server" : `the group ${m[1]} does not exist on the server`,
      fix: `create it with \`lp creategroup ${m[1] ?? "<group>"}\` or correct the perk's group name`,
    }),
  },
  {
    pattern: /^(\S+) is not a valid (group name|username\/uuid)/i,
    verdict: (m) => ({
      kind: "failed",
      retryable: false,
      reason: `the server refused ${m[1] ?? "a value"} as a ${m[2] ?? "value"}`,
      fix: "correct the perk or the member's Minecraft identity",
    }),
  },
  {
    pattern: /^You do not have permission to use (this command|any sub commands)/i,
    verdict: () => ({
      kind: "failed",
      retryable: false,
      reason: "the RCON console lacks permission for this command",
      fix: "grant the console the LuckPerms permission, or run the command on a server where the console may",
    }),
  },
  {
    pattern: /^You cannot remove a user from their primary group/i,
    verdict: () => ({
      kind: "failed",
      retryable: false,
      reason: "LuckPerms refuses to remove the user's primary group",
      fix: "do not sync the default group, or change the user's primary group first",
    }),
  },
  {
    // LuckPerms' storage errors: the database may be back in a moment.
    pattern:
      /^(There was an error whilst saving|A database error occurred|An unexpected error occurred|Unable to load target user|Unable to load all groups|User not loaded|Group not loaded)/i,
    verdict: (m) => ({ kind: "failed", retryable: true, reason: `LuckPerms reported: ${m[0]}` }),
  },
  {
    pattern: /^(User \S+ is not online|A user for (\S+) could not be found)/i,
    verdict: (m) => ({ kind: "needs-online", reason: `LuckPerms does not know this player yet (${m[0]}); waits until they join` }),
  },
  {
    // Vanilla: `give`, `effect`, … aimed at an offline player, or a whitelist name unknown to the profile lookup.
    pattern: /^No player was found/i,
    verdict: () => ({ kind: "needs-online", reason: "the player is not online" }),
  },
  {
    pattern: /^That player does not exist/i,
    verdict: () => ({
      kind: "failed",
      retryable: false,
      reason: "the server's profile lookup does not know this player name",
      fix: "check the member's minecraft_name; an offline-mode server only knows players who have joined",
    }),
  },
];

const OUTCOMES: readonly Rule[] = [
  { pattern: /now inherits permissions from/i, verdict: () => ({ kind: "done", state: "present", changed: true }) },
  { pattern: /already (temporarily )?inherits from/i, verdict: () => ({ kind: "done", state: "present", changed: false }) },
  { pattern: /no longer (temporarily )?inherits permissions from/i, verdict: () => ({ kind: "done", state: "absent", changed: true }) },
  { pattern: /does not (temporarily )?inherit from/i, verdict: () => ({ kind: "done", state: "absent", changed: false }) },
  { pattern: /^Added \S+ to the whitelist/i, verdict: () => ({ kind: "done", state: "present", changed: true }) },
  { pattern: /^Player is already whitelisted/i, verdict: () => ({ kind: "done", state: "present", changed: false }) },
  { pattern: /^Removed \S+ from the whitelist/i, verdict: () => ({ kind: "done", state: "absent", changed: true }) },
  { pattern: /^Player is not whitelisted/i, verdict: () => ({ kind: "done", state: "absent", changed: false }) },
];

/** Removes `§x` colour codes and the `[LP] ` prefix, so the text can be matched line by line. */
export function replyLines(reply: string): string[] {
  return reply
    .replace(/§./g, "")
    .split(/\r?\n/)
    .map((line) => line.replace(/^\s*\[(LP|LPV|LPB)\]\s*/i, "").trim())
    .filter((line) => line !== "");
}

/** Classifies one command reply. Known failures win over everything else in the same reply. */
export function classifyReply(reply: string): ReplyVerdict {
  const lines = replyLines(reply);
  if (lines.length === 0) return { kind: "empty" };
  for (const rules of [FAILURES, OUTCOMES]) {
    for (const line of lines) {
      for (const rule of rules) {
        const match = rule.pattern.exec(line);
        if (match) return rule.verdict(match);
      }
    }
  }
  return { kind: "unrecognized", text: lines.join(" / ").slice(0, 300) };
}

/**
 * Reads `lp user <uuid> parent info`: whether `group` is among the parents, or `unknown` when the
 * reply is not a parent listing (empty under async LuckPerms, or an error).
 */
export function parentInfoHas(reply: string, group: string): "present" | "absent" | "unknown" {
  const lines = replyLines(reply);
  if (lines.some((line) => /does not have any parents defined/i.test(line))) return "absent";
  const header = lines.findIndex((line) => /'s Parents/i.test(line));
  if (header === -1) return "unknown";
  const wanted = group.toLowerCase();
  const found = lines.slice(header + 1).some((line) => {
    const entry = /^(?:>|-)\s*(\S+)/.exec(line);
    return entry?.[1]?.toLowerCase() === wanted;
  });
  return found ? "present" : "absent";
}

/** Reads vanilla `whitelist list`: whether `name` is on it, or `unknown` when the reply is not a listing. */
export function whitelistHas(reply: string, name: string): "present" | "absent" | "unknown" {
  const lines = replyLines(reply);
  if (lines.some((line) => /^There are no whitelisted players/i.test(line))) return "absent";
  const listing = lines.map((line) => /whitelisted player\(?s?\)?:\s*(.*)$/i.exec(line)).find((m) => m !== null);
  if (!listing) return "unknown";
  const names = (listing[1] ?? "").split(/,\s*/).map((n) => n.trim().toLowerCase());
  return names.includes(name.toLowerCase()) ? "present" : "absent";
}

/** One player seen in `list` / `list uuids`. */
export interface OnlinePlayer {
  readonly name: string;
  /** Present when the server answered `list uuids`. */
  readonly uuid?: string;
}

/**
 * Reads vanilla `list` / `list uuids`: `There are 2 of a max of 20 players online: bob (uuid), eve`.
 * Returns `null` when the reply is not a player listing (an error, or nothing).
 */
export function parsePlayerList(reply: string): OnlinePlayer[] | null {
  const lines = replyLines(reply);
  const first = lines[0];
  if (first === undefined || !/players? online/i.test(first)) return null;
  const colon = first.indexOf(":");
  // Older servers put the names on the following lines, Paper groups them as `group: a, b`.
  const rest = [colon === -1 ? "" : first.slice(colon + 1), ...lines.slice(1).map((l) => l.replace(/^[^:]*:\s*/, ""))];
  const players: OnlinePlayer[] = [];
  for (const part of rest.join(",").split(",")) {
    const match = /^\s*([A-Za-z0-9_]{3,16})(?:\s*\(([0-9a-fA-F-]{36})\))?\s*$/.exec(part);
    if (!match?.[1]) continue;
    players.push(match[2] === undefined ? { name: match[1] } : { name: match[1], uuid: match[2].toLowerCase() });
  }
  return players;
}
