import { readFile } from "node:fs/promises";
import { isAlias, isMap, isNode, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from "yaml";
import type { PlanRules } from "../../core/perk.js";
import { ConfigError } from "./config-error.js";
import { collectSecretValues, configSchema, crossCheckConfig, isSecretPath, planRulesFromConfig, type Config } from "./config-schema.js";
import { formatConfigIssues, knownKeysAt, type ConfigProblem } from "./format-config-errors.js";
import { interpolateEnv, type ConfigPath } from "./interpolate-env.js";

/** The environment as `process.env` has it; passed in so tests and the pure parts never read globals. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A configuration ready to use. */
export interface LoadedConfig {
  /** The validated file, snake_case, with defaults filled in. */
  readonly config: Config;
  /** `config.plans` as the core's rules, by plan id. */
  readonly plans: ReadonlyMap<string, PlanRules>;
  /**
   * Every value that came from the environment or sits in a secret field,
   * longest first, so the logger can redact them by value.
   */
  readonly secrets: readonly string[];
  /** Where the config came from (the path, or the name given to `parseConfig`). */
  readonly source: string;
}

/** The default of `--config`. */
export const DEFAULT_CONFIG_PATH = "config/perkbridge.yaml";

/** Reads and validates the config file; throws {@link ConfigError} listing every problem. */
export async function loadConfig(path: string, env: Env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT"
        ? "file not found; copy config/perkbridge.example.yaml there, or pass --config <file>"
        : code === "EACCES"
          ? "cannot read the file: permission denied"
          : code === "EISDIR"
            ? "this is a directory; pass --config <file>"
            : `cannot read the file (${code ?? "unknown error"})`;
    throw new ConfigError(path, [{ path: "", message }], { cause: error });
  }
  return parseConfig(text, env, path);
}

/** Validates config text held in memory; `sourceName` names it in messages. */
export function parseConfig(text: string, env: Env, sourceName: string): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = text.split(/\r?\n/);
    throw new ConfigError(
      sourceName,
      doc.errors.map((error): ConfigProblem => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        // First line only, capped: some yaml messages quote source text, which may hold a literal secret.
        const message = (error.message.split("\n")[0] ?? "").slice(0, 120);
        // `{ key: ${NAME} }` reads as a nested flow mapping; the fix is not obvious from yaml's wording.
        const hint = lines[line - 1]?.includes("${") ? ' (inside { } or [ ], quote values that use ${NAME}: "${NAME}")' : "";
        return { path: "", message: `YAML syntax error: ${message}${hint}`, line, column: col };
      }),
    );
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new ConfigError(sourceName, [{ path: "", message: `cannot read the YAML: ${error instanceof Error ? error.message : String(error)}` }], { cause: error });
  }

  const interpolation = interpolateEnv(raw, env);
  const parsed = configSchema.safeParse(interpolation.value, { reportInput: true });
  const crossChecks = crossCheckConfig(interpolation.value);
  const envValues = interpolation.envValues;

  if (!parsed.success || interpolation.problems.length > 0 || crossChecks.length > 0) {
    const interpolated = new Set(interpolation.interpolatedPaths.map(pathKey));
    const unresolved = new Set(interpolation.problems.map((p) => pathKey(p.path)));
    // A string with an unset `${NAME}` fails its field too; the unset variable is the problem worth reading.
    const schemaIssues = (parsed.error?.issues ?? []).filter((issue) => !unresolved.has(pathKey(issue.path)));
    const problems = formatConfigIssues(
      { interpolation: interpolation.problems, schema: schemaIssues, crossChecks },
      {
        isSensitive: (path) => isSecretPath(path) || interpolated.has(pathKey(path)),
        lineOf: (path) => lineOf(doc, lineCounter, path),
        knownKeysAt: (path) => knownKeysAt(configSchema, path),
      },
    );
    const secrets = sortSecrets([...envValues, ...collectSecretValues(interpolation.value)]);
    throw new ConfigError(sourceName, problems.map((p) => ({ ...p, message: redact(p.message, secrets) })));
  }

  const config = parsed.data;
  return {
    config,
    plans: planRulesFromConfig(config),
    secrets: sortSecrets([...envValues, ...collectSecretValues(config)]),
    source: sourceName,
  };
}

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map(String));
}

/** Unique, non-empty, longest first so a secret that contains another is redacted whole. */
function sortSecrets(values: readonly string[]): string[] {
  return [...new Set(values.filter((v) => v !== ""))].sort((a, b) => b.length - a.length);
}

/**
 * Last line of defence: messages are built so they do not show sensitive
 * values, but a secret that also appears elsewhere (say, pasted into a
 * guild id) must not slip through. Very short values are skipped, as they
 * would mangle ordinary words and give nothing away.
 */
function redact(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join("***");
  return out;
}

/** The line of the key (or list item) at `path`, else of its nearest parent that exists. */
function lineOf(doc: Document, lineCounter: LineCounter, path: ConfigPath): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  const lineAt = (n: unknown): number | undefined => {
    const range = isNode(n) ? (n as YamlNode).range : undefined;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  for (const part of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => isNode(item.key) && "value" in item.key && String(item.key.value) === String(part));
      if (!pair) break;
      line = lineAt(pair.key) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof part === "number") {
      const item: unknown = node.items[part];
      if (item === undefined) break;
      line = lineAt(item) ?? line;
      node = item;
    } else break;
  }
  return line;
}
