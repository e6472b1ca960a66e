import { link, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { PerkbridgeError } from "../../core/errors.js";
import { TEMP_MARK } from "./durable-file-adapter.js";

/** Name of the lock file inside the state directory. */
export const LOCK_FILE_NAME = "perkbridge.lock";

/** Another live perkbridge holds the state directory. */
export class StateLockedError extends PerkbridgeError {
  readonly lockFile: string;
  readonly pid: number;

  constructor(dir: string, lockFile: string, pid: number) {
    super(
      "ERR_STATE_LOCKED",
      `state directory ${dir} is in use by another perkbridge (pid ${pid}). ` +
        `Stop it first, or point --config at another state.dir. ` +
        `If no perkbridge is running, pid ${pid} now belongs to another program: delete ${lockFile} and start again.`,
    );
    this.lockFile = lockFile;
    this.pid = pid;
  }
}

/** Who held a lock, as written in the lock file. */
export interface LockHolder {
  readonly pid: number;
  /** Epoch ms when the holding process started (not when it took the lock). */
  readonly processStartedAt: number;
  readonly hostname: string;
  /** ISO time the lock was taken, for humans reading the file. */
  readonly since: string;
}

/** A held lock on one state directory. */
export interface StateLock {
  readonly file: string;
  /**
   * Set when a lock left by a dead process was taken over (worth a log
   * line: the previous daemon did not stop cleanly). `holder` is undefined
   * when the old lock file was unreadable.
   */
  readonly tookOver?: { readonly holder: LockHolder | undefined };
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>;
}

// Same for every call in this process, different for a later process that
// happens to get the same pid (a container's daemon is often pid 1 every time).
const processStartedAt = Math.round(performance.timeOrigin);

/**
 * Takes `<dir>/perkbridge.lock` for this process, or throws
 * {@link StateLockedError} when a live process holds it. A lock whose process
 * is gone is taken over.
 *
 * The lock is created complete (written to a temp file, then hard-linked into
 * place, which fails if the name exists), so a reader never sees a half
 * written lock. Taking over a stale lock is not atomic: two daemons starting
 * in the same instant after a crash could both remove it; only one then wins
 * the link, and the loser re-reads a live lock and stops.
 */
export async function acquireStateLock(dir: string, now: () => number = Date.now): Promise<StateLock> {
  const file = join(dir, LOCK_FILE_NAME);
  const mine: LockHolder = {
    pid: process.pid,
    processStartedAt,
    hostname: hostname(),
    since: new Date(now()).toISOString(),
  };
  const tmp = `${file}${TEMP_MARK}${process.pid}`;
  await writeFile(tmp, JSON.stringify(mine) + "\n", { mode: 0o600 });
  let tookOver: StateLock["tookOver"];
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, file);
        break;
      } catch (error) {
        if (!(error instanceof Error && "code" in error && error.code === "EEXIST")) throw error;
      }
      const holder = await readHolder(file);
      if (holder === null) continue; // removed between our link and our read: try again
      if ((holder !== undefined && isAlive(holder)) || attempt >= 2) {
        throw new StateLockedError(dir, file, holder?.pid ?? 0);
      }
      await rm(file, { force: true });
      tookOver = { holder };
    }
  } finally {
    await rm(tmp, { force: true });
  }
  return {
    file,
    ...(tookOver === undefined ? {} : { tookOver }),
    async release() {
      const holder = await readHolder(file);
      if (holder?.pid === mine.pid && holder.processStartedAt === mine.processStartedAt) await rm(file, { force: true });
    },
  };
}

/** The lock's holder; undefined when the file is unreadable, null when it is gone. */
async function readHolder(file: string): Promise<LockHolder | undefined | null> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "ENOENT") return null;
    throw error;
  }
  try {
    const data: unknown = JSON.parse(text);
    if (
      typeof data === "object" && data !== null &&
      "pid" in data && typeof data.pid === "number" && Number.isSafeInteger(data.pid) && data.pid > 0 &&
      "processStartedAt" in data && typeof data.processStartedAt === "number"
    ) {
      return data as LockHolder;
    }
  } catch {
    // Fall through: an unreadable lock protects nothing.
  }
  return undefined;
}

function isAlive(holder: LockHolder): boolean {
  if (holder.pid === process.pid) return holder.processStartedAt === processStartedAt;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}
