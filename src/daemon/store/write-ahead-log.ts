import { open, readFile, readdir, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { PerkbridgeError } from "../../core/errors.js";

/** One change of a pass: `v` absent means deleted. */
export interface LogChange {
  readonly c: string;
  readonly k: string;
  readonly v?: unknown;
}

/** One write pass: one line of a log segment. */
export interface LogPass {
  readonly pass: number;
  readonly changes: readonly LogChange[];
}

/** A log segment as read on open. */
export interface LogSegment {
  readonly seq: number;
  readonly file: string;
  readonly passes: readonly LogPass[];
  /** Bytes of complete lines; anything after them is the torn tail of an append cut short. */
  readonly goodBytes: number;
  readonly tornBytes: number;
}

const SEGMENT_PATTERN = /^perkbridge-(\d{8})\.log$/;

/** The file name of segment `seq`, e.g. `perkbridge-00000001.log`. */
export function segmentFileName(seq: number): string {
  return `perkbridge-${String(seq).padStart(8, "0")}.log`;
}

/** The segments in `dir`, oldest first, parsed. A torn last line is reported, not an error. */
export async function readLogSegments(dir: string): Promise<LogSegment[]> {
  const seqs = (await readdir(dir))
    .map((name) => SEGMENT_PATTERN.exec(name)?.[1])
    .filter((seq): seq is string => seq !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const segments: LogSegment[] = [];
  for (const seq of seqs) {
    const file = join(dir, segmentFileName(seq));
    segments.push({ seq, file, ...parseSegment(await readFile(file), file) });
  }
  return segments;
}

/**
 * Splits a segment into passes. A line is acknowledged only once it is complete and fsynced, and
 * a failed append is truncated away before the next one, so the only damage a crash can leave is
 * an incomplete (or, on some file systems, zero-filled) tail after the last newline-terminated
 * line that parses. Damage anywhere before a good line is corruption.
 */
export function parseSegment(bytes: Buffer, file: string): { passes: LogPass[]; goodBytes: number; tornBytes: number } {
  const passes: LogPass[] = [];
  let offset = 0;
  let line = 0;
  while (offset < bytes.length) {
    const end = bytes.indexOf(0x0a, offset);
    line += 1;
    const parsed = end === -1 ? undefined : parseLine(bytes.subarray(offset, end));
    if (parsed === undefined) {
      if (end !== -1 && hasGoodLineAfter(bytes, end + 1)) {
        throw new PerkbridgeError(
          "ERR_STATE_CORRUPT",
          `${file} is corrupt at line ${line}, before changes that follow it. ` +
            `Restore the state directory from your own backups, or move it aside to start empty, then start again.`,
        );
      }
      break;
    }
    passes.push(parsed);
    offset = end + 1;
  }
  return { passes, goodBytes: offset, tornBytes: bytes.length - offset };
}

function hasGoodLineAfter(bytes: Buffer, from: number): boolean {
  let offset = from;
  while (offset < bytes.length) {
    const end = bytes.indexOf(0x0a, offset);
    if (end === -1) return false;
    if (parseLine(bytes.subarray(offset, end)) !== undefined) return true;
    offset = end + 1;
  }
  return false;
}

function parseLine(bytes: Buffer): LogPass | undefined {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null || !("pass" in data) || !Number.isSafeInteger(data.pass) || !("changes" in data) || !Array.isArray(data.changes)) {
    return undefined;
  }
  for (const change of data.changes as unknown[]) {
    if (typeof change !== "object" || change === null || !("c" in change) || typeof change.c !== "string" || !("k" in change) || typeof change.k !== "string") {
      return undefined;
    }
  }
  return data as LogPass;
}

/** The segment passes are appended to. One append at a time (the store's passes are sequential). */
export interface LogAppender {
  readonly file: string;
  readonly seq: number;
  /** Bytes in the file. */
  readonly size: number;
  /** A failed append could not be cut back: nothing more may be appended here. */
  readonly broken: boolean;
  /**
   * Appends `text` and fdatasyncs. On failure the file is cut back to its previous size, so a
   * half-written line never sits before a later good one; if even that fails, the appender is
   * broken and every later append throws (the store then starts a new segment).
   */
  append(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens (creating, mode 0600) segment `seq` for appending; `size` must be its good length (see {@link parseSegment}). */
export async function openLogAppender(dir: string, seq: number, size: number): Promise<LogAppender> {
  const file = join(dir, segmentFileName(seq));
  const handle: FileHandle = await open(file, "a+", 0o600);
  let length = size;
  let broken: unknown;
  // A torn tail from a crash is cut before the first append; appends go after it otherwise.
  if ((await handle.stat()).size !== size) {
    await handle.truncate(size);
    await handle.datasync();
  }
  return {
    file,
    seq,
    get size() {
      return length;
    },
    get broken() {
      return broken !== undefined;
    },
    async append(text) {
      if (broken !== undefined) throw broken;
      const buffer = Buffer.from(text, "utf8");
      try {
        let written = 0;
        while (written < buffer.length) {
          const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, null);
          written += bytesWritten;
        }
        await handle.datasync();
        length += buffer.length;
      } catch (error) {
        try {
          await handle.truncate(length);
          await handle.datasync();
        } catch (truncateError) {
          broken = truncateError;
        }
        throw error;
      }
    },
    close: () => handle.close(),
  };
}

/** Deletes the segment files of `seqs`. */
export async function removeSegments(dir: string, seqs: readonly number[]): Promise<void> {
  for (const seq of seqs) await rm(join(dir, segmentFileName(seq)), { force: true });
}
