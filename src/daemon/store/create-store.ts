import { readFileSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { PerkbridgeError } from "../../core/errors.js";
import type { Clock } from "../../core/ports.js";
import { createDurableFileAdapter, isTempFileName, syncDirectory, type DurableFileAdapter } from "./durable-file-adapter.js";
import { shardOf } from "./shard-of.js";
import { acquireStateLock, LOCK_FILE_NAME } from "./state-lock.js";
import type { LockHolder, StateLock } from "./state-lock.js";
import { openLogAppender, readLogSegments, removeSegments, type LogAppender, type LogChange } from "./write-ahead-log.js";

/** Default retention of {@link Store.pruneByAge}: 7 days. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Shard count for the large collections (members, ledger, links). At 100k
 * members each file is ~135 KB and one change commits in 2.5-4 ms (p50) on
 * the 2-core dev VM, at the floor of a bare fsync'd write; 64 shards (500 KB
 * files) took 6-8 ms and held the event loop up to 125 ms in a 1,000-change
 * pass (see bench/store-commit.bench.ts). Files are `<name>/000.json` …
 * `<name>/255.json`.
 */
export const LARGE_COLLECTION_SHARDS = 256;

/** Options of {@link createStore}. */
export interface StoreOptions {
  /** The state directory; created (mode 0700) if missing. */
  readonly dir: string;
  readonly clock?: Clock;
  /** Default age for {@link Store.pruneByAge}; default {@link DEFAULT_RETENTION_MS}. */
  readonly retentionMs?: number;
  /** Size at which a log segment is closed and its changes checkpointed into the files; default 8 MiB. */
  readonly logSegmentBytes?: number;
}

/** Options of {@link Store.collection}. */
export interface CollectionOptions<T> {
  /**
   * Absent: one file `<name>.json`, for small hot state (inbox, queue).
   * A number: keys are hashed into `<name>/<nn>.json`, so that one change
   * rewrites 1/shards of the collection. Fixed for the life of the state
   * directory: opening with another count stops with ERR_STATE_LAYOUT.
   */
  readonly shards?: number;
  /**
   * Checks each stored value on open (a zod schema's `parse` fits); a value
   * that fails stops start-up with ERR_STATE_CORRUPT naming file and key.
   */
  readonly parse?: (value: unknown) => T;
  /**
   * Sharded collections only: keep the values of at most this many shards in
   * memory (the most recently used). open() reads and checks every file but
   * keeps only its keys, so `has()` of an unknown key, `size` and `keys()`
   * read nothing; a value is read when needed, synchronously (the API is),
   * from the file alone when it can be, and a shard read often is cached
   * whole. For large collections read one key at a time (members); iterating
   * reads every shard. Absent: everything is in memory from open() on.
   */
  readonly cacheShards?: number;
  /**
   * A short fingerprint of a value, kept in memory per key by {@link Collection.digestOf}, so that
   * "has this value changed?" needs no read of a shard that is not cached.
   */
  readonly digest?: (value: T) => string;
}

/**
 * A keyed collection of JSON values, all in memory. Changes are visible at
 * once and durable after the next {@link Store.commit}. Values are held by
 * reference and written as they are at commit time: after changing a value
 * in place, `set()` it again so its file is rewritten. Iteration order is
 * unspecified.
 */
export interface Collection<T> {
  readonly name: string;
  readonly size: number;
  get(id: string): T | undefined;
  has(id: string): boolean;
  set(id: string, value: T): void;
  /** True when the id was present. */
  delete(id: string): boolean;
  keys(): IterableIterator<string>;
  values(): IterableIterator<T>;
  entries(): IterableIterator<[string, T]>;
  /** Deletes every entry the predicate selects; returns how many. */
  deleteWhere(predicate: (value: T, id: string) => boolean): number;
  /**
   * Every entry, one shard at a time, yielding to the event loop between shards: for a long walk
   * over a collection read on demand, where {@link entries} would hold the loop for every read.
   */
  scan(): AsyncIterableIterator<[string, T]>;
  /**
   * The {@link CollectionOptions.digest} of the value at `id`, undefined when there is none; the
   * first call in a shard not cached reads it once. Throws ERR_STATE_USAGE without a digest option.
   */
  digestOf(id: string): string | undefined;
}

/** What {@link Store.open} found, for the start-up log. */
export interface StoreOpenReport {
  /** Set when the lock of a process that is gone was taken over: it did not stop cleanly. */
  readonly tookOverStaleLock?: { readonly holder: LockHolder | undefined };
  /** Temp files of writes interrupted by a crash, removed. */
  readonly removedTempFiles: readonly string[];
  readonly filesRead: number;
  readonly entries: number;
  /** Changes applied from the log that the files did not hold yet. */
  readonly replayedChanges: number;
  /** Bytes of an append cut short by a crash, after the log's last complete line: never acknowledged, dropped. */
  readonly tornLogBytes: number;
}

/** Counters since open, for metrics. */
export interface StoreStats {
  /** Shards of {@link CollectionOptions.cacheShards} collections read from disk on demand. */
  readonly shardReads: number;
  /** Single values read from such a shard's file without reading the whole shard. */
  readonly pointReads: number;
  /** commit() calls. */
  readonly commits: number;
  /** Passes that appended a line to the log; several commits share one. */
  readonly passes: number;
  readonly logBytes: number;
  /** State files rewritten by the checkpoint, and their bytes. */
  readonly checkpointFiles: number;
  readonly checkpointBytes: number;
  /** Log segments on disk: 1, or more while the checkpoint of older ones runs. */
  readonly logSegments: number;
  /** Files waiting to be rewritten by the checkpoint. */
  readonly checkpointQueue: number;
}

/** The durable state of one daemon: collections of JSON files in one directory, under a lock. */
export interface Store {
  readonly dir: string;
  readonly retentionMs: number;
  /** Declares (or returns the already declared) collection. Only before {@link open}. */
  collection<T>(name: string, options?: CollectionOptions<T>): Collection<T>;
  /** Takes the lock and loads every declared collection. Throws ERR_STATE_LOCKED, ERR_STATE_CORRUPT, ERR_STATE_LAYOUT. */
  open(): Promise<StoreOpenReport>;
  /**
   * Resolves once every change made before the call is on disk: appended to
   * the log and fsynced. Calls in the same tick share one pass; a call made
   * while a pass runs waits for the next one.
   */
  commit(): Promise<void>;
  /**
   * Commits, rewrites every state file the log has changed since it was written, and deletes
   * the log segments that held those changes (a bulk import, tests).
   */
  checkpoint(): Promise<void>;
  /**
   * Deletes the entries whose time (epoch ms from `timeOf`) is older than
   * `maxAgeMs` (default {@link retentionMs}) by the store's clock. Entries
   * without a time are kept. Durable with the next commit. Returns how many.
   */
  pruneByAge<T>(collection: Collection<T>, timeOf: (value: T) => number | undefined, maxAgeMs?: number): number;
  /** Commits what is pending, then releases the lock. Later changes throw ERR_STATE_CLOSED. */
  close(): Promise<void>;
  stats(): StoreStats;
}

/** One file's content. `shard`/`shards` are present in sharded collections only. */
interface FileDoc {
  readonly perkbridge: 1;
  readonly collection: string;
  readonly shard?: number;
  readonly shards?: number;
  /** The last pass whose changes this file holds; log passes up to it are not applied to it again. */
  readonly pass?: number;
  readonly entries: Record<string, unknown>;
}

/** The changes of the last multi-file pass of the store before it had a log; read once on open. */
interface LegacyJournalDoc {
  readonly perkbridge: 1;
  readonly pass: number;
  readonly changes: readonly LogChange[];
}

/** The declared shard count of every collection (null: unsharded). */
interface LayoutDoc {
  readonly perkbridge: 1;
  readonly collections: Readonly<Record<string, number | null>>;
}

/** A change of a cached-shards collection that its file may not hold yet (`pass` PENDING until logged). */
interface OverlayEntry {
  pass: number;
  readonly v?: unknown;
  readonly deleted?: true;
}

const PENDING = Number.POSITIVE_INFINITY;
/** Single reads in a shard not cached, after which the next read caches the whole shard. */
const POINT_READS_BEFORE_CACHING = 8;
/** pointRead() found nothing it can vouch for. */
const NOT_FOUND = Symbol("not found");

interface Shard {
  readonly collection: string;
  readonly index: number | undefined;
  readonly shardCount: number | undefined;
  readonly adapter: DurableFileAdapter<FileDoc>;
  readonly dir: string;
  /** Its entries; for a cached-shards collection only while the shard is in its cache. */
  map: Map<string, unknown> | undefined;
  /** Set for a {@link CollectionOptions.cacheShards} collection. */
  readonly cache: ShardCache | undefined;
  /** Cached-shards only: every change since the file was written, latest per key, kept when the shard leaves the cache. */
  readonly overlay: Map<string, OverlayEntry>;
  /** Cached-shards only: the keys, read by open() and kept by every change since. */
  keys: Set<string> | undefined;
  /** With a digest option: each key's digest, once asked for in this shard. */
  digests: Map<string, string> | undefined;
  /** Single values read from the file since the shard was last cached. */
  pointReads: number;
  /** The pass whose state the file holds (0: never written). */
  filePass: number;
  /** The last pass that logged a change of this shard: the file is stale while it is newer than {@link filePass}. */
  loggedPass: number;
  /** Waiting in the checkpoint queue. */
  queued: boolean;
}

interface CollectionState {
  readonly name: string;
  readonly shardCount: number | undefined;
  readonly shards: readonly Shard[];
  readonly shardFor: (id: string) => Shard;
  readonly parse: ((value: unknown) => unknown) | undefined;
  readonly api: Collection<unknown>;
}

/** A shard serialized at a pass boundary, waiting to be written over its file. */
interface Snapshot {
  readonly shard: Shard;
  readonly text: string;
  readonly pass: number;
}

// No dots: names can never clash with perkbridge.lock or the log's perkbridge-<n>.log.
const NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const LEGACY_JOURNAL_FILE_NAME = "perkbridge.journal.json";
const LAYOUT_FILE_NAME = "perkbridge.layout.json";
const MAX_SHARDS = 4096;
const READ_CONCURRENCY = 8;
/**
 * A log segment this large is closed and a new one started; the shards it changed are then
 * rewritten in the background, after which it is deleted. Bounds what open() replays (two
 * segments at most, unless writes outrun the checkpoint) against how often a shard is rewritten.
 */
const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
/** Shards serialized for the checkpoint per pass, by size: the event loop is held ~1-2 ms for them. */
const CHECKPOINT_BYTES_PER_PASS = 256 * 1024;
/** Snapshots serialized but not yet written, at most: bounds their memory. */
const MAX_CHECKPOINT_BACKLOG = 4;
/** After a checkpoint write fails, the next attempt waits this long. */
const CHECKPOINT_RETRY_MS = 1000;

/**
 * Creates the store of one state directory. Declare collections, then
 * `await open()`. Every collection lives in memory and in JSON files: small
 * hot state (the `kv` collection) in one file, large state in sharded ones,
 * `<name>/000.json` … .
 *
 * A commit appends one line with the changed keys and their values to a
 * write-ahead log (`perkbridge-<n>.log`) and fsyncs it: its cost follows the
 * size of the change, never the size of the state (rewriting whole shards on
 * every commit held a webhook's acknowledgement for tens of milliseconds at
 * 100k members). Files are brought up to date in the background: once a log
 * segment reaches {@link StoreOptions.logSegmentBytes}, a new one is started, the shards the
 * old one changed are serialized a few per pass (each exactly as of that
 * pass, so a file never holds a change that is not in the log) and rewritten
 * atomically, and then the old segment is deleted. Each file records the last
 * pass it holds; on open the log's later passes are applied again. One line is
 * one pass, written whole or not at all (a torn last line is ignored), so a
 * crash yields the state before or after any pass, never a mix.
 */
export function createStore(options: StoreOptions): Store {
  const { dir } = options;
  const clock = options.clock ?? { now: () => Date.now() };
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  const segmentBytes = options.logSegmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const collections = new Map<string, CollectionState>();
  const digestFns = new Map<string, (value: unknown) => string>();
  const allShards: Shard[] = [];
  /** Per shard, the keys changed since the last pass. */
  let dirty = new Map<Shard, Set<string>>();
  let lastPass = 0;
  let log: LogAppender | undefined;
  /** Segments older than `log`, deleted once the checkpoint has rewritten what they changed. */
  const retired: number[] = [];
  const checkpointQueue: Shard[] = [];
  let checkpointBacklog = 0;
  let checkpointChain: Promise<void> = Promise.resolve();
  let checkpointPausedUntil = 0;
  /** Why the last checkpoint write or segment deletion failed, for the error of checkpoint(). */
  let checkpointFailure: string | undefined;
  const checkpointDirs = new Set<string>();
  let legacyJournal: string | undefined;
  const counters = { commits: 0, passes: 0, logBytes: 0, checkpointFiles: 0, checkpointBytes: 0, shardReads: 0, pointReads: 0 };
  let phase: "declaring" | "opening" | "open" | "closing" | "closed" = "declaring";
  let lock: StateLock | undefined;
  let pending: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | undefined;
  let running = false;
  let kickScheduled = false;
  /** Set by checkpoint(): the next pass starts a new segment whatever the size of the current one. */
  let rotateRequested = false;

  function assertReadable(): void {
    if (phase === "declaring" || phase === "opening") {
      throw new PerkbridgeError("ERR_STATE_NOT_OPEN", `the state in ${dir} is not loaded yet: await store.open() first`);
    }
  }

  function assertWritable(): void {
    assertReadable();
    if (phase !== "open") {
      throw new PerkbridgeError("ERR_STATE_CLOSED", `the state in ${dir} is closed: changes after close() would be lost`);
    }
  }

  function fileDocParser(name: string, shardIndex: number | undefined, shardCount: number | undefined, parse: ((value: unknown) => unknown) | undefined) {
    return (data: unknown): FileDoc => {
      if (typeof data !== "object" || data === null || !("perkbridge" in data) || data.perkbridge !== 1) {
        throw new Error("not a perkbridge state file");
      }
      const doc = data as Partial<FileDoc>;
      if (doc.collection !== name) throw new Error(`it holds collection ${String(doc.collection)}, expected ${name}`);
      if (doc.shards !== shardCount) {
        throw new PerkbridgeError(
          "ERR_STATE_LAYOUT",
          `collection ${name} in ${dir} was written with ${doc.shards ?? "no"} shards but is now declared with ${shardCount ?? "none"}. ` +
            `The shard count of a state directory cannot change; restore the previous setting.`,
        );
      }
      if (doc.shard !== shardIndex) throw new Error(`it says it is shard ${String(doc.shard)}, expected ${String(shardIndex)}`);
      const entries = doc.entries;
      if (typeof entries !== "object" || entries === null || Array.isArray(entries)) throw new Error("its entries are not an object");
      for (const [key, value] of Object.entries(entries)) {
        if (shardCount !== undefined && shardOf(key, shardCount) !== shardIndex) {
          throw new Error(`entry ${JSON.stringify(key)} belongs in shard ${shardOf(key, shardCount)}`);
        }
        if (parse !== undefined) {
          try {
            parse(value);
          } catch (error) {
            throw new Error(`entry ${JSON.stringify(key)} is invalid: ${reasonOf(error)}`, { cause: error });
          }
        }
      }
      return doc as FileDoc;
    };
  }

  /** The shard's file as of now, built as text: no copy of its map is made. */
  function serializeShard(shard: Shard, pass: number): string {
    const parts: string[] = [];
    for (const [key, value] of entriesOf(shard, true)) parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    const head = JSON.stringify({
      perkbridge: 1,
      collection: shard.collection,
      ...(shard.index === undefined ? {} : { shard: shard.index }),
      ...(shard.shardCount === undefined ? {} : { shards: shard.shardCount }),
      pass,
    });
    // One entry per line (still one JSON document): a shard not in memory can then be searched for
    // one key and only that value parsed, see pointRead().
    return `${head.slice(0, -1)},"entries":{\n${parts.join(",\n")}\n}}`;
  }

  function markDirty(shard: Shard, id: string): void {
    const keys = dirty.get(shard);
    if (keys === undefined) dirty.set(shard, new Set([id]));
    else keys.add(id);
  }

  function makeShard(name: string, index: number | undefined, shardCount: number | undefined, parse: ((value: unknown) => unknown) | undefined, cache: ShardCache | undefined): Shard {
    const shardDir = shardCount === undefined ? dir : join(dir, name);
    const file = index === undefined ? join(dir, `${name}.json`) : join(shardDir, shardFileName(index, shardCount ?? 1));
    const adapter = createDurableFileAdapter(file, {
      parse: fileDocParser(name, index, shardCount, parse),
      syncDirectory: false, // one directory fsync before a log segment is deleted, see finishCheckpoint()
    });
    const shard: Shard = {
      collection: name,
      index,
      shardCount,
      adapter,
      dir: shardDir,
      map: cache === undefined ? new Map() : undefined,
      cache,
      overlay: new Map(),
      keys: undefined,
      digests: undefined,
      pointReads: 0,
      filePass: 0,
      loggedPass: 0,
      queued: false,
    };
    allShards.push(shard);
    return shard;
  }

  /**
   * A shard's entries. Those of a cached-shards collection are read from the file now when not in
   * the cache (synchronously: callers are synchronous), with the changes the file lacks applied;
   * `cache` keeps them there, a scan over every shard does not.
   */
  function entriesOf(shard: Shard, cache: boolean): Map<string, unknown> {
    if (shard.map !== undefined) {
      shard.cache?.touch(shard);
      return shard.map;
    }
    const doc = shard.adapter.readSync();
    counters.shardReads += 1;
    const map = new Map<string, unknown>(doc === null ? [] : Object.entries(doc.entries));
    // The overlay holds the latest change of each key the file may lack; one the file already has
    // (a checkpoint write just landed) is applied again to the same value.
    for (const [key, change] of shard.overlay) {
      if (change.deleted) map.delete(key);
      else map.set(key, change.v);
    }
    if (cache) {
      shard.cache?.add(shard, map);
      shard.pointReads = 0;
    }
    return map;
  }

  /** A cached-shards shard's keys: open() read every file, and set() and delete() keep them. */
  function knownKeys(shard: Shard): Set<string> {
    return shard.keys as Set<string>;
  }

  function keysOf(shard: Shard): Iterable<string> {
    return shard.cache === undefined ? (shard.map as Map<string, unknown>).keys() : knownKeys(shard);
  }

  function getIn(shard: Shard, id: string): unknown {
    if (shard.map !== undefined) return entriesOf(shard, true).get(id);
    const change = shard.overlay.get(id);
    if (change !== undefined) return change.deleted ? undefined : change.v;
    if (!knownKeys(shard).has(id)) return undefined;
    // A walk in key order (a full sync) reads one shard after another: after a few single reads
    // in a shard, reading it whole and caching it is cheaper than searching its file each time.
    shard.pointReads += 1;
    if (shard.pointReads > POINT_READS_BEFORE_CACHING) return entriesOf(shard, true).get(id);
    const found = pointRead(shard, id);
    return found === NOT_FOUND ? entriesOf(shard, true).get(id) : found;
  }

  /**
   * One value from a shard's file without parsing the rest: files are written one entry per line,
   * and JSON.stringify never writes a raw newline inside a value. Only for a key whose latest value
   * is in the file (the shard's keys are known and its overlay does not have the key). A file laid
   * out otherwise, or without the key, answers NOT_FOUND and the caller reads the whole shard.
   */
  function pointRead(shard: Shard, id: string): unknown {
    let text: string;
    try {
      text = readFileSync(shard.adapter.file, "utf8");
    } catch {
      return NOT_FOUND;
    }
    const marker = `\n${JSON.stringify(id)}:`;
    const start = text.indexOf(marker);
    if (start === -1) return NOT_FOUND;
    const end = text.indexOf("\n", start + marker.length);
    if (end === -1) return NOT_FOUND;
    const raw = text.slice(start + marker.length, text.charCodeAt(end - 1) === 0x2c ? end - 1 : end);
    try {
      counters.pointReads += 1;
      return JSON.parse(raw) as unknown;
    } catch {
      return NOT_FOUND;
    }
  }

  function hasIn(shard: Shard, id: string): boolean {
    return shard.map !== undefined ? shard.map.has(id) : knownKeys(shard).has(id);
  }

  function setIn(shard: Shard, id: string, value: unknown): void {
    if (shard.digests !== undefined) shard.digests.set(id, (digestFns.get(shard.collection) as (value: unknown) => string)(value));
    shard.map?.set(id, value);
    if (shard.cache === undefined) return;
    shard.keys?.add(id);
    shard.overlay.set(id, { pass: PENDING, v: value });
  }

  function deleteIn(shard: Shard, id: string): boolean {
    if (!hasIn(shard, id)) return false;
    shard.digests?.delete(id);
    shard.map?.delete(id);
    if (shard.cache !== undefined) {
      shard.keys?.delete(id);
      shard.overlay.set(id, { pass: PENDING, deleted: true });
    }
    return true;
  }

  function makeCollection(name: string, shardFor: (id: string) => Shard, shards: readonly Shard[]): Collection<unknown> {
    const api: Collection<unknown> = {
      name,
      get size() {
        assertReadable();
        let n = 0;
        for (const shard of shards) n += shard.cache === undefined ? (shard.map as Map<string, unknown>).size : (keysOf(shard) as Set<string>).size;
        return n;
      },
      get(id) {
        assertReadable();
        return getIn(shardFor(id), id);
      },
      has(id) {
        assertReadable();
        return hasIn(shardFor(id), id);
      },
      set(id, value) {
        assertWritable();
        const shard = shardFor(id);
        setIn(shard, id, value);
        markDirty(shard, id);
      },
      delete(id) {
        assertWritable();
        const shard = shardFor(id);
        if (!deleteIn(shard, id)) return false;
        markDirty(shard, id);
        return true;
      },
      *keys() {
        assertReadable();
        for (const shard of shards) yield* keysOf(shard);
      },
      *values() {
        assertReadable();
        for (const shard of shards) yield* entriesOf(shard, false).values();
      },
      *entries() {
        assertReadable();
        for (const shard of shards) yield* entriesOf(shard, false).entries();
      },
      deleteWhere(predicate) {
        assertWritable();
        let removed = 0;
        for (const shard of shards) {
          const doomed = [...entriesOf(shard, false)].filter(([id, value]) => predicate(value, id)).map(([id]) => id);
          for (const id of doomed) {
            deleteIn(shard, id);
            markDirty(shard, id);
            removed += 1;
          }
        }
        return removed;
      },
      async *scan() {
        assertReadable();
        for (const shard of shards) {
          yield* entriesOf(shard, false).entries();
          await new Promise((resolve) => setImmediate(resolve));
        }
      },
      digestOf(id) {
        assertReadable();
        const digest = digestFns.get(name);
        if (digest === undefined) throw new PerkbridgeError("ERR_STATE_USAGE", `collection ${name} has no digest option`);
        const shard = shardFor(id);
        if (shard.digests === undefined) {
          // Once per shard; from then on set() and delete() keep them.
          const digests = new Map<string, string>();
          for (const [key, value] of entriesOf(shard, false)) digests.set(key, digest(value));
          shard.digests = digests;
        }
        return shard.digests.get(id);
      },
    };
    return api;
  }

  /** Checks that the files on disk match the declared layout, so that no file is silently ignored. */
  async function checkLayout(state: CollectionState): Promise<void> {
    const layoutError = (found: string): PerkbridgeError =>
      new PerkbridgeError(
        "ERR_STATE_LAYOUT",
        `collection ${state.name} is declared ${state.shardCount === undefined ? "unsharded" : `with ${state.shardCount} shards`}, ` +
          `but ${dir} holds ${found}. The shard count of a state directory cannot change; restore the previous setting, ` +
          `or move the unexpected files aside if they are not perkbridge's.`,
      );
    const shardDirFiles = await listIfExists(join(dir, state.name));
    if (state.shardCount === undefined) {
      if (shardDirFiles.some((f) => f.endsWith(".json"))) throw layoutError(`a sharded copy in ${join(dir, state.name)}`);
      return;
    }
    if ((await listIfExists(dir)).includes(`${state.name}.json`)) throw layoutError(`an unsharded copy, ${join(dir, `${state.name}.json`)}`);
    const expected = new Set(state.shards.map((_, i) => shardFileName(i, state.shardCount ?? 1)));
    const stray = shardDirFiles.find((f) => f.endsWith(".json") && !expected.has(f));
    if (stray !== undefined) throw layoutError(`${join(dir, state.name, stray)}`);
  }

  /**
   * The shard count of each collection, kept in a file of its own: a change may live only in the
   * log for a while, and a key replayed into a different shard count would land in the wrong file.
   */
  async function checkLayoutRecord(): Promise<void> {
    const adapter = createDurableFileAdapter<LayoutDoc>(join(dir, LAYOUT_FILE_NAME), { parse: parseLayout });
    const recorded = (await adapter.read())?.collections ?? {};
    let changed = false;
    const next: Record<string, number | null> = { ...recorded };
    for (const state of collections.values()) {
      const declared = state.shardCount ?? null;
      if (!Object.hasOwn(recorded, state.name)) {
        next[state.name] = declared;
        changed = true;
      } else if (recorded[state.name] !== declared) {
        throw new PerkbridgeError(
          "ERR_STATE_LAYOUT",
          `collection ${state.name} in ${dir} was written with ${recorded[state.name] ?? "no"} shards but is now declared with ${state.shardCount ?? "none"}. ` +
            `The shard count of a state directory cannot change; restore the previous setting.`,
        );
      }
    }
    if (changed) await adapter.write({ perkbridge: 1, collections: next });
  }

  async function removeTempFiles(folder: string): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await listIfExists(folder)) {
      // A lock temp file may belong to a daemon starting right now; the lock code cleans its own.
      if (!isTempFileName(name) || name.startsWith(LOCK_FILE_NAME)) continue;
      await rm(join(folder, name), { force: true });
      removed.push(join(folder, name));
    }
    return removed;
  }

  async function load(): Promise<Omit<StoreOpenReport, "tookOverStaleLock">> {
    const folders = [dir, ...[...collections.values()].filter((c) => c.shardCount !== undefined).map((c) => join(dir, c.name))];
    const removedTempFiles: string[] = [];
    for (const folder of folders) {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      removedTempFiles.push(...(await removeTempFiles(folder)));
    }
    // The collection directories' names must be durable before files in them are.
    await syncDirectory(dir);
    for (const state of collections.values()) await checkLayout(state);
    await checkLayoutRecord();

    // Every file is read and checked, so that a damaged one stops start-up; a cached-shards
    // collection keeps only the keys (and the file's pass) of each, its values are read again when
    // needed.
    await forEachLimited(allShards, READ_CONCURRENCY, async (shard) => {
      const doc = await shard.adapter.read();
      if (shard.cache !== undefined) shard.keys = new Set(doc === null ? [] : Object.keys(doc.entries));
      if (doc === null) return;
      if (shard.map !== undefined) for (const [key, value] of Object.entries(doc.entries)) shard.map.set(key, value);
      shard.filePass = doc.pass ?? 0;
      shard.loggedPass = shard.filePass;
      lastPass = Math.max(lastPass, shard.filePass);
    });
    const replayedLegacy = await replayLegacyJournal();
    const { replayed, tornBytes } = await replayLog();
    const entries = allShards.reduce((n, shard) => n + (shard.map ?? shard.keys ?? new Map()).size, 0);
    return { removedTempFiles, filesRead: allShards.length, entries, replayedChanges: replayedLegacy + replayed, tornLogBytes: tornBytes };
  }

  /** Applies one logged change to its shard unless the shard's file already holds its pass. */
  function applyChange(change: LogChange, pass: number, where: string): boolean {
    const state = collections.get(change.c);
    if (state === undefined) {
      throw new PerkbridgeError(
        "ERR_STATE_LAYOUT",
        `${where} holds changes to collection ${change.c}, which is not declared. ` +
          `Start the perkbridge version that wrote this state directory once, so that it completes them.`,
      );
    }
    const shard = state.shardFor(change.k);
    if (shard.filePass >= pass) return false;
    if ("v" in change) {
      if (state.parse !== undefined) {
        try {
          state.parse(change.v);
        } catch (error) {
          throw new PerkbridgeError("ERR_STATE_CORRUPT", `${where}: entry ${JSON.stringify(change.k)} of ${change.c} is invalid: ${reasonOf(error)}`, { cause: error });
        }
      }
      shard.map?.set(change.k, change.v);
      if (shard.cache !== undefined) {
        shard.keys?.add(change.k);
        shard.overlay.set(change.k, { pass, v: change.v });
      }
    } else {
      shard.map?.delete(change.k);
      if (shard.cache !== undefined) {
        shard.keys?.delete(change.k);
        shard.overlay.set(change.k, { pass, deleted: true });
      }
    }
    return true;
  }

  /** A store written before the log kept the changes of its last multi-file pass in a journal file. */
  async function replayLegacyJournal(): Promise<number> {
    const adapter = createDurableFileAdapter<LegacyJournalDoc>(join(dir, LEGACY_JOURNAL_FILE_NAME), { parse: parseLegacyJournal });
    const doc = await adapter.read();
    if (doc === null) return 0;
    legacyJournal = adapter.file;
    lastPass = Math.max(lastPass, doc.pass);
    let replayed = 0;
    for (const change of doc.changes) {
      if (!applyChange(change, doc.pass, adapter.file)) continue;
      // Made durable by the first pass, which then deletes the journal.
      markDirty(collections.get(change.c)?.shardFor(change.k) as Shard, change.k);
      replayed += 1;
    }
    return replayed;
  }

  async function replayLog(): Promise<{ replayed: number; tornBytes: number }> {
    const segments = await readLogSegments(dir);
    let replayed = 0;
    let tornBytes = 0;
    for (const segment of segments) {
      tornBytes += segment.tornBytes;
      segment.passes.forEach(({ pass, changes }, i) => {
        lastPass = Math.max(lastPass, pass);
        for (const change of changes) {
          if (applyChange(change, pass, `${segment.file} line ${i + 1}`)) replayed += 1;
          const shard = collections.get(change.c)?.shardFor(change.k) as Shard;
          shard.loggedPass = Math.max(shard.loggedPass, pass);
        }
      });
    }
    const current = segments.at(-1);
    if (current === undefined) {
      log = await openLogAppender(dir, 1, 0);
      await syncDirectory(dir);
    } else {
      log = await openLogAppender(dir, current.seq, current.goodBytes);
      retired.push(...segments.slice(0, -1).map((s) => s.seq));
      if (retired.length > 0) queueStaleShards();
    }
    return { replayed, tornBytes };
  }

  function queueStaleShards(): void {
    for (const shard of allShards) {
      if (shard.loggedPass > shard.filePass && !shard.queued) {
        shard.queued = true;
        checkpointQueue.push(shard);
      }
    }
  }

  /** Serializes queued shards as of `pass`, within this pass's share. Synchronous: nothing changes meanwhile. */
  function takeSnapshots(pass: number): Snapshot[] {
    const snapshots: Snapshot[] = [];
    let bytes = 0;
    while (checkpointQueue.length > 0 && bytes < CHECKPOINT_BYTES_PER_PASS && checkpointBacklog + snapshots.length < MAX_CHECKPOINT_BACKLOG && Date.now() >= checkpointPausedUntil) {
      const shard = checkpointQueue.shift() as Shard;
      shard.queued = false;
      const text = serializeShard(shard, pass);
      snapshots.push({ shard, text, pass });
      bytes += text.length;
    }
    return snapshots;
  }

  function requeue(shard: Shard): void {
    if (shard.queued) return;
    shard.queued = true;
    checkpointQueue.unshift(shard);
  }

  /** Writes snapshots one at a time behind the passes; deletes retired segments once nothing they changed is missing from a file. */
  function writeSnapshots(snapshots: readonly Snapshot[]): void {
    for (const snapshot of snapshots) {
      checkpointBacklog += 1;
      checkpointChain = checkpointChain.then(async () => {
        try {
          await snapshot.shard.adapter.writeText(snapshot.text);
          snapshot.shard.filePass = Math.max(snapshot.shard.filePass, snapshot.pass);
          for (const [key, change] of snapshot.shard.overlay) if (change.pass <= snapshot.pass) snapshot.shard.overlay.delete(key);
          checkpointDirs.add(snapshot.shard.dir);
          counters.checkpointFiles += 1;
          counters.checkpointBytes += Buffer.byteLength(snapshot.text);
        } catch (error) {
          // The log still holds the changes; the shard is tried again a little later.
          requeue(snapshot.shard);
          checkpointFailure = reasonOf(error);
          checkpointPausedUntil = Date.now() + CHECKPOINT_RETRY_MS;
          setTimeout(kick, CHECKPOINT_RETRY_MS).unref();
        } finally {
          checkpointBacklog -= 1;
        }
        await tryFinishCheckpoint();
        kick();
      });
    }
  }

  /** A failure is tried again after the next snapshot, or by checkpoint(), which reports it. */
  async function tryFinishCheckpoint(): Promise<void> {
    try {
      await finishCheckpoint();
    } catch (error) {
      checkpointFailure = reasonOf(error);
      checkpointPausedUntil = Date.now() + CHECKPOINT_RETRY_MS;
    }
  }

  async function finishCheckpoint(): Promise<void> {
    if (retired.length === 0 || checkpointQueue.length > 0 || checkpointBacklog > 0) return;
    const dirs = [...checkpointDirs];
    await Promise.all(dirs.map((d) => syncDirectory(d)));
    for (const d of dirs) checkpointDirs.delete(d);
    // Forgotten only once gone from disk: until then they count (stats, checkpoint()) and are retried.
    const seqs = [...retired];
    await removeSegments(dir, seqs);
    await syncDirectory(dir);
    retired.splice(0, seqs.length);
  }

  /** Starts a new segment; the shards the old one changed are queued for rewriting. */
  async function rotate(): Promise<void> {
    const old = log as LogAppender;
    const next = await openLogAppender(dir, old.seq + 1, 0);
    // The new segment's name must be durable before any pass in it is acknowledged.
    await syncDirectory(dir);
    log = next;
    retired.push(old.seq);
    await old.close().catch(() => undefined);
    queueStaleShards();
    // With nothing to rewrite, no snapshot write would come to delete the old segment.
    checkpointChain = checkpointChain.then(tryFinishCheckpoint);
  }

  /** Runs a pass without commits waiting, to move the checkpoint on while nothing else is written. */
  function kick(): void {
    if (kickScheduled || running || pending !== undefined || phase !== "open") return;
    if (checkpointQueue.length === 0 || checkpointBacklog >= MAX_CHECKPOINT_BACKLOG || Date.now() < checkpointPausedUntil) return;
    kickScheduled = true;
    setImmediate(() => {
      kickScheduled = false;
      if (!running && pending === undefined && phase === "open") startPass();
    });
  }

  /** One pass: the changes since the last one as one log line, fsynced; then queued snapshots handed to the checkpoint. */
  async function runPass(): Promise<void> {
    const current = log as LogAppender;
    const mustRotate =
      current.broken ||
      (rotateRequested && current.size > 0) ||
      (current.size >= segmentBytes && retired.length === 0 && checkpointQueue.length === 0 && checkpointBacklog === 0);
    rotateRequested = false;
    if (mustRotate) {
      try {
        await rotate();
      } catch (error) {
        throw writeError(error);
      }
    }
    const batch = dirty;
    dirty = new Map();
    const pass = batch.size > 0 ? lastPass + 1 : lastPass;
    let line: string | undefined;
    let snapshots: Snapshot[] = [];
    const captured: OverlayEntry[] = [];
    try {
      if (batch.size > 0) {
        const changes: LogChange[] = [];
        for (const [shard, keys] of batch) {
          for (const k of keys) {
            const change = shard.overlay.get(k);
            if (change !== undefined) {
              // Cached-shards: the overlay holds the value; from now on it belongs to this pass.
              change.pass = pass;
              captured.push(change);
              changes.push(change.deleted ? { c: shard.collection, k } : { c: shard.collection, k, v: change.v });
            } else {
              const map = shard.map as Map<string, unknown>;
              changes.push(map.has(k) ? { c: shard.collection, k, v: map.get(k) } : { c: shard.collection, k });
            }
          }
        }
        line = `${JSON.stringify({ pass, changes })}\n`;
      }
      snapshots = takeSnapshots(pass);
    } catch (error) {
      restore(batch, snapshots, captured);
      throw writeError(error);
    }
    if (line !== undefined) {
      lastPass = pass;
      try {
        await (log as LogAppender).append(line);
      } catch (error) {
        restore(batch, snapshots, captured);
        throw writeError(error);
      }
      for (const shard of batch.keys()) shard.loggedPass = pass;
      counters.passes += 1;
      counters.logBytes += Buffer.byteLength(line);
      if (legacyJournal !== undefined) {
        await rm(legacyJournal, { force: true });
        await rm(`${legacyJournal}.bak`, { force: true });
        legacyJournal = undefined;
      }
    }
    writeSnapshots(snapshots);
  }

  /** A pass that failed: its keys go into the next pass, its snapshots back into the queue. */
  function restore(batch: Map<Shard, Set<string>>, snapshots: readonly Snapshot[], captured: readonly OverlayEntry[] = []): void {
    for (const change of captured) change.pass = PENDING;
    for (const [shard, keys] of batch) for (const k of keys) markDirty(shard, k);
    for (const { shard } of snapshots) requeue(shard);
  }

  function writeError(error: unknown): PerkbridgeError {
    return new PerkbridgeError("ERR_STATE_WRITE", `could not write the state in ${dir}: ${reasonOf(error)}`, { cause: error });
  }

  function startPass(): void {
    setImmediate(() => {
      const waiters = pending;
      pending = undefined;
      running = true;
      runPass().then(
        () => waiters?.resolve(),
        (error: unknown) => waiters?.reject(error),
      ).finally(() => {
        running = false;
        if (pending !== undefined) startPass();
        else kick();
      });
    });
  }

  const store: Store = {
    dir,
    retentionMs,

    collection<T>(name: string, collectionOptions: CollectionOptions<T> = {}): Collection<T> {
      const shardCount = collectionOptions.shards;
      const existing = collections.get(name);
      if (existing !== undefined) {
        if (existing.shardCount !== shardCount) {
          throw new PerkbridgeError("ERR_STATE_USAGE", `collection ${name} is already declared with ${existing.shardCount ?? "no"} shards`);
        }
        return existing.api as Collection<T>;
      }
      if (phase !== "declaring") {
        throw new PerkbridgeError("ERR_STATE_USAGE", `collection ${name} is declared after open(): declare every collection first`);
      }
      if (!NAME_PATTERN.test(name) || name === "perkbridge") {
        throw new PerkbridgeError("ERR_STATE_USAGE", `collection name ${JSON.stringify(name)} must match ${NAME_PATTERN} and not be "perkbridge"`);
      }
      if (shardCount !== undefined && !(Number.isInteger(shardCount) && shardCount >= 1 && shardCount <= MAX_SHARDS)) {
        throw new PerkbridgeError("ERR_STATE_USAGE", `collection ${name}: shards must be an integer from 1 to ${MAX_SHARDS}`);
      }
      const parse = collectionOptions.parse as ((value: unknown) => unknown) | undefined;
      const cacheShards = collectionOptions.cacheShards;
      if (cacheShards !== undefined && (shardCount === undefined || !(Number.isInteger(cacheShards) && cacheShards >= 1))) {
        throw new PerkbridgeError("ERR_STATE_USAGE", `collection ${name}: cacheShards needs shards, and must be an integer of at least 1`);
      }
      const cache = cacheShards === undefined ? undefined : new ShardCache(cacheShards);
      const shards = shardCount === undefined
        ? [makeShard(name, undefined, undefined, parse, undefined)]
        : Array.from({ length: shardCount }, (_, i) => makeShard(name, i, shardCount, parse, cache));
      const shardFor = (id: string): Shard => shards[shardCount === undefined ? 0 : shardOf(id, shardCount)] as Shard;
      if (collectionOptions.digest !== undefined) digestFns.set(name, collectionOptions.digest as (value: unknown) => string);
      const api = makeCollection(name, shardFor, shards);
      collections.set(name, { name, shardCount, shards, shardFor, parse, api });
      return api as Collection<T>;
    },

    async open(): Promise<StoreOpenReport> {
      if (phase !== "declaring") throw new PerkbridgeError("ERR_STATE_USAGE", `the store of ${dir} was already opened`);
      phase = "opening";
      await mkdir(dir, { recursive: true, mode: 0o700 });
      lock = await acquireStateLock(dir, () => clock.now());
      try {
        const loaded = await load();
        phase = "open";
        kick();
        return { ...loaded, ...(lock.tookOver === undefined ? {} : { tookOverStaleLock: lock.tookOver }) };
      } catch (error) {
        phase = "closed";
        await log?.close().catch(() => undefined);
        await lock.release();
        throw error;
      }
    },

    commit(): Promise<void> {
      try {
        assertReadable();
      } catch (error) {
        return Promise.reject(error);
      }
      if (phase === "closed") return Promise.reject(new PerkbridgeError("ERR_STATE_CLOSED", `the state in ${dir} is closed`));
      counters.commits += 1;
      if (pending === undefined) {
        let resolve!: () => void;
        let reject!: (error: unknown) => void;
        const promise = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        pending = { promise, resolve, reject };
        if (!running) startPass();
      }
      return pending.promise;
    },

    pruneByAge<T>(collection: Collection<T>, timeOf: (value: T) => number | undefined, maxAgeMs = retentionMs): number {
      const cutoff = clock.now() - maxAgeMs;
      return collection.deleteWhere((value) => {
        const time = timeOf(value);
        return time !== undefined && time < cutoff;
      });
    },

    async close(): Promise<void> {
      if (phase !== "open") return;
      phase = "closing";
      try {
        await store.commit();
      } finally {
        phase = "closed";
        // Snapshots already taken are written; the rest of the checkpoint resumes after the next open.
        await checkpointChain;
        await log?.close().catch(() => undefined);
        await lock?.release();
      }
    },

    async checkpoint(): Promise<void> {
      assertWritable();
      await store.commit();
      rotateRequested = true;
      await store.commit();
      while (retired.length > 0 || checkpointQueue.length > 0 || checkpointBacklog > 0) {
        if (checkpointQueue.length > 0 && checkpointBacklog < MAX_CHECKPOINT_BACKLOG) await store.commit();
        else await checkpointChain;
        if (Date.now() < checkpointPausedUntil) {
          throw new PerkbridgeError(
            "ERR_STATE_WRITE",
            `could not rewrite the state files in ${dir} (${checkpointFailure ?? "unknown error"}): check free space and that the daemon's user may write there; every change is safe in the log meanwhile`,
          );
        }
      }
    },

    stats: () => ({ ...counters, logSegments: retired.length + 1, checkpointQueue: checkpointQueue.length }),
  };
  return store;
}

