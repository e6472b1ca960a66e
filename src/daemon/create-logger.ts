import pinoPretty from "pino-pretty";
import { pino, type DestinationStream, type Logger } from "pino";

/** The daemon's logger; a plain pino logger so children and serializers work as usual. */
export type { Logger } from "pino";

/** How log lines look: JSON lines, human-readable, or pretty only when stdout is a terminal. */
export type LogFormat = "json" | "pretty" | "auto";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. */
  readonly level: string;
  /** Defaults to `auto`. */
  readonly format?: LogFormat;
  /**
   * Secret values (tokens, API keys, passwords) to blank out of every line, wherever they appear:
   * in a message, an error's stack, a nested field or a URL. Every non-empty value counts, however
   * short: a short secret also blanks unrelated text that happens to contain it, which is cheaper
   * than leaking it.
   */
  readonly secrets?: readonly string[];
  /** Where lines go; defaults to stdout. Tests pass a stream of their own. */
  readonly destination?: DestinationStream;
}

/** What a secret is replaced with. */
export const REDACTED = "[redacted]";

/**
 * Builds the daemon's logger. Secrets are redacted by value on the serialized line rather than by
 * pino's path-based `redact`, because a token can show up anywhere: inside an error message, a
 * stack trace or a URL that some library put in a field we don't know in advance.
 *
 * Pretty output uses pino-pretty's synchronous formatter on the redacted line instead of a worker
 * transport, so every line is written before the call returns (no lines lost on exit, and tests
 * read output without waiting).
 */
export function createLogger(options: LoggerOptions): Logger {
  const out: DestinationStream = options.destination ?? pino.destination({ dest: 1, sync: true });
  const pretty =
    options.format === "pretty" ||
    ((options.format ?? "auto") === "auto" && options.destination === undefined && process.stdout.isTTY);
  const redact = createRedactor(options.secrets ?? []);
  return pino(
    {
      level: options.level,
      timestamp: pino.stdTimeFunctions.isoTime,
      ...(redact === undefined ? {} : { hooks: { streamWrite: redact } }),
    },
    pretty ? createPrettyStream(out, options.destination === undefined && process.stdout.isTTY) : out,
  );
}

/**
 * Returns a function that replaces every occurrence of every secret in a serialized line, or
 * `undefined` when there is nothing to redact. Besides the raw value it matches the forms a value
 * takes once serialized: JSON-escaped (a secret with a quote or backslash) and percent-encoded (a
 * secret in a URL's query).
 */
export function createRedactor(secrets: readonly string[]): ((line: string) => string) | undefined {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === "") continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
    forms.add(encodeURIComponent(secret));
    // A secret in a URL that is then put in a JSON string.
    forms.add(JSON.stringify(encodeURIComponent(secret)).slice(1, -1));
  }
  if (forms.size === 0) return undefined;
  // Longest first, in one pass: a secret that contains another is replaced whole, and the
  // replacement text itself is never scanned again.
  const pattern = new RegExp(
    [...forms]
      .sort((a, b) => b.length - a.length)
      .map((form) => form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("|"),
    "g",
  );
  return (line) => line.replace(pattern, REDACTED);
}

function createPrettyStream(out: DestinationStream, colorize: boolean): DestinationStream {
  const prettify = pinoPretty.prettyFactory({ colorize, ignore: "pid,hostname" });
  return { write: (line: string) => out.write(prettify(line)) };
}
