import { existsSync, readFileSync } from "node:fs";
import { link, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Adapter } from "lowdb";
import { PerkbridgeError } from "../../core/errors.js";

/** A state file that does not parse. Start-up stops; the file is never replaced by defaults. */
export class StateCorruptError extends PerkbridgeError {
  /** The corrupt file. */
  readonly file: string;
  /** The previous version of the file, when it exists and parses. */
  readonly backup: string | undefined;

  constructor(file: string, backup: string | undefined, message: string, options?: { cause?: unknown }) {
    super("ERR_STATE_CORRUPT", message, options);
    this.file = file;
    this.backup = backup;
  }
}

/** Options of {@link createDurableFileAdapter}. */
export interface DurableFileAdapterOptions<T> {
  /**
   * Checks the parsed JSON and returns it typed; throws (any Error, its
   * message becomes the reason) when the document has the wrong shape.
   * Default: any JSON value is accepted. A {@link PerkbridgeError} thrown
   * here is passed on as it is; any other error marks the file corrupt.
   */
  readonly parse?: (data: unknown) => T;
  /**
   * fsync the directory after the rename, so that the new name itself is
   * durable. Default true. The store turns it off and fsyncs each directory
   * once per commit pass instead; a write is then durable only after that.
   */
  readonly syncDirectory?: boolean;
  /** Called with the size in bytes after each completed write (counters, tests). */
  readonly onWrite?: (bytes: number) => void;
}

/** lowdb's async {@link Adapter}, with atomic and durable writes. */
export interface DurableFileAdapter<T> extends Adapter<T> {
  readonly file: string;
  /** Where the previous version of {@link file} is kept. */
  readonly backupFile: string;
  /** Writes text already serialized (the store serializes a snapshot when it is taken, writes it later). */
  writeText(text: string): Promise<void>;
  /** {@link read} with synchronous I/O, for the store's shards loaded on demand. */
  readSync(): T | null;
}

/** Suffix of every temporary file the adapter creates; leftovers of a crash carry it. */
export const TEMP_MARK = ".tmp-";

/** Whether `name` is a temporary file of an unfinished write (safe to delete while holding the state lock). */
export function isTempFileName(name: string): boolean {
  return name.includes(TEMP_MARK);
}

/**
 * A lowdb adapter for one JSON file, written atomically and durably. lowdb's
 * stock `JSONFile` (steno) renames without fsync, so a power cut can leave
 * an empty file behind a rename that was already acknowledged.
 *
 * A write goes:
 *   1. write `<file>.tmp-<pid>`, fsync it, close it;
 *   2. hard-link the current `<file>` to `<file>.bak.tmp-<pid>` and rename
 *      that over `<file>.bak` (the previous version, kept for recovery);
 *   3. rename the temp file over `<file>`;
 *   4. fsync the directory (unless {@link DurableFileAdapterOptions.syncDirectory} is off).
 * A crash anywhere leaves a complete file at `<file>`: before step 3 the old
 * one (untouched, steps 1-2 only add names), after it the new one (its data
 * was fsynced before the rename, and rename replaces atomically). `.bak` is
 * likewise always either absent, the version before the old one, or the old
 * one. Leftover `.tmp-` files are removed by the store on open, under its lock.
 * Files are never modified in place, so `.bak` and `<file>` may share an inode.
 *
 * Writes through one adapter run one after another. `data` is serialized when
 * `write()` is called, so later changes to it are not part of that write.
 */
