import type { Identities, MinecraftIdentity } from "./member.js";
import { memberKey } from "./member.js";
import type { Perk, SubjectKind } from "./perk.js";
import { subjectKindOf } from "./perk.js";

/** A flat and a nested metadata key that name the same identity with different values; the nested one won. */
export interface IdentityConflict {
  /** `discord`, `minecraft.uuid`, `minecraft.name`, `fivem.steam`, `fivem.license`. */
  readonly identity: string;
  readonly flatKey: string;
  readonly flat: string;
  readonly nestedKey: string;
  readonly nested: string;
}

/** What {@link extractIdentities} read from a member's metadata. */
export interface ExtractedIdentities {
  readonly identities: Identities;
  readonly conflicts: readonly IdentityConflict[];
  /** Values that were present but are not identities, as lines an admin can act on. */
  readonly problems: readonly string[];
}

const UUID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/i;
const DISCORD_ID = /^\d{1,20}$/;
// Names end up in RCON commands (`whitelist add <name>`), so anything that could
// smuggle a second word or line in is refused. The optional `.`/`*` is the
// Floodgate prefix of Bedrock players.
const MINECRAFT_NAME = /^[.*]?[A-Za-z0-9_]{1,16}$/;
const HEX = /^[0-9a-f]+$/;
const DIGITS = /^\d+$/;
// A Steam64 id written in decimal (what Steam's web pages show); FiveM uses its hex form.
const STEAM64_DECIMAL = /^7656119\d{10}$/;

/** FiveM identifier prefixes we accept, with the shape of their value. */
const FIVEM_PREFIXES: ReadonlyMap<string, RegExp> = new Map([
  ["license", HEX],
  ["license2", HEX],
  ["steam", HEX],
  ["discord", DIGITS],
  ["fivem", DIGITS],
  ["xbl", DIGITS],
  ["live", DIGITS],
]);
const FIVEM_ORDER = [...FIVEM_PREFIXES.keys()];

/**
 * Which FiveM identifier is the subject of FiveM perks, first found wins.
 * `license` first: every FiveM player has a Rockstar license whatever launcher
 * they use, while `steam:` is only there when Steam runs and `discord:` only when
 * Discord does, so the license is the one a server sees most reliably.
 */
export const FIVEM_SUBJECT_PREFERENCE: readonly string[] = ["license", "steam", "discord", "fivem"];

/**
 * Reads a member's platform identities from PaymentHub metadata, in both layouts
 * the API doc shows: flat (`discord_id`, `minecraft_uuid`, `minecraft_name`,
 * `fivem_license`, `fivem_steam_id`) and nested (`discord.user_id`,
 * `minecraft.uuid`, `minecraft.name`, `fivem.license`, `fivem.steam_id`,
 * `fivem.discord`, `fivem.identifiers`). Nested wins over flat, and a
 * disagreement is reported. A value that is present but malformed is not an
 * identity and is reported in `problems`; when the nested value is malformed the
 * flat one stands.
 */
