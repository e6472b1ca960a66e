/**
 * The schema of `perkbridge.yaml`. The validated structure keeps the YAML's
 * snake_case names; values are normalized on the way in (durations become
 * milliseconds, sizes bytes, shares fractions, `webhook_secrets` always a
 * list) so no consumer parses strings again.
 *
 * To add a field: add it to the section's `z.strictObject` with a default,
 * mark it in {@link SECRET_PATHS} if it holds a secret, and describe it in
 * config/perkbridge.example.yaml. To add a perk form: extend
 * {@link perkEntrySchema} and {@link perksFromEntry}.
 */
import { join } from "node:path";
import { validate as isValidCron } from "node-cron";
import { z } from "zod";
import { parseDuration } from "../../core/duration.js";
import type { Perk, PlanRules } from "../../core/perk.js";

// ── Issue conventions ────────────────────────────────────────────────────
// Custom issues carry their wording in `params`, so format-config-errors.ts
// can decide per path whether the offending value may be shown:
//   { expected }            → "expected <expected>, got <value or its type>"
//   { text, redacted? }     → text, or `redacted` where the value is sensitive

/** `params` of the custom issues this schema raises. */
export type ConfigIssueParams = { readonly expected: string } | { readonly text: string; readonly redacted?: string };

type IssueSink = Pick<z.core.$RefinementCtx<unknown>, "addIssue">;

function addExpected(ctx: IssueSink, expected: string, input: unknown, path?: PropertyKey[]): void {
  ctx.addIssue({ code: "custom", message: `expected ${expected}`, input, params: { expected }, ...(path ? { path } : {}) });
}

function addText(ctx: IssueSink, text: string, redacted: string | undefined, path: PropertyKey[] = []): void {
  ctx.addIssue({ code: "custom", message: text, path, params: redacted === undefined ? { text } : { text, redacted } });
}

/**
 * A field that accepts whatever `parse` turns into a value; anything else is
 * reported as "expected <what>". Strings are accepted for numbers and
 * booleans because `${PORT}`-style interpolation always yields text.
 */
function expected<T>(what: string, parse: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx): T => {
    const out = value === undefined ? undefined : parse(value);
    if (out === undefined) {
      addExpected(ctx, what, value);
      return z.NEVER;
    }
    return out;
  });
}

function integerFrom(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === "string" && /^\d+$/.test(value.trim())) return integerFrom(Number(value.trim()));
  return undefined;
}

function intInRange(what: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return expected(what, (v) => {
    const n = integerFrom(v);
    return n !== undefined && n >= min && n <= max ? n : undefined;
  });
}

const portSchema = intInRange("a port number from 0 to 65535", 0, 65535);

const boolSchema = expected("true or false", (v) => {
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  return undefined;
});

/** A duration in milliseconds; `0` may be written without a unit. */
function duration() {
  return expected("a duration such as 3d or 12h", (v) => {
    if (v === 0) return 0;
    return typeof v === "string" ? parseDuration(v) : undefined;
  });
}

