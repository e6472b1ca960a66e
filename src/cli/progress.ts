import { createInterface } from "node:readline";
import type { SweepProgress } from "../daemon/paymenthub/create-sweeper.js";
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
  /** `total` is 0 while unknown; `detail` follows the count (`page 3/50`). */
  update(done: number, total: number, detail?: string): void;
  /** Clears the line; call once when the operation ends, however it ends. */
  finish(): void;
}

// Erase the whole line and return to its start: the line is redrawn in place.
const CLEAR_LINE = "\r\x1b[2K";

/**
 * A single line on stderr, redrawn in place, on a terminal only: in a log or a pipe, progress would
 * be thousands of lines of noise, so there it writes nothing at all. After each draw the cursor goes
 * back to the start of the line: a log line the daemon writes meanwhile to the same terminal then
 * covers the progress instead of being appended to it, and the next draw comes below it.
 */
export function createProgress(io: Pick<CliIo, "stderr">, terminal: Pick<Terminal, "stderrIsTTY">, label: string): Progress {
  if (!terminal.stderrIsTTY) return { update: () => undefined, finish: () => undefined };
  let shown = "";
  let step = "";
  return {
    update(done, total, detail) {
      // A sweep reports every member; a thousand redraws are plenty, whatever the total.
      const at = `${total}:${total > 0 ? Math.floor((done * 1000) / total) : Math.floor(done / 100)}`;
      if (at === step && done !== total) return;
      step = at;
      const text =
        (total > 0
          ? `${label}: ${formatCount(done)}/${formatCount(total)} (${Math.floor((Math.min(done, total) * 100) / total)}%)`
          : `${label}: ${formatCount(done)}`) + (detail === undefined ? "" : `, ${detail}`);
      if (text === shown) return;
      shown = text;
      io.stderr(CLEAR_LINE + text + "\r");
    },
    finish() {
      if (shown !== "") io.stderr(CLEAR_LINE);
      shown = "";
    },
  };
}

/** The progress line of the billing source's sweeps in `perkbridge start`. */
export interface SweepProgressLine {
  /** Takes the sweeper's reports: the line is drawn while a sweep runs and cleared when it ends. */
  readonly observe: (progress: SweepProgress) => void;
  /** Clears the line and draws no more (the daemon is stopping, whatever the sweep still does). */
  close(): void;
}

/**
 * Draws each running sweep as `listing PaymentHub members: 1,200/5,000 (24%), page 12/50` with
 * {@link createProgress}: on a terminal only, so a daemon whose stderr is a log writes nothing.
 */
export function createSweepProgress(io: Pick<CliIo, "stderr">, terminal: Pick<Terminal, "stderrIsTTY">): SweepProgressLine {
  const progress = createProgress(io, terminal, "listing PaymentHub members");
  let closed = false;
  return {
    observe(p) {
      if (closed) return;
      if (p.finished) progress.finish();
      else progress.update(p.members, p.total, `page ${formatCount(p.pages)}/${formatCount(p.totalPages)}`);
    },
    close() {
      closed = true;
      progress.finish();
    },
  };
}