export function extractIdentities(metadata: Readonly<Record<string, unknown>>): ExtractedIdentities {
  const problems: string[] = [];
  const conflicts: IdentityConflict[] = [];
  const nested = {
    discord: namespace(metadata, "discord", problems),
    minecraft: namespace(metadata, "minecraft", problems),
    fivem: namespace(metadata, "fivem", problems),
  };
  const fivemNs = nested.fivem;

  const field = (
    identity: string,
    flatKey: string,
    nestedKey: `${"discord" | "minecraft" | "fivem"}.${string}`,
    read: (value: unknown, path: string) => string | undefined,
  ): string | undefined => {
    const [ns, key] = nestedKey.split(".") as [keyof typeof nested, string];
    const flat = read(metadata[flatKey], flatKey);
    const inner = nested[ns] === undefined ? undefined : read(nested[ns][key], nestedKey);
    if (flat !== undefined && inner !== undefined && flat !== inner) {
      conflicts.push({ identity, flatKey, flat, nestedKey, nested: inner });
    }
    return inner ?? flat;
  };

  const identities: { discord?: string; minecraft?: MinecraftIdentity; fivem?: readonly string[] } = {};

  const discord = field("discord", "discord_id", "discord.user_id", (v, p) => readDiscordId(v, p, problems));
  if (discord !== undefined) identities.discord = discord;

  const uuid = field("minecraft.uuid", "minecraft_uuid", "minecraft.uuid", (v, p) => readUuid(v, p, problems));
  let name = field("minecraft.name", "minecraft_name", "minecraft.name", (v, p) => readMinecraftName(v, p, problems));
  if (conflicts.some((c) => c.identity === "minecraft.uuid") && name !== undefined && nested.minecraft?.["name"] === undefined) {
    // The flat name belongs to the flat UUID that lost: pairing it with the nested UUID would whitelist the wrong player.
    problems.push(`minecraft_name: "${name}" dropped, it goes with minecraft_uuid, which minecraft.uuid overrides`);
    name = undefined;
  }
  if (uuid !== undefined || name !== undefined) {
    identities.minecraft = { ...(uuid === undefined ? {} : { uuid }), ...(name === undefined ? {} : { name }) };
  }

  const fivem = new Set<string>();
  const add = (id: string | undefined): void => {
    if (id !== undefined) fivem.add(id);
  };
  add(field("fivem.license", "fivem_license", "fivem.license", (v, p) => readFivem(v, p, "license", problems)));
  add(field("fivem.steam", "fivem_steam_id", "fivem.steam_id", (v, p) => readFivem(v, p, "steam", problems)));
  if (fivemNs !== undefined) {
    add(readFivem(fivemNs["discord"], "fivem.discord", "discord", problems));
    const list = fivemNs["identifiers"];
    if (Array.isArray(list)) {
      list.forEach((v: unknown, i) => add(readFivem(v, `fivem.identifiers[${i}]`, undefined, problems)));
    } else if (list !== undefined && list !== null) {
      problems.push(`fivem.identifiers: expected a list of identifiers such as "license:…", got ${describe(list)}`);
    }
  }
  if (fivem.size > 0) identities.fivem = [...fivem].sort(compareFivem);

  return { identities, conflicts, problems };
}

/**
 * The subject a perk is granted to, for one member: `discord:<user id>`,
 * `minecraft:<uuid>`, `fivem:<identifier>` (the first of
 * {@link FIVEM_SUBJECT_PREFERENCE} the member has) or `member:<member key>`
 * for `http` perks. `undefined` when the member lacks that identity; a
 * Minecraft name alone is not enough, since names change and UUIDs do not.
 */
export function subjectFor(
  perk: Pick<Perk, "target">,
  member: { readonly identities: Identities; readonly source: string; readonly id: string },
): string | undefined {
  const ids = member.identities;
  switch (subjectKindOf(perk)) {
    case "discord":
      return ids.discord === undefined ? undefined : `discord:${ids.discord}`;
    case "minecraft":
      return ids.minecraft?.uuid === undefined ? undefined : `minecraft:${ids.minecraft.uuid}`;
    case "fivem": {
      const list = ids.fivem ?? [];
      for (const prefix of FIVEM_SUBJECT_PREFERENCE) {
        const hit = list.find((id) => id.startsWith(`${prefix}:`));
        if (hit !== undefined) return `fivem:${hit}`;
      }
      return undefined;
    }
    case "member":
      return `member:${memberKey(member)}`;
  }
}

/** Why a perk of this subject kind waits, for status reports. */
export function missingIdentityReason(kind: SubjectKind): string {
  switch (kind) {
    case "discord":
      return "waiting: no Discord account on the member record (metadata discord_id or discord.user_id)";
    case "minecraft":
      return "waiting: no Minecraft account on the member record (metadata minecraft_uuid or minecraft.uuid)";
    case "fivem":
      return "waiting: no FiveM identifier on the member record (metadata fivem.license, fivem.steam_id, fivem.discord or fivem.identifiers)";
    case "member":
      return "waiting: no member id";
  }
}

