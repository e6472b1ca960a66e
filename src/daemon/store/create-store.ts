import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Low } from "lowdb";
import { PerkbridgeError } from "../../core/errors.js";
import type { Clock } from "../../core/ports.js";
import { createDurableFileAdapter, isTempFileName, syncDirectory } from "./durable-file-adapter.js";
import { shardOf } from "./shard-of.js";
import { acquireStateLock, LOCK_FILE_NAME } from "./state-lock.js";
import type { LockHolder, StateLock } from "./state-lock.js";

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
}

/** What {@link Store.open} found, for the start-up log. */
export interface StoreOpenReport {
  /** Set when the lock of a process that is gone was taken over: it did not stop cleanly. */
  readonly tookOverStaleLock?: { readonly holder: LockHolder | undefined };
  /** Temp files of writes interrupted by a crash, removed. */
  readonly removedTempFiles: readonly string[];
  readonly filesRead: number;
  readonly entries: number;
  /** Changes of a write pass cut short by a crash, applied again from the journal. */
  readonly replayedChanges: number;
}

/** Counters since open, for metrics. */
export interface StoreStats {
  /** commit() calls. */
  readonly commits: number;
  /** Write passes; several commits share one. */
  readonly passes: number;
  /** Files written, the journal included. */
  readonly filesWritten: number;
  readonly bytesWritten: number;
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
   * Resolves once every change made before the call is on disk (files and
   * directories fsynced). Calls in the same tick share one write pass, which
   * rewrites only the files with changes; a call made while a pass runs
   * waits for the next one.
   */
  commit(): Promise<void>;
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
  /** The write pass that wrote this file; decides which journal changes it lacks. */
  readonly pass?: number;
  readonly entries: Record<string, unknown>;
}

/** One change of a pass: `v` absent means deleted. */
interface JournalChange {
  readonly c: string;
  readonly k: string;
  readonly v?: unknown;
}

/** The changes of the last pass that wrote more than one file. */
interface JournalDoc {
  readonly perkbridge: 1;
  readonly pass: number;
  readonly changes: readonly JournalChange[];
}

interface Shard {
  readonly collection: string;
  readonly low: Low<FileDoc>;
  readonly dir: string;
  readonly map: Map<string, unknown>;
  /** Pass that last wrote the file (0: never). */
  pass: number;
}

interface CollectionState {
  readonly name: string;
  readonly shardCount: number | undefined;
  readonly shards: readonly Shard[];
  readonly shardFor: (id: string) => Shard;
  readonly api: Collection<unknown>;
}

// No dots: names can never clash with perkbridge.lock or perkbridge.journal.json.
const NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const JOURNAL_FILE_NAME = "perkbridge.journal.json";
const MAX_SHARDS = 4096;
const WRITE_CONCURRENCY = 8;

/**
 * Creates the store of one state directory. Declare collections, then
 * `await open()`. Small hot state (inbox, processed ids, action queue) goes in
 * unsharded collections, large cold state (members, ledger, links) in sharded
 * ones, so a commit rewrites a few small files, never the world.
 *
 * Each write pass is atomic. A pass that touches one file needs nothing
 * more than that file's atomic rename. A pass that touches several first
 * writes its changes (keys and new values, not whole files) to
 * `perkbridge.journal.json`, durably, and only then rewrites the files; every
 * file records the number of the pass that wrote it. On open, journal
 * changes whose file is older than the journal are applied again, so a crash
 * in the middle of a pass yields the state before or after that pass, never
 * a mix. A later single-file pass leaves the journal alone: its file then
 * carries a newer pass number, and the journal is not applied to it.
 */
