import { PerkbridgeError } from "../../core/errors.js";
import { formatConfigProblem, type ConfigProblem } from "./format-config-errors.js";

/**
 * The configuration file cannot be used. The message lists every problem,
 * one per line, with its path and line; it never contains a secret. Print
 * the message, not the stack: it is meant for the admin.
 */
export class ConfigError extends PerkbridgeError {
  /** The file (or name given to `parseConfig`) the problems are in. */
  readonly source: string;
  readonly problems: readonly ConfigProblem[];

  constructor(source: string, problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super("ERR_CONFIG", `${source}: ${count} in the configuration:\n${problems.map((p) => `  - ${formatConfigProblem(p)}`).join("\n")}`, options);
    this.source = source;
    this.problems = problems;
  }
}