function shardFileName(index: number, shardCount: number): string {
  const width = Math.max(2, String(shardCount - 1).length);
  return `${String(index).padStart(width, "0")}.json`;
}

function parseLegacyJournal(data: unknown): LegacyJournalDoc {
  if (
    typeof data !== "object" || data === null ||
    !("perkbridge" in data) || data.perkbridge !== 1 ||
    !("pass" in data) || typeof data.pass !== "number" ||
    !("changes" in data) || !Array.isArray(data.changes)
  ) {
    throw new Error("not a perkbridge journal");
  }
  for (const change of data.changes as unknown[]) {
    if (typeof change !== "object" || change === null || !("c" in change) || typeof change.c !== "string" || !("k" in change) || typeof change.k !== "string") {
      throw new Error("a journal change has no collection or key");
    }
  }
  return data as LegacyJournalDoc;
}

function parseLayout(data: unknown): LayoutDoc {
  if (typeof data !== "object" || data === null || !("perkbridge" in data) || data.perkbridge !== 1 || !("collections" in data)) {
    throw new Error("not a perkbridge layout file");
  }
  const { collections } = data;
  if (typeof collections !== "object" || collections === null || Array.isArray(collections)) throw new Error("its collections are not an object");
  for (const [name, shards] of Object.entries(collections)) {
    if (shards !== null && !Number.isInteger(shards)) throw new Error(`collection ${name} has no valid shard count`);
  }
  return data as LayoutDoc;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function listIfExists(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch (error) {
    if (error instanceof Error && "code" in error && (error.code === "ENOENT" || error.code === "ENOTDIR")) return [];
    throw error;
  }
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * The shards of one cached-shards collection whose values are in memory, least recently used
 * first. A shard that leaves it keeps its keys and its overlay; its values are read again when
 * needed.
 */
class ShardCache {
  readonly #capacity: number;
  readonly #shards = new Set<Shard>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  touch(shard: Shard): void {
    if (!this.#shards.delete(shard)) return;
    this.#shards.add(shard);
  }

  add(shard: Shard, map: Map<string, unknown>): void {
    shard.map = map;
    this.#shards.delete(shard);
    this.#shards.add(shard);
    for (const oldest of this.#shards) {
      if (this.#shards.size <= this.#capacity) break;
      this.#shards.delete(oldest);
      oldest.map = undefined;
    }
  }
}
