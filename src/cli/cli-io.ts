import { ConfigError } from "../daemon/config/config-error.js";
import { loadConfig, type LoadedConfig } from "../daemon/config/load-config.js";
import { createRedactor } from "../daemon/create-logger.js";

/** What a command touches of its process, so commands stay testable in-process. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Calls `handler` on each SIGTERM and SIGINT; returns a function that removes it. */
  readonly onStopSignal: (handler: (signal: NodeJS.Signals) => void) => () => void;
  /** From now on, blanks these values out of everything written to stdout and stderr. */
  readonly redactSecrets: (secrets: readonly string[]) => void;
}

/** Exit codes of the `perkbridge` command. */
export const EXIT = {
  ok: 0,
  /** Unexpected failure. */
  failure: 1,
  /** Invalid configuration or command-line usage. */
  usage: 2,
  /** A second stop signal while stopping. */
  interrupted: 130,
} as const;

/** The real process. */
export function processIo(): CliIo {
  let redact = (text: string): string => text;
  return {
    stdout: (text) => void process.stdout.write(redact(text)),
    stderr: (text) => void process.stderr.write(redact(text)),
    env: process.env,
    onStopSignal(handler) {
      process.on("SIGTERM", handler);
      process.on("SIGINT", handler);
      return () => {
        process.off("SIGTERM", handler);
        process.off("SIGINT", handler);
      };
    },
    redactSecrets(secrets) {
      redact = createRedactor(secrets) ?? redact;
    },
  };
}

/** The one line printed for an unexpected error: its message's first line, and its code. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const firstLine = error.message.split("\n", 1)[0] ?? "";
  return typeof code === "string" ? `${firstLine} [${code}]` : firstLine;
}

/**
 * Loads the config for a command: a configuration error is printed (every problem, no stack) and
 * becomes exit code 2; on success every secret of it is redacted from what the command prints.
 */
export async function loadConfigForCommand(configPath: string, io: CliIo): Promise<LoadedConfig | number> {
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(configPath, io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`perkbridge: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  io.redactSecrets(loaded.secrets);
  return loaded;
}