/** Dashed lower-case form of a Minecraft UUID (dashed or 32 hex digits), else `undefined`. */
export function normalizeMinecraftUuid(value: string): string | undefined {
  const v = value.trim();
  if (!UUID.test(v)) return undefined;
  const hex = v.replaceAll("-", "").toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * `prefix:value` form of a FiveM identifier, lower-case, else `undefined`. A bare
 * value gets `bare` as its prefix when given (a `steam_id` field holding just the
 * id); a decimal Steam64 id is turned into the hex form FiveM uses.
 */
export function normalizeFivemIdentifier(value: string, bare?: string): string | undefined {
  const v = value.trim().toLowerCase();
  const colon = v.indexOf(":");
  const prefix = colon === -1 ? bare : v.slice(0, colon);
  let rest = colon === -1 ? v : v.slice(colon + 1);
  if (prefix === undefined) return undefined;
  const shape = FIVEM_PREFIXES.get(prefix);
  if (shape === undefined) return undefined;
  if (prefix === "steam" && STEAM64_DECIMAL.test(rest)) rest = BigInt(rest).toString(16);
  return shape.test(rest) ? `${prefix}:${rest}` : undefined;
}

function namespace(
  metadata: Readonly<Record<string, unknown>>,
  key: string,
  problems: string[],
): Readonly<Record<string, unknown>> | undefined {
  const ns = metadata[key];
  if (ns === undefined || ns === null) return undefined;
  if (typeof ns === "object" && !Array.isArray(ns)) return ns as Readonly<Record<string, unknown>>;
  problems.push(`${key}: expected an object such as {"${key}": {…}}, got ${describe(ns)}; its identities are ignored`);
  return undefined;
}

/** A trimmed non-empty string, or a safe non-negative integer when `numbers`; absent and empty values are no problem. */
function readId(value: unknown, path: string, problems: string[], numbers: boolean): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    const v = value.trim();
    return v === "" ? undefined : v;
  }
  if (numbers && typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0) return String(value);
    if (Number.isInteger(value) && value > 0) {
      // A snowflake parsed as a JSON number is rounded to a double: the digits we see are not the id.
      problems.push(`${path}: ${value} is a JSON number too large to be exact, so the id lost digits; store it as a string`);
      return undefined;
    }
  }
  problems.push(`${path}: expected ${numbers ? "a string of digits" : "a string"}, got ${describe(value)}`);
  return undefined;
}

function readDiscordId(value: unknown, path: string, problems: string[]): string | undefined {
  const v = readId(value, path, problems, true);
  if (v === undefined || DISCORD_ID.test(v)) return v;
  problems.push(`${path}: "${v}" is not a Discord user id (digits only)`);
  return undefined;
}

function readUuid(value: unknown, path: string, problems: string[]): string | undefined {
  const v = readId(value, path, problems, false);
  if (v === undefined) return undefined;
  const uuid = normalizeMinecraftUuid(v);
  if (uuid === undefined) problems.push(`${path}: "${v}" is not a Minecraft UUID`);
  return uuid;
}

function readMinecraftName(value: unknown, path: string, problems: string[]): string | undefined {
  const v = readId(value, path, problems, false);
  if (v === undefined || MINECRAFT_NAME.test(v)) return v;
  problems.push(`${path}: "${v}" is not a Minecraft name (1-16 letters, digits or _)`);
  return undefined;
}

function readFivem(value: unknown, path: string, bare: string | undefined, problems: string[]): string | undefined {
  const v = readId(value, path, problems, bare === "discord");
  if (v === undefined) return undefined;
  const id = normalizeFivemIdentifier(v, bare);
  if (id === undefined) {
    problems.push(`${path}: "${v}" is not a FiveM identifier (${FIVEM_ORDER.join(", ")} followed by ":" and the id)`);
  }
  return id;
}

function compareFivem(a: string, b: string): number {
  const rank = (id: string): number => FIVEM_ORDER.indexOf(id.slice(0, id.indexOf(":")));
  // Entries come from a Set, so two are never equal.
  return rank(a) - rank(b) || (a < b ? -1 : 1);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "string" ? `"${value}"` : typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}
