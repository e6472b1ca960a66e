/**
 * Turns zod issues and our own findings into lines an admin can act on:
 * the path in the file, what was expected, what was found. Never shows a
 * value that is secret or came from the environment.
 */
import type { z } from "zod";
import type { ConfigIssueParams, CrossCheckIssue } from "./config-schema.js";
import type { ConfigPath } from "./interpolate-env.js";

/** One problem in a configuration file. */
export interface ConfigProblem {
  /** Dotted path as an admin reads it: `plans.plan_premium.perks[0].discord.guild`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
  /** 1-based line in the file, where known. */
  readonly line?: number;
  /** 1-based column, for YAML syntax errors. */
  readonly column?: number;
}

/** What the formatter needs to know about the file the issues are about. */
export interface FormatContext {
  /** Whether the value at `path` must not be echoed (a secret field, or interpolated from the environment). */
  isSensitive(path: ConfigPath): boolean;
  /** The line where `path` (or its nearest existing parent) is written. */
  lineOf(path: ConfigPath): number | undefined;
  /** The keys allowed in the object at `path`, for "did you mean" hints. */
  knownKeysAt(path: ConfigPath): readonly string[];
}

/** `plans.plan_premium.perks[0].discord`; odd keys are quoted: `plans["a b"]`. */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = String(part);
      if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === "" ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function typeName(value: unknown): string {
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
    case "bigint":
      return "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "a mapping";
    default:
      return typeof value;
  }
}

/** Strips `user:password@` from URLs, as got does in its messages. */
function withoutCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, "$1***@");
}

/** How a found value is shown after "got": the value itself when harmless, else only its type. */
export function describeValue(value: unknown, sensitive: boolean): string {
  if (sensitive) return `${typeName(value)} (value hidden)`;
  if (typeof value === "string") {
    const shown = withoutCredentials(value);
    return JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  return typeName(value);
}

const EXPECTED_TYPE: Readonly<Record<string, string>> = {
  object: "a mapping (key: value)",
  record: "a mapping (key: value)",
  array: "a list",
  string: "a string",
  number: "a number",
  boolean: "true or false",
};

function listWords(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} or ${items.at(-1) ?? ""}`;
}

/** Optimal string alignment distance: a swap of two letters (`grcae`) counts once. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const close = known
    .map((k) => ({ k, distance: editDistance(key.toLowerCase(), k.toLowerCase()) }))
    .filter(({ k, distance }) => distance <= Math.max(1, Math.floor(k.length / 3)))
    .sort((x, y) => x.distance - y.distance)[0];
  if (close) return `unknown key (did you mean ${close.k}?)`;
  return known.length > 0 ? `unknown key; expected one of ${listWords(known)}` : "unknown key";
}

function isIssueParams(params: unknown): params is ConfigIssueParams {
  return params !== null && typeof params === "object" && ("expected" in params || "text" in params);
}

function messageFromParams(params: ConfigIssueParams, input: unknown, sensitive: boolean): string {
  if ("expected" in params) {
    return input === undefined ? `required: expected ${params.expected}` : `expected ${params.expected}, got ${describeValue(input, sensitive)}`;
  }
  return sensitive && params.redacted !== undefined ? params.redacted : params.text;
}

interface RawProblem {
  readonly path: ConfigPath;
  readonly message: string;
}

function toPath(path: readonly PropertyKey[]): ConfigPath {
  return path.map((p) => (typeof p === "number" ? p : String(p)));
}

function problemsFromIssue(issue: z.core.$ZodIssue, ctx: FormatContext): RawProblem[] {
  const path = toPath(issue.path);
  const sensitive = ctx.isSensitive(path);
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => ({ path: [...path, key], message: unknownKeyMessage(key, ctx.knownKeysAt(path)) }));
    case "invalid_type":
      if (input === undefined) return [{ path, message: `required: expected ${EXPECTED_TYPE[issue.expected] ?? issue.expected}` }];
      return [{ path, message: `expected ${EXPECTED_TYPE[issue.expected] ?? issue.expected}, got ${describeValue(input, sensitive)}` }];
    case "invalid_value": {
      const options = issue.values.map((v) => (typeof v === "string" ? v : String(v)));
      const expected = options.length === 1 ? (options[0] ?? "") : `one of ${listWords(options)}`;
      return [{ path, message: input === undefined ? `required: expected ${expected}` : `expected ${expected}, got ${describeValue(input, sensitive)}` }];
    }
    case "too_small":
      if (issue.origin === "array") return [{ path, message: `expected a list of at least ${String(issue.minimum)} item${issue.minimum === 1 ? "" : "s"}` }];
      if (issue.origin === "string") return [{ path, message: "must not be empty" }];
      return [{ path, message: issue.message }];
    case "invalid_key":
      return [{ path, message: "invalid name: use letters, digits, _, - and . only" }];
    case "custom":
      if (isIssueParams(issue.params)) return [{ path, message: messageFromParams(issue.params, input, sensitive) }];
      return [{ path, message: issue.message }];
    default:
      // zod's own wording; it never includes the value.
      return [{ path, message: issue.message }];
  }
}

/**
 * Everything wrong with a file, in the order it appears in the file.
 * `interpolation` problems come from interpolate-env.ts, `crossChecks` from
 * {@link crossCheckConfig}.
 */
export function formatConfigIssues(
  input: {
    readonly interpolation: readonly RawProblem[];
    readonly schema: readonly z.core.$ZodIssue[];
    readonly crossChecks: readonly CrossCheckIssue[];
  },
  ctx: FormatContext,
): ConfigProblem[] {
  const raw: RawProblem[] = [
    ...input.interpolation,
    ...input.schema.flatMap((issue) => problemsFromIssue(issue, ctx)),
    ...input.crossChecks.map((issue) => {
      const path = toPath(issue.path);
      return { path, message: messageFromParams(issue.params, undefined, ctx.isSensitive(path)) };
    }),
  ];
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const { path, message } of raw) {
    const formatted = formatConfigPath(path);
    const key = `${formatted}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const line = ctx.lineOf(path);
    problems.push(line === undefined ? { path: formatted, message } : { path: formatted, message, line });
  }
  // Stable sort: same line keeps the order zod found them in.
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => (a.problem.line ?? 0) - (b.problem.line ?? 0) || a.index - b.index)
    .map(({ problem }) => problem);
}