export function createDurableFileAdapter<T>(
  file: string,
  options: DurableFileAdapterOptions<T> = {},
): DurableFileAdapter<T> {
  const parse = options.parse ?? ((data: unknown) => data as T);
  const syncDir = options.syncDirectory ?? true;
  const backupFile = `${file}.bak`;
  let queue: Promise<unknown> = Promise.resolve();

  async function writeNow(text: string): Promise<void> {
    const tmp = `${file}${TEMP_MARK}${process.pid}`;
    const backupTmp = `${backupFile}${TEMP_MARK}${process.pid}`;
    try {
      const handle = await open(tmp, "w", 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (await linkQuietly(file, backupTmp)) await rename(backupTmp, backupFile);
      await rename(tmp, file);
    } catch (error) {
      await rm(tmp, { force: true });
      await rm(backupTmp, { force: true });
      throw error;
    }
    if (syncDir) await syncDirectory(dirname(file));
    options.onWrite?.(Buffer.byteLength(text));
  }

  /** The file's text (undefined: no file) as a document; the backup's text only matters when it is damaged. */
  async function decode(text: string | undefined, backupText: () => Promise<string | undefined>): Promise<T | null> {
    const outcome = attempt(text);
    if (outcome === null || "doc" in outcome) return outcome?.doc ?? null;
    throw corruptError(file, backupFile, outcome.problem, parse, await backupText(), outcome.cause);
  }

  function decodeSync(text: string | undefined, backupText: () => string | undefined): T | null {
    const outcome = attempt(text);
    if (outcome === null || "doc" in outcome) return outcome?.doc ?? null;
    throw corruptError(file, backupFile, outcome.problem, parse, backupText(), outcome.cause);
  }

  /**
   * null: no file and no backup (never written); else the document or what is wrong with it. A
   * PerkbridgeError from parse() (a layout mismatch, which a backup cannot fix) is thrown as it is.
   */
  function attempt(text: string | undefined): { doc: T } | { problem: string; cause?: unknown } | null {
    if (text === undefined) {
      // Nothing ever deletes a state file, so a backup without its file means someone removed it:
      // starting empty would silently lose that state.
      return existsSync(backupFile) ? { problem: "is missing" } : null;
    }
    try {
      return { doc: parse(JSON.parse(text)) };
    } catch (error) {
      if (error instanceof PerkbridgeError) throw error;
      return { problem: `is corrupt (${reasonOf(error)})`, cause: error };
    }
  }

  return {
    file,
    backupFile,
    async read(): Promise<T | null> {
      return decode(await readIfExists(file), () => readIfExists(backupFile));
    },
    readSync(): T | null {
      return decodeSync(readIfExistsSync(file), () => readIfExistsSync(backupFile));
    },
    write(data: T): Promise<void> {
      return writeText(JSON.stringify(data));
    },
    writeText,
  };

  function writeText(text: string): Promise<void> {
    const run = queue.then(() => writeNow(text));
    queue = run.catch(() => undefined);
    return run;
  }
}

/** fsync a directory, making renames and new names in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals renames itself.
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function linkQuietly(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if (codeOf(error) === "ENOENT") return false; // first write: no previous version
    if (codeOf(error) !== "EEXIST") throw error;
    await rm(to, { force: true });
    await link(from, to);
    return true;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw error;
  }
}

function readIfExistsSync(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw error;
  }
}

function corruptError<T>(
  file: string,
  backupFile: string,
  problem: string,
  parse: (data: unknown) => T,
  backupText: string | undefined,
  cause?: unknown,
): StateCorruptError {
  let advice: string;
  let goodBackup: string | undefined;
  if (backupText === undefined) {
    advice =
      `There is no backup copy (${basename(backupFile)} does not exist): restore ${file} from your own backups, ` +
      `or move it aside to start that part of the state empty, then start again.`;
  } else {
    try {
      parse(JSON.parse(backupText));
      goodBackup = backupFile;
      advice = `The last good copy is ${backupFile}: inspect it and copy it over the ${problem === "is missing" ? "missing" : "corrupt"} file to recover, then start again.`;
    } catch (backupError) {
      advice =
        `Its backup ${backupFile} is unreadable too (${reasonOf(backupError)}): restore ${file} from your own backups, ` +
        `or move both aside to start that part of the state empty, then start again.`;
    }
  }
  return new StateCorruptError(file, goodBackup, `${file} ${problem}. ${advice}`, cause === undefined ? {} : { cause });
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): unknown {
  return error instanceof Error && "code" in error ? error.code : undefined;
}
