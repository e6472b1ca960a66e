import { createInterface } from "node:readline";
import type { CliIo } from "./cli-io.js";
import { formatCount } from "./format-table.js";

/** What the operator commands need to know of the terminal beyond {@link CliIo}. */
export interface Terminal {
  /** stderr is a terminal: progress is drawn there. Otherwise (a log, a pipe) nothing is. */
  readonly stderrIsTTY: boolean;
  /** stdin is a terminal: the operator can be asked a question. */
  readonly stdinIsTTY: boolean;
  /** Reads one line the operator types; undefined at end of input. */
  readLine(): Promise<string | undefined>;
}

/** The real process's terminal. */
export function processTerminal(): Terminal {
  return {
    stderrIsTTY: process.stderr.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    readLine() {
      const rl = createInterface({ input: process.stdin, terminal: false });
      return new Promise((resolve) => {
        let answered = false;
        rl.once("line", (line) => {
          answered = true;
          rl.close();
          resolve(line);
        });
        rl.once("close", () => {
          if (!answered) resolve(undefined);
        });
      });
    },
  };
}

/** A progress display for one long operation. */
export interface Progress {
  /** `total` is 0 while unknown. */
  update(done: number, total: number): void;
  /** Clears the line; call once when the operation ends, however it ends. */
  finish(): void;
}

// Erase the whole line and return to its start: the line is redrawn in place.
const CLEAR_LINE = "\r\x1b[2K";

/**
 * A single line on stderr, redrawn in place, on a terminal only: in a log or a pipe, progress would
 * be thousands of lines of noise, so there it writes nothing at all.
 */
export function createProgress(io: Pick<CliIo, "stderr">, terminal: Pick<Terminal, "stderrIsTTY">, label: string): Progress {
  if (!terminal.stderrIsTTY) return { update: () => undefined, finish: () => undefined };
  let shown = "";
  let step = "";
  return {
    update(done, total) {
      // A sweep reports every member; a thousand redraws are plenty, whatever the total.
      const at = `${total}:${total > 0 ? Math.floor((done * 1000) / total) : Math.floor(done / 100)}`;
      if (at === step && done !== total) return;
      step = at;
      const text =
        total > 0
          ? `${label}: ${formatCount(done)}/${formatCount(total)} (${Math.floor((Math.min(done, total) * 100) / total)}%)`
          : `${label}: ${formatCount(done)}`;
      if (text === shown) return;
      shown = text;
      io.stderr(CLEAR_LINE + text);
    },
    finish() {
      if (shown !== "") io.stderr(CLEAR_LINE);
      shown = "";
    },
  };
}