export function createStore(options: StoreOptions): Store {
  const { dir } = options;
  const clock = options.clock ?? { now: () => Date.now() };
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  const collections = new Map<string, CollectionState>();
  /** Per shard, the keys changed since its file was last written. */
  let dirty = new Map<Shard, Set<string>>();
  let lastPass = 0;
  /**
   * Copy-on-write snapshot of the running pass: its shards not yet written
   * (value: that pass's number). A change to one of them first freezes the
   * shard's content for the pass in `frozen`, so the pass writes exactly the
   * state of its start without copying every shard up front.
   */
  const unfrozen = new Map<Shard, number>();
  const frozen = new Map<Shard, FileDoc>();
  const counters = { commits: 0, passes: 0, filesWritten: 0, bytesWritten: 0 };
  const countWrite = (bytes: number): void => {
    counters.filesWritten += 1;
    counters.bytesWritten += bytes;
  };
  const journal = new Low<JournalDoc>(
    createDurableFileAdapter(join(dir, JOURNAL_FILE_NAME), { parse: parseJournal, onWrite: countWrite }),
    { perkbridge: 1, pass: 0, changes: [] },
  );
  let phase: "declaring" | "opening" | "open" | "closing" | "closed" = "declaring";
  let lock: StateLock | undefined;
  let pending: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | undefined;
  let running = false;

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
            throw new Error(`entry ${JSON.stringify(key)} is invalid: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
          }
        }
      }
      return doc as FileDoc;
    };
  }

  function docOf(shard: Shard, pass: number): FileDoc {
    return { ...shard.low.data, pass, entries: Object.fromEntries(shard.map) };
  }

  /** Call before changing a shard's map. */
  function beforeChange(shard: Shard): void {
    const pass = unfrozen.get(shard);
    if (pass === undefined) return;
    unfrozen.delete(shard);
    frozen.set(shard, docOf(shard, pass));
  }

  function markDirty(shard: Shard, id: string): void {
    const keys = dirty.get(shard);
    if (keys === undefined) dirty.set(shard, new Set([id]));
    else keys.add(id);
  }

  function makeShard(name: string, index: number | undefined, shardCount: number | undefined, parse: ((value: unknown) => unknown) | undefined): Shard {
    const shardDir = shardCount === undefined ? dir : join(dir, name);
    const file = index === undefined ? join(dir, `${name}.json`) : join(shardDir, shardFileName(index, shardCount ?? 1));
    const adapter = createDurableFileAdapter(file, {
      parse: fileDocParser(name, index, shardCount, parse),
      syncDirectory: false, // one directory fsync per pass, see writeDirty()
      onWrite: countWrite,
    });
    return { collection: name, low: new Low<FileDoc>(adapter, emptyDoc(name, index, shardCount)), dir: shardDir, map: new Map(), pass: 0 };
  }

  function makeCollection(name: string, shardFor: (id: string) => Shard, shards: readonly Shard[]): Collection<unknown> {
    const api: Collection<unknown> = {
      name,
      get size() {
        assertReadable();
        let n = 0;
        for (const shard of shards) n += shard.map.size;
        return n;
      },
      get(id) {
        assertReadable();
        return shardFor(id).map.get(id);
      },
      has(id) {
        assertReadable();
        return shardFor(id).map.has(id);
      },
      set(id, value) {
        assertWritable();
        const shard = shardFor(id);
        beforeChange(shard);
        shard.map.set(id, value);
        markDirty(shard, id);
      },
      delete(id) {
        assertWritable();
        const shard = shardFor(id);
        if (!shard.map.has(id)) return false;
        beforeChange(shard);
        shard.map.delete(id);
        markDirty(shard, id);
        return true;
      },
      *keys() {
        assertReadable();
        for (const shard of shards) yield* shard.map.keys();
      },
      *values() {
        assertReadable();
        for (const shard of shards) yield* shard.map.values();
      },
      *entries() {
        assertReadable();
        for (const shard of shards) yield* shard.map.entries() as IterableIterator<[string, unknown]>;
      },
      deleteWhere(predicate) {
        assertWritable();
        let removed = 0;
        for (const shard of shards) {
          for (const [id, value] of shard.map) {
            if (!predicate(value, id)) continue;
            beforeChange(shard);
            shard.map.delete(id);
            markDirty(shard, id);
            removed += 1;
          }
        }
        return removed;
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

    const shards = [...collections.values()].flatMap((c) => c.shards);
    let entries = 0;
    await forEachLimited(shards, WRITE_CONCURRENCY, async (shard) => {
      await shard.low.read();
      const doc = shard.low.data;
      for (const [key, value] of Object.entries(doc.entries)) shard.map.set(key, value);
      entries += shard.map.size;
      shard.pass = doc.pass ?? 0;
      lastPass = Math.max(lastPass, shard.pass);
      shard.low.data = emptyDoc(doc.collection, doc.shard, doc.shards);
    });
    const replayedChanges = await replayJournal();
    return { removedTempFiles, filesRead: shards.length, entries, replayedChanges };
  }

  /** Re-applies the journal's changes to the files that were not rewritten by its pass (a crash cut it short). */
  async function replayJournal(): Promise<number> {
    await journal.read();
    const { pass, changes } = journal.data;
    lastPass = Math.max(lastPass, pass);
    let replayed = 0;
    for (const change of changes) {
      const state = collections.get(change.c);
      if (state === undefined) {
        throw new PerkbridgeError(
          "ERR_STATE_LAYOUT",
          `${join(dir, JOURNAL_FILE_NAME)} holds changes to collection ${change.c}, which is not declared. ` +
            `Start the perkbridge version that wrote this state directory once, so that it completes them.`,
        );
      }
      const shard = state.shardFor(change.k);
      if (shard.pass >= pass) continue; // no pass runs during open: nothing to freeze
      if ("v" in change) shard.map.set(change.k, change.v);
      else shard.map.delete(change.k);
      markDirty(shard, change.k);
      replayed += 1;
    }
    journal.data = { perkbridge: 1, pass: 0, changes: [] };
    return replayed;
  }

  /** Writes every dirty file (after the journal, when there are several), then fsyncs their directories. */
  async function writeDirty(): Promise<void> {
    const batch = dirty;
    if (batch.size === 0) return;
    dirty = new Map();
    const pass = ++lastPass;
    // The pass writes the state of this moment; changes made while it runs
    // belong to the next pass. The journal's values are taken now, the files'
    // copy-on-write (see `unfrozen`), so the event loop is never held for
    // the whole batch.
    for (const shard of batch.keys()) unfrozen.set(shard, pass);
    const changes: JournalChange[] = [];
    if (batch.size > 1) {
      for (const [shard, keys] of batch) {
        for (const k of keys) changes.push(shard.map.has(k) ? { c: shard.collection, k, v: shard.map.get(k) } : { c: shard.collection, k });
      }
    }
    const dirs = new Set<string>();
    try {
      if (changes.length > 0) {
        journal.data = { perkbridge: 1, pass, changes };
        const written = journal.write();
        journal.data = { perkbridge: 1, pass: 0, changes: [] };
        await written;
      }
      await forEachLimited([...batch.keys()], WRITE_CONCURRENCY, async (shard) => {
        dirs.add(shard.dir);
        const doc = frozen.get(shard) ?? docOf(shard, pass);
        unfrozen.delete(shard);
        frozen.delete(shard);
        const low = shard.low;
        const blank = low.data;
        low.data = doc;
        const written = low.write();
        low.data = blank;
        await written;
        shard.pass = pass;
      });
      await Promise.all([...dirs].map((d) => syncDirectory(d)));
    } catch (error) {
      unfrozen.clear();
      frozen.clear();
      // Not durable: the keys go back into the next pass (and its journal).
      for (const [shard, keys] of batch) for (const k of keys) markDirty(shard, k);
      throw new PerkbridgeError("ERR_STATE_WRITE", `could not write the state in ${dir}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  function startPass(): void {
    setImmediate(() => {
      const waiters = pending;
      pending = undefined;
      running = true;
      counters.passes += 1;
      writeDirty().then(
        () => waiters?.resolve(),
        (error: unknown) => waiters?.reject(error),
      ).finally(() => {
        running = false;
        if (pending !== undefined) startPass();
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
      const shards = shardCount === undefined
        ? [makeShard(name, undefined, undefined, parse)]
        : Array.from({ length: shardCount }, (_, i) => makeShard(name, i, shardCount, parse));
      const shardFor = (id: string): Shard => shards[shardCount === undefined ? 0 : shardOf(id, shardCount)] as Shard;
      const api = makeCollection(name, shardFor, shards);
      collections.set(name, { name, shardCount, shards, shardFor, api });
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
        return { ...loaded, ...(lock.tookOver === undefined ? {} : { tookOverStaleLock: lock.tookOver }) };
      } catch (error) {
        phase = "closed";
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
        await lock?.release();
      }
    },

    stats: () => ({ ...counters }),
  };
  return store;
}

function shardFileName(index: number, shardCount: number): string {
  const width = Math.max(2, String(shardCount - 1).length);
  return `${String(index).padStart(width, "0")}.json`;
}

function parseJournal(data: unknown): JournalDoc {
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
  return data as JournalDoc;
}

function emptyDoc(collection: string, shard: number | undefined, shards: number | undefined): FileDoc {
  return {
    perkbridge: 1,
    collection,
    ...(shard === undefined ? {} : { shard }),
    ...(shards === undefined ? {} : { shards }),
    entries: {},
  };
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