/**
 * One line per problem: `plans.p.grace: expected a duration such as 3d or 12h, got "soon" (line 12)`,
 * or `line 3, column 12: Missing closing "quote` for a problem of the file as a whole.
 */
export function formatConfigProblem(problem: ConfigProblem): string {
  if (problem.path === "") {
    if (problem.line === undefined) return problem.message;
    const column = problem.column === undefined ? "" : `, column ${problem.column}`;
    return `line ${problem.line}${column}: ${problem.message}`;
  }
  return `${problem.path}: ${problem.message}${problem.line === undefined ? "" : ` (line ${problem.line})`}`;
}

type LooseDef = {
  readonly type: string;
  readonly shape?: Readonly<Record<string, z.ZodType>>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly element?: z.ZodType;
};

/**
 * The keys an object schema allows at `path` inside `schema`, following
 * optional/default/pipe wrappers, records and arrays; empty when unknown.
 */
export function knownKeysAt(schema: z.ZodType, path: ConfigPath): string[] {
  let node: z.ZodType | undefined = schema;
  let rest = [...path];
  for (let guard = 0; node !== undefined && guard < 200; guard++) {
    const def = node._zod.def as unknown as LooseDef;
    if (def.innerType) node = def.innerType;
    else if (def.type === "pipe") node = def.in;
    else if (rest.length === 0) return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
    else if (def.type === "object" && def.shape) {
      node = def.shape[String(rest[0])];
      rest = rest.slice(1);
    } else if (def.type === "record") {
      node = def.valueType;
      rest = rest.slice(1);
    } else if (def.type === "array") {
      node = def.element;
      rest = rest.slice(1);
    } else return [];
  }
  return [];
}