const BYTE_UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Bytes, or text such as `512kb` / `1mb` (1024-based, as body-parser's `bytes` reads them). */
export function parseByteSize(value: unknown): number | undefined {
  const int = integerFrom(value);
  if (int !== undefined) return int;
  if (typeof value !== "string") return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(value.trim());
  const factor = match ? BYTE_UNITS[(match[2] as string).toLowerCase()] : undefined;
  if (!match || factor === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const byteSizeSchema = expected('a size in bytes such as 1048576 or "1mb"', (v) => {
  const n = parseByteSize(v);
  return n !== undefined && n > 0 ? n : undefined;
});

/** A share of a whole: `0.10` or `"10%"`, as a fraction in (0, 1]. */
const shareSchema = expected('a share such as 0.10 or "10%"', (v) => {
  let n: number | undefined;
  if (typeof v === "number") n = v;
  else if (typeof v === "string") {
    const match = /^(\d+(?:\.\d+)?)\s*%$/.exec(v.trim());
    n = match ? Number(match[1]) / 100 : /^\d*\.?\d+$/.test(v.trim()) ? Number(v) : undefined;
  }
  return n !== undefined && n > 0 && n <= 1 ? n : undefined;
});

const textSchema = expected("a non-empty string", (v) => (typeof v === "string" && v.length > 0 ? v : undefined));

/** Secrets are text; a number would be re-printed by YAML differently from what the admin typed. */
const secretSchema = expected("a non-empty string (quote it, or use ${NAME} from the environment)", (v) =>
  typeof v === "string" && v.length > 0 ? v : undefined,
);

const urlSchema = expected("an http:// or https:// URL", (v) => {
  if (typeof v !== "string" || !URL.canParse(v)) return undefined;
  const protocol = new URL(v).protocol;
  return protocol === "http:" || protocol === "https:" ? v : undefined;
});

/**
 * A Discord snowflake, as a quoted string: YAML would read an unquoted one as
 * a number and round it (they exceed 2^53).
 */
const discordIdSchema = z.unknown().transform((v, ctx): string => {
  if (typeof v === "string" && /^\d+$/.test(v)) return v;
  if (typeof v === "number" || typeof v === "bigint") {
    addText(ctx, 'a Discord id must be quoted, e.g. "123456789012345678": as a YAML number it loses precision', undefined);
  } else {
    addExpected(ctx, "a Discord id (digits only, quoted)", v);
  }
  return z.NEVER;
});

/** A role id or a role name. */
const discordRoleSchema = z.unknown().transform((v, ctx): string => {
  // Ids only: a name can be renamed or duplicated in the guild, and the ledger keys grants by role.
  if (typeof v === "string" && /^\d{5,25}$/.test(v)) return v;
  if (typeof v === "number" || typeof v === "bigint") {
    addText(ctx, 'a Discord role id must be quoted, e.g. "123456789012345678": as a YAML number it loses precision', undefined);
  } else {
    addExpected(ctx, 'a Discord role id such as "123456789012345678" (Server Settings → Roles → right-click the role → Copy Role ID)', v);
  }
  return z.NEVER;
});

// Names become part of perk keys (`minecraft:<server>:group:vip`), so no `:`.
const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;
const nameKeySchema = z.string().regex(NAME_PATTERN);

/** A mapping from admin-chosen names (servers, endpoints) to settings. */
function namedMap<T extends z.ZodType>(value: T) {
  return z.record(nameKeySchema, value);
}

/** The placeholders a Minecraft command template may use. */
export const COMMAND_PLACEHOLDERS = ["uuid", "name", "group", "member", "plan"] as const;

const commandTemplateSchema = z.unknown().transform((v, ctx): string => {
  if (typeof v !== "string" || v.trim() === "") {
    addExpected(ctx, "a command template such as \"lp user {uuid} parent add {group}\"", v);
    return z.NEVER;
  }
  const allowed = COMMAND_PLACEHOLDERS.map((p) => `{${p}}`).join(" ");
  for (const match of v.matchAll(/\{([^{}]*)\}/g)) {
    const name = match[1] as string;
    if (!(COMMAND_PLACEHOLDERS as readonly string[]).includes(name)) {
      addText(ctx, `unknown placeholder {${name}} in command template; use ${allowed}`, `unknown placeholder in command template; use ${allowed}`);
    }
  }
  return v;
});

/** Exactly one of `keys` must be set; says which ones otherwise. */
function exactlyOne(keys: readonly string[]) {
  return (value: Readonly<Record<string, unknown>>, ctx: IssueSink): void => {
    const present = keys.filter((k) => value[k] !== undefined);
    if (present.length === 1) return;
    const list = keys.length === 2 ? keys.join(" or ") : `${keys.slice(0, -1).join(", ")} or ${keys.at(-1) ?? ""}`;
    addText(ctx, present.length === 0 ? `expected one of ${list}` : `use only one of ${list}, not ${present.join(" and ")}`, undefined);
  };
}

// ── Sections ─────────────────────────────────────────────────────────────

const serverSchema = z.strictObject({
  host: textSchema.default("127.0.0.1"),
  port: portSchema.default(8787),
  /** Where the public listener is reachable from outside (for webhook URLs in messages). */
  public_url: urlSchema.optional(),
  body_limit: byteSizeSchema.default(1024 * 1024),
});

const stateSchema = z.strictObject({
  /** Relative paths are relative to the working directory. */
  dir: textSchema.default("./state"),
  retention: duration().prefault("7d"),
});

const logSchema = z.strictObject({
  level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** `auto`: pretty on a terminal, JSON otherwise. */
  format: z.enum(["json", "pretty", "auto"]).default("auto"),
});

const adminSchema = z.strictObject({
  /** Default: `<state.dir>/admin.sock`, filled in after parsing. */
  socket: textSchema.optional(),
});

const metadataPathSchema = z.unknown().transform((v, ctx): string => {
  if (typeof v === "string" && /^(discord|minecraft|fivem)(\.[A-Za-z0-9_-]+)+$/.test(v)) return v;
  addExpected(ctx, "a dotted path inside discord., minecraft. or fivem. such as minecraft.playtime", v);
  return z.NEVER;
});

const paymenthubSchema = z.strictObject({
  base_url: urlSchema.default("https://api.paymenthub.com/v1"),
  api_key: secretSchema,
  /** Several secrets so one can be rotated without dropping webhooks. */
  webhook_secrets: z.unknown().transform((v, ctx): string[] => {
    const list = typeof v === "string" ? [v] : v;
    if (Array.isArray(list) && list.length > 0 && list.every((s) => typeof s === "string" && s.length > 0)) return list as string[];
    addExpected(ctx, "a webhook secret, or a list of at least one (for rotation)", v);
    return z.NEVER;
  }),
  rate_limit: z
    .strictObject({
      per_hour: intInRange("a whole number of at least 1", 1).default(1000),
      per_minute: intInRange("a whole number of at least 1", 1).default(100),
    })
    .prefault({}),
  request_timeout: duration().prefault("10s"),
  /** Webhooks older than this are refused (replay protection). */
  event_max_age: duration().prefault("72h"),
  /** Webhooks dated further ahead than this are refused (clock skew allowance). */
  event_max_future: duration().prefault("5m"),
  poll: z
    .strictObject({
      cron: expected('"auto" or a cron expression such as "*/15 * * * *"', (v) =>
        typeof v === "string" && (v === "auto" || isValidCron(v)) ? v : undefined,
      ).default("auto"),
    })
    .prefault({}),
  metadata: z
    .strictObject({
      write: z.enum(["read-merge-write", "merge"]).default("read-merge-write"),
      limit_bytes: intInRange("a whole number of bytes of at least 1", 1).default(16_000),
      owned: z.array(metadataPathSchema).default([]),
      /** Trimmed first to last when a write would exceed `limit_bytes`. */
      trim_drop: z.array(metadataPathSchema).default([]),
    })
    .prefault({}),
});

const discordTargetSchema = z.strictObject({
  token: secretSchema,
  /** REST base override, e.g. an emulator's `http://127.0.0.1:4020/api`. */
  api_base: urlSchema.optional(),
  gateway_url: expected("a ws:// or wss:// URL", (v) =>
    typeof v === "string" && URL.canParse(v) && /^wss?:$/.test(new URL(v).protocol) ? v : undefined,
  ).optional(),
  guilds: z
    .array(
      z.strictObject({
        id: discordIdSchema,
        enforce: z.enum(["restore", "exclusive", "off"]).default("restore"),
      }),
    )
    .default([]),
});

const minecraftServerSchema = z.strictObject({
  rcon: z.strictObject({
    host: textSchema.default("127.0.0.1"),
    port: portSchema.default(25575),
    password: secretSchema,
  }),
  status: z
    .strictObject({
      host: textSchema.default("127.0.0.1"),
      port: portSchema.default(25565),
    })
    .optional(),
  list_interval: duration().prefault("30s"),
  command_timeout: duration().prefault("5s"),
  commands: z
    .strictObject({
      group_add: commandTemplateSchema.default("lp user {uuid} parent add {group}"),
      group_remove: commandTemplateSchema.default("lp user {uuid} parent remove {group}"),
      whitelist_add: commandTemplateSchema.default("whitelist add {name}"),
      whitelist_remove: commandTemplateSchema.default("whitelist remove {name}"),
    })
    .prefault({}),
});

const httpEndpointSchema = z.strictObject({
  url: urlSchema,
  /** Signs each request body with HMAC-SHA256. */
  secret: secretSchema,
  timeout: duration().prefault("10s"),
});

const sourcesSchema = z.strictObject({
  paymenthub: paymenthubSchema.optional(),
});

const targetsSchema = z.strictObject({
  discord: discordTargetSchema.optional(),
  minecraft: z.strictObject({ servers: namedMap(minecraftServerSchema).default({}) }).optional(),
  http: z.strictObject({ endpoints: namedMap(httpEndpointSchema).default({}) }).optional(),
});

// ── Perks ────────────────────────────────────────────────────────────────

const discordPerkSchema = z
  .strictObject({
    guild: discordIdSchema,
    role: discordRoleSchema.optional(),
    roles: z.array(discordRoleSchema).min(1).optional(),
  })
  .superRefine(exactlyOne(["role", "roles"]));

const minecraftPerkSchema = z
  .strictObject({
    server: textSchema,
    group: textSchema.optional(),
    whitelist: z.literal(true).optional(),
    command: textSchema.optional(),
    grant: commandTemplateSchema.optional(),
    revoke: commandTemplateSchema.optional(),
    once: boolSchema.optional(),
    online_only: boolSchema.optional(),
  })
  .superRefine((perk, ctx) => {
    exactlyOne(["group", "whitelist", "command"])(perk, ctx);
    if (perk.command !== undefined && perk.grant === undefined) addText(ctx, "a command perk needs grant: the command to run", undefined, ["grant"]);
    if (perk.command === undefined) {
      for (const key of ["grant", "revoke", "once", "online_only"] as const) {
        if (perk[key] !== undefined) addText(ctx, "only allowed together with command", undefined, [key]);
      }
    }
  });

const fivemPerkSchema = z
  .strictObject({
    server: textSchema,
    whitelist: z.literal(true).optional(),
    priority: intInRange("a whole number of at least 1", 1).optional(),
    ace: textSchema.optional(),
  })
  .superRefine(exactlyOne(["whitelist", "priority", "ace"]));

const httpPerkSchema = z.strictObject({ endpoint: textSchema });

/** One entry of a plan's `perks` list; some (`roles: [..]`) expand to several {@link Perk}s. */
export const perkEntrySchema = z
  .strictObject({
    discord: discordPerkSchema.optional(),
    minecraft: minecraftPerkSchema.optional(),
    fivem: fivemPerkSchema.optional(),
    http: httpPerkSchema.optional(),
  })
  .superRefine(exactlyOne(["discord", "minecraft", "fivem", "http"]));

export type PerkEntry = z.output<typeof perkEntrySchema>;

const planSchema = z.strictObject({
  grace: duration().default(0),
  honor_paid_period: boolSchema.default(false),
  perks: z.array(perkEntrySchema).default([]),
  trial_perks: z.array(perkEntrySchema).optional(),
});

const statusListSchema = z.array(textSchema);

const policySchema = z.strictObject({
  /** Treat perks a member already had as granted by perkbridge (so they can be revoked). */
  adopt_existing: boolSchema.default(false),
  mass_revoke: z
    .strictObject({
      window: duration().prefault("10m"),
      share: shareSchema.default(0.1),
      min: intInRange("a whole number of at least 0", 0).default(25),
    })
    .prefault({}),
  statuses: z
    .strictObject({
      grant: statusListSchema.optional(),
      trial: statusListSchema.optional(),
      revoke: statusListSchema.optional(),
    })
    .optional(),
});

/** The whole file. Every section may be left out; an empty file is a valid (idle) config. */
export const configSchema = z
  .strictObject({
    server: serverSchema.prefault({}),
    state: stateSchema.prefault({}),
    log: logSchema.prefault({}),
    admin: adminSchema.prefault({}),
    sources: sourcesSchema.prefault({}),
    targets: targetsSchema.prefault({}),
    plans: z.record(z.string().min(1), planSchema).default({}),
    policy: policySchema.prefault({}),
  })
  .transform((config) => ({
    ...config,
    admin: { ...config.admin, socket: config.admin.socket ?? join(config.state.dir, "admin.sock") },
  }));

/** The validated configuration, snake_case as in the file, with defaults filled in and values normalized. */
export type Config = z.output<typeof configSchema>;

// ── Secrets ──────────────────────────────────────────────────────────────

/**
 * Fields that hold secrets (`*` matches any name). Their values are never
 * shown in errors and are handed to the logger for redaction.
 */
export const SECRET_PATHS: readonly (readonly string[])[] = [
  ["sources", "paymenthub", "api_key"],
  ["sources", "paymenthub", "webhook_secrets"],
  ["targets", "discord", "token"],
  ["targets", "minecraft", "servers", "*", "rcon", "password"],
  ["targets", "http", "endpoints", "*", "secret"],
];

/** Whether `path` is a secret field or lies inside one (`webhook_secrets[1]`). */
export function isSecretPath(path: readonly PropertyKey[]): boolean {
  return SECRET_PATHS.some(
    (pattern) => path.length >= pattern.length && pattern.every((part, i) => part === "*" || part === String(path[i])),
  );
}

/** Every string at a secret path of `value` (a parsed config or raw input). */
export function collectSecretValues(value: unknown): string[] {
  const out: string[] = [];
  const visit = (node: unknown, path: readonly string[]): void => {
    if (isSecretPath(path)) {
      collectStrings(node, out);
      return;
    }
    if (node !== null && typeof node === "object" && !Array.isArray(node)) {
      for (const [key, child] of Object.entries(node)) visit(child, [...path, key]);
    }
  };
  visit(value, []);
  return out;
}

function collectStrings(node: unknown, out: string[]): void {
  if (typeof node === "string") out.push(node);
  else if (Array.isArray(node)) for (const item of node) collectStrings(item, out);
}

// ── Cross-checks ─────────────────────────────────────────────────────────

/** A problem found by {@link crossCheckConfig}, worded like the schema's custom issues. */
export interface CrossCheckIssue {
  readonly path: readonly PropertyKey[];
  readonly params: ConfigIssueParams;
}

function asRecord(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * References between sections: every perk must name a Discord guild, a
 * Minecraft server or an HTTP endpoint that is configured. Works on the raw
 * (interpolated) input rather than inside the schema so these problems are
 * listed together with all others, not only once everything else is valid;
 * values of the wrong type are left to the schema.
 */
export function crossCheckConfig(raw: unknown): CrossCheckIssue[] {
  const issues: CrossCheckIssue[] = [];
  const root = asRecord(raw);
  const targets = asRecord(root?.["targets"]);
  const discord = asRecord(targets?.["discord"]);
  const guildList = Array.isArray(discord?.["guilds"]) ? (discord["guilds"] as unknown[]) : [];
  const guildIds = new Set<string>();
  guildList.forEach((guild, index) => {
    const id = asRecord(guild)?.["id"];
    if (typeof id !== "string") return;
    if (guildIds.has(id)) {
      issues.push({ path: ["targets", "discord", "guilds", index, "id"], params: { text: `guild ${JSON.stringify(id)} is listed twice`, redacted: "this guild is listed twice" } });
    }
    guildIds.add(id);
  });
  const servers = asRecord(asRecord(targets?.["minecraft"])?.["servers"]) ?? {};
  const endpoints = asRecord(asRecord(targets?.["http"])?.["endpoints"]) ?? {};

  const checkRef = (path: PropertyKey[], value: unknown, known: (v: string) => boolean, what: string, where: string, section: string): void => {
    if (typeof value !== "string" || known(value)) return;
    const text = `${what} ${JSON.stringify(value)} is not defined in ${where}`;
    const missing = section === "" ? "" : ` (there is no ${section} section)`;
    issues.push({ path, params: { text: text + missing, redacted: `this ${what} is not defined in ${where}${missing}` } });
  };

  for (const [planId, plan] of Object.entries(asRecord(root?.["plans"]) ?? {})) {
    for (const listKey of ["perks", "trial_perks"] as const) {
      const list = asRecord(plan)?.[listKey];
      if (!Array.isArray(list)) continue;
      list.forEach((entry: unknown, index) => {
        const at = (...rest: string[]): PropertyKey[] => ["plans", planId, listKey, index, ...rest];
        const perk = asRecord(entry);
        const discordPerk = asRecord(perk?.["discord"]);
        if (discordPerk) {
          checkRef(at("discord", "guild"), discordPerk["guild"], (v) => guildIds.has(v), "Discord guild", "targets.discord.guilds", discord ? "" : "targets.discord");
        }
        const minecraftPerk = asRecord(perk?.["minecraft"]);
        if (minecraftPerk) {
          checkRef(at("minecraft", "server"), minecraftPerk["server"], (v) => Object.hasOwn(servers, v), "Minecraft server", "targets.minecraft.servers", targets?.["minecraft"] === undefined ? "targets.minecraft" : "");
        }
        const httpPerk = asRecord(perk?.["http"]);
        if (httpPerk) {
          checkRef(at("http", "endpoint"), httpPerk["endpoint"], (v) => Object.hasOwn(endpoints, v), "HTTP endpoint", "targets.http.endpoints", targets?.["http"] === undefined ? "targets.http" : "");
        }
      });
    }
  }

  const metadata = asRecord(asRecord(asRecord(asRecord(root?.["sources"])?.["paymenthub"])?.["metadata"]));
  const owned = Array.isArray(metadata?.["owned"]) ? (metadata["owned"] as unknown[]).filter((p) => typeof p === "string") : [];
  const trimDrop = metadata?.["trim_drop"];
  if (Array.isArray(trimDrop)) {
    trimDrop.forEach((path: unknown, index) => {
      if (typeof path !== "string" || owned.some((o) => path === o || path.startsWith(`${o}.`))) return;
      issues.push({
        path: ["sources", "paymenthub", "metadata", "trim_drop", index],
        params: { text: `${JSON.stringify(path)} is not among the owned paths: perkbridge only trims keys it owns`, redacted: "not among the owned paths: perkbridge only trims keys it owns" },
      });
    });
  }
  return issues;
}

// ── Plans → core rules ───────────────────────────────────────────────────

/** The core {@link Perk}s one perk entry stands for. */
export function perksFromEntry(entry: PerkEntry): Perk[] {
  if (entry.discord) {
    const { guild, role, roles } = entry.discord;
    return (roles ?? (role === undefined ? [] : [role])).map((value) => ({ target: "discord", scope: guild, kind: "role", value }));
  }
  if (entry.minecraft) {
    const m = entry.minecraft;
    if (m.group !== undefined) return [{ target: "minecraft", scope: m.server, kind: "group", value: m.group }];
    if (m.whitelist) return [{ target: "minecraft", scope: m.server, kind: "whitelist", value: "" }];
    if (m.command !== undefined && m.grant !== undefined) {
      const params: Record<string, string | boolean> = { grant: m.grant, once: m.once ?? true, online_only: m.online_only ?? false };
      if (m.revoke !== undefined) params["revoke"] = m.revoke;
      return [{ target: "minecraft", scope: m.server, kind: "command", value: m.command, params }];
    }
  }
  if (entry.fivem) {
    const f = entry.fivem;
    if (f.whitelist) return [{ target: "fivem", scope: f.server, kind: "whitelist", value: "" }];
    if (f.priority !== undefined) return [{ target: "fivem", scope: f.server, kind: "priority", value: String(f.priority) }];
    if (f.ace !== undefined) return [{ target: "fivem", scope: f.server, kind: "ace", value: f.ace }];
  }
  if (entry.http) return [{ target: "http", scope: entry.http.endpoint, kind: "event", value: "" }];
  return [];
}

/** The plans of a validated config as the core's {@link PlanRules}, by plan id. */
export function planRulesFromConfig(config: Pick<Config, "plans">): Map<string, PlanRules> {
  const rules = new Map<string, PlanRules>();
  for (const [id, plan] of Object.entries(config.plans)) {
    const base = { id, perks: plan.perks.flatMap(perksFromEntry), graceMs: plan.grace, honorPaidPeriod: plan.honor_paid_period };
    rules.set(id, plan.trial_perks === undefined ? base : { ...base, trialPerks: plan.trial_perks.flatMap(perksFromEntry) });
  }
  return rules;
}
