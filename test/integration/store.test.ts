import { spawnSync } from "node:child_process";
import { appendFile, copyFile, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Low } from "lowdb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PerkbridgeError } from "../../src/core/errors.js";
import { createStore, DEFAULT_RETENTION_MS } from "../../src/daemon/store/create-store.js";
import type { Store } from "../../src/daemon/store/create-store.js";
import { createDurableFileAdapter, StateCorruptError } from "../../src/daemon/store/durable-file-adapter.js";
import { fnv1a32, shardOf } from "../../src/daemon/store/shard-of.js";

interface Member {
  readonly name: string;
  readonly n: number;
}

const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "perkbridge-store-"));
  dirs.push(d);
  return d;
}

/** How `makeStore` declares members: all in memory, or with 2 of its 16 shards cached (set per run of the suite). */
let membersCached: number | undefined;

/** A store with one hot and one sharded collection, the way the daemon lays out state. */
function makeStore(dir: string, now = (): number => Date.now()) {
  const store = createStore({ dir, clock: { now } });
  stores.push(store);
  const inbox = store.collection<{ receivedAt: number }>("inbox");
  const members = store.collection<Member>("members", { shards: 16, ...(membersCached === undefined ? {} : { cacheShards: membersCached }) });
  return { store, inbox, members };
}

async function readJson(file: string): Promise<{ entries: Record<string, unknown>; pass?: number }> {
  return JSON.parse(await readFile(file, "utf8")) as { entries: Record<string, unknown>; pass?: number };
}

/** The one log segment of a state directory. */
async function logFile(dir: string): Promise<string> {
  const segments = (await readdir(dir)).filter((f) => f.endsWith(".log"));
  expect(segments).toHaveLength(1);
  return join(dir, segments[0] ?? "");
}

async function loggedPasses(dir: string): Promise<{ pass: number; changes: { c: string; k: string; v?: unknown }[] }[]> {
  const text = await readFile(await logFile(dir), "utf8");
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { pass: number; changes: { c: string; k: string; v?: unknown }[] });
}

const shardFile = (dir: string, key: string): string => join(dir, "members", `${String(shardOf(key, 16)).padStart(2, "0")}.json`);

async function openError(store: Store): Promise<PerkbridgeError> {
  const error = await store.open().then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(PerkbridgeError);
  return error as PerkbridgeError;
}

describe("shardOf", () => {
  it.each([
    ["", 0x811c9dc5],
    ["a", 0xe40c292c],
    ["foobar", 0xbf9cf968],
  ])("FNV-1a of %j is the published value", (text, hash) => {
    expect(fnv1a32(text)).toBe(hash);
  });

  it("maps a key into range", () => {
    expect(shardOf("foobar", 256)).toBe(0xbf9cf968 % 256);
  });
});

describe("a collection read on demand (cacheShards)", () => {
  async function filled(dir: string): Promise<void> {
    const store = createStore({ dir });
    stores.push(store);
    const members = store.collection<Member>("members", { shards: 16, cacheShards: 2 });
    await store.open();
    for (let i = 0; i < 200; i++) members.set(`mem_${i}`, { name: "file", n: i });
    await store.checkpoint();
    await store.close();
  }

  function reopen(dir: string) {
    const store = createStore({ dir });
    stores.push(store);
    return { store, members: store.collection<Member>("members", { shards: 16, cacheShards: 2 }) };
  }

  /** Keys that land in `count` different shards, one each. */
  function keysInDistinctShards(count: number): string[] {
    const byShard = new Map<number, string>();
    for (let i = 0; i < 200 && byShard.size < count; i++) if (!byShard.has(shardOf(`mem_${i}`, 16))) byShard.set(shardOf(`mem_${i}`, 16), `mem_${i}`);
    return [...byShard.values()];
  }

  it("reads single values from files it does not cache, keeps at most the cached shards, and knows every key", async () => {
    const dir = await tempDir();
    await filled(dir);
    const { store, members } = reopen(dir);
    const report = await store.open(); // reads and checks every file, keeping keys only
    expect(report.entries).toBe(200);
    expect(store.stats()).toMatchObject({ shardReads: 0, pointReads: 0 });
    const [a, b, c] = keysInDistinctShards(3) as [string, string, string];
    expect(members.get(a)).toEqual({ name: "file", n: Number(a.slice(4)) });
    expect(store.stats()).toMatchObject({ shardReads: 0, pointReads: 1 });
    // Unknown keys, size and keys() need no read at all.
    expect(members.get("nobody")).toBeUndefined();
    expect(members.has("nobody")).toBe(false);
    expect(members.size).toBe(200);
    expect([...members.keys()]).toHaveLength(200);
    expect(store.stats()).toMatchObject({ shardReads: 0, pointReads: 1 });

    // A shard read value by value more than 8 times is cached; only 2 stay cached.
    const inShard = (key: string) => [...members.keys()].filter((k) => shardOf(k, 16) === shardOf(key, 16));
    const readShard = (key: string) => {
      for (const k of inShard(key).slice(0, 9)) members.get(k);
    };
    readShard(a);
    readShard(b);
    const cachedReads = store.stats().shardReads;
    expect(cachedReads).toBe(2);
    members.get(a);
    members.get(b);
    expect(store.stats().shardReads).toBe(cachedReads); // both cached
    readShard(c); // a's shard leaves the cache
    const before = store.stats().pointReads;
    members.get(a);
    expect(store.stats().pointReads).toBe(before + 1);
  });

  it("keeps changes of a shard that left the cache, before and after they are logged and checkpointed", async () => {
    const dir = await tempDir();
    await filled(dir);
    const { store, members } = reopen(dir);
    await store.open();
    const [a, b, c, d] = keysInDistinctShards(4) as [string, string, string, string];
    members.set(a, { name: "changed", n: 1 });
    members.delete(b);
    members.set("brand_new", { name: "new", n: 2 });
    members.get(c);
    members.get(d); // a's and b's shards are out of the cache now
    expect(members.get(a)).toEqual({ name: "changed", n: 1 });
    expect(members.has(b)).toBe(false);
    expect(members.get(b)).toBeUndefined();
    expect(members.size).toBe(200);
    await store.commit();
    members.get(c);
    members.get(d);
    expect(members.get(a)).toEqual({ name: "changed", n: 1 });
    await store.checkpoint();
    expect((await readJson(shardFile(dir, a))).entries[a]).toEqual({ name: "changed", n: 1 });
    expect((await readJson(shardFile(dir, b))).entries[b]).toBeUndefined();
    members.get(c);
    members.get(d);
    expect(members.get(a)).toEqual({ name: "changed", n: 1 });
    expect([...members.values()].filter((m) => m.name === "file")).toHaveLength(198);
    await store.close();

    const again = reopen(dir);
    await again.store.open();
    expect(again.members.get(a)).toEqual({ name: "changed", n: 1 });
    expect(again.members.has(b)).toBe(false);
    expect(again.members.get("brand_new")).toEqual({ name: "new", n: 2 });
    expect(again.members.size).toBe(200);
  });

  it("applies logged changes to shards it has not read yet, when it reads them", async () => {
    const dir = await tempDir();
    await filled(dir);
    const first = reopen(dir);
    await first.store.open();
    first.members.set("mem_5", { name: "logged", n: 5 });
    first.members.delete("mem_6");
    await first.store.close(); // in the log only

    const second = reopen(dir);
    expect((await second.store.open()).replayedChanges).toBe(2);
    expect(second.store.stats().shardReads).toBe(0);
    expect(second.members.get("mem_5")).toEqual({ name: "logged", n: 5 });
    expect(second.members.has("mem_6")).toBe(false);
    expect(second.members.size).toBe(199);
  });

  it("scans every entry shard by shard, and keeps each key's digest without reading again", async () => {
    const dir = await tempDir();
    await filled(dir);
    const store = createStore({ dir });
    stores.push(store);
    const members = store.collection<Member>("members", { shards: 16, cacheShards: 2, digest: (m) => `${m.name}/${m.n}` });
    await store.open();
    members.set("mem_7", { name: "changed", n: 7 });
    const scanned = new Map<string, Member>();
    for await (const [key, value] of members.scan()) scanned.set(key, value);
    expect(scanned.size).toBe(200);
    expect(scanned.get("mem_7")).toEqual({ name: "changed", n: 7 });
    expect(scanned.get("mem_8")).toEqual({ name: "file", n: 8 });

    expect(members.digestOf("mem_8")).toBe("file/8");
    expect(members.digestOf("mem_7")).toBe("changed/7");
    expect(members.digestOf("nobody")).toBeUndefined();
    const reads = store.stats().shardReads;
    for (let i = 0; i < 200; i++) members.digestOf(`mem_${i}`);
    const afterAll = store.stats().shardReads;
    expect(afterAll - reads).toBeLessThanOrEqual(16); // at most one read per shard, ever
    members.set("mem_8", { name: "again", n: 8 });
    members.delete("mem_9");
    expect(members.digestOf("mem_8")).toBe("again/8");
    expect(members.digestOf("mem_9")).toBeUndefined();
    for (let i = 0; i < 200; i++) members.digestOf(`mem_${i}`);
    expect(store.stats().shardReads).toBe(afterAll);
  });

  it("refuses digestOf on a collection without a digest option", async () => {
    const dir = await tempDir();
    const store = createStore({ dir });
    stores.push(store);
    const plain = store.collection<Member>("plain", { shards: 4 });
    await store.open();
    expect(() => plain.digestOf("x")).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
  });

  it("caches a shard read one value at a time more than 8 times, as a walk in key order does", async () => {
    const dir = await tempDir();
    await filled(dir);
    const { store, members } = reopen(dir);
    await store.open();
    const keys = [...members.keys()]; // reads every shard once, caching none
    const reads = store.stats().shardReads;
    const [first] = keysInDistinctShards(1) as [string];
    const sameShard = keys.filter((k) => shardOf(k, 16) === shardOf(first, 16)).slice(0, 10);
    expect(sameShard).toHaveLength(10);
    for (const key of sameShard.slice(0, 8)) expect(members.get(key)).toEqual({ name: "file", n: Number(key.slice(4)) });
    expect(store.stats()).toMatchObject({ shardReads: reads, pointReads: 8 });
    expect(members.get(sameShard[8] as string)).toBeDefined(); // the 9th reads and caches the shard
    expect(members.get(sameShard[9] as string)).toBeDefined(); // from the cache
    expect(store.stats()).toMatchObject({ shardReads: reads + 1, pointReads: 8 });
  });

  it("reads a file laid out without one entry per line (an older version) whole", async () => {
    const dir = await tempDir();
    await filled(dir);
    const [a, b, c] = keysInDistinctShards(3) as [string, string, string];
    const file = shardFile(dir, a);
    await writeFile(file, JSON.stringify(await readJson(file))); // the same document on one line
    const { store, members } = reopen(dir);
    await store.open();
    expect(members.get(b)).toEqual({ name: "file", n: Number(b.slice(4)) });
    expect(store.stats()).toMatchObject({ shardReads: 0, pointReads: 1 });
    expect(members.get(a)).toEqual({ name: "file", n: Number(a.slice(4)) });
    expect(store.stats()).toMatchObject({ shardReads: 1, pointReads: 1 }); // no line to find: read whole
    expect(members.get(c)).toBeDefined();
  });

  it("refuses cacheShards without shards", () => {
    const store = createStore({ dir: join(tmpdir(), "unused") });
    expect(() => store.collection("x", { cacheShards: 2 })).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
    expect(() => store.collection("y", { shards: 4, cacheShards: 0 })).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
  });
});

describe("durable file adapter under lowdb's Low", () => {
  it("writes the file with mode 0600 and keeps the previous version as .bak", async () => {
    const dir = await tempDir();
    const file = join(dir, "plain.json");
    const adapter = createDurableFileAdapter<{ v: number }>(file);
    const db = new Low(adapter, { v: 0 });
    db.data.v = 1;
    await db.write();
    db.data.v = 2;
    await db.write();
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ v: 2 });
    expect(JSON.parse(await readFile(adapter.backupFile, "utf8"))).toEqual({ v: 1 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(["plain.json", "plain.json.bak"]);
    const again = new Low(createDurableFileAdapter<{ v: number }>(file), { v: 0 });
    await again.read();
    expect(again.data.v).toBe(2);
  });
});

// Every behaviour holds whether a sharded collection is all in memory or read from disk on demand.
describe.each([
  ["members in memory", undefined],
  ["members read on demand, 2 shards cached", 2],
])("store (%s)", (_mode, cached) => {
  beforeAll(() => {
    membersCached = cached;
  });
  afterAll(() => {
    membersCached = undefined;
  });
  it("keeps sets and deletes across close and open", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.inbox.set("evt_1", { receivedAt: 1 });
    for (let i = 0; i < 50; i++) first.members.set(`mem_${i}`, { name: `m${i}`, n: i });
    first.members.delete("mem_7");
    // Keys are data, never object properties of ours.
    first.inbox.set("__proto__", { receivedAt: 2 });
    first.inbox.set("constructor", { receivedAt: 3 });
    await first.store.commit();
    await first.store.close();

    const second = makeStore(dir);
    const report = await second.store.open();
    expect(report.entries).toBe(52);
    expect(second.inbox.get("evt_1")).toEqual({ receivedAt: 1 });
    expect(second.inbox.get("__proto__")).toEqual({ receivedAt: 2 });
    expect(second.inbox.get("constructor")).toEqual({ receivedAt: 3 });
    expect(second.inbox.size).toBe(3);
    expect(second.members.size).toBe(49);
    expect(second.members.has("mem_7")).toBe(false);
    expect(second.members.get("mem_8")).toEqual({ name: "m8", n: 8 });
    expect([...second.members.keys()].sort()).toEqual(
      Array.from({ length: 50 }, (_, i) => `mem_${i}`).filter((k) => k !== "mem_7").sort(),
    );
  });

  it("resolves commit() only once the change is in the log on disk", async () => {
    const dir = await tempDir();
    const { store, inbox } = makeStore(dir);
    await store.open();
    inbox.set("evt_1", { receivedAt: 1 });
    await store.commit();
    inbox.set("evt_2", { receivedAt: 2 });
    expect(await loggedPasses(dir)).toEqual([{ pass: 1, changes: [{ c: "inbox", k: "evt_1", v: { receivedAt: 1 } }] }]);
    await store.commit();
    expect((await loggedPasses(dir)).map((p) => p.changes)).toEqual([
      [{ c: "inbox", k: "evt_1", v: { receivedAt: 1 } }],
      [{ c: "inbox", k: "evt_2", v: { receivedAt: 2 } }],
    ]);
  });

  it("logs 1000 changes and 1000 commits of one tick in one pass, and rewrites no state file", async () => {
    const dir = await tempDir();
    const { store, inbox, members } = makeStore(dir);
    await store.open();
    const commits: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      inbox.set(`evt_${i}`, { receivedAt: i });
      commits.push(store.commit());
    }
    await Promise.all(commits);
    expect(store.stats()).toMatchObject({ commits: 1000, passes: 1, checkpointFiles: 0 });

    for (let i = 0; i < 1000; i++) members.set(`mem_${i}`, { name: "x", n: i });
    members.delete("mem_999");
    await Promise.all([store.commit(), store.commit()]);
    expect(store.stats()).toMatchObject({ commits: 1002, passes: 2, checkpointFiles: 0 });
    const passes = await loggedPasses(dir);
    expect(passes[1]?.changes).toHaveLength(1000);
    expect(passes[1]?.changes.find((c) => c.k === "mem_999")).toEqual({ c: "members", k: "mem_999" });
    await expect(stat(join(dir, "inbox.json"))).rejects.toThrow(/ENOENT/);
  });

  it("checkpoint() rewrites only the files the log changed since they were written", async () => {
    const dir = await tempDir();
    const { store, members } = makeStore(dir);
    await store.open();
    for (let i = 0; i < 200; i++) members.set(`mem_${i}`, { name: "x", n: i });
    await store.checkpoint();
    const files = (await readdir(join(dir, "members"))).filter((f) => f.endsWith(".json"));
    expect(files).toHaveLength(16);
    expect(store.stats().checkpointFiles).toBe(16);
    const inodes = async (): Promise<Map<string, number>> =>
      new Map(await Promise.all(files.map(async (f) => [f, (await stat(join(dir, "members", f))).ino] as const)));
    const before = await inodes();

    members.set("mem_3", { name: "changed", n: 3 });
    await store.commit();
    expect(await inodes()).toEqual(before);
    await store.checkpoint();
    const after = await inodes();
    const changed = files.filter((f) => before.get(f) !== after.get(f));
    expect(changed.map((f) => join(dir, "members", f))).toEqual([shardFile(dir, "mem_3")]);
    expect((await readJson(shardFile(dir, "mem_3"))).entries["mem_3"]).toEqual({ name: "changed", n: 3 });
    // The replaced version is the backup.
    expect((await stat(`${shardFile(dir, "mem_3")}.bak`)).ino).toBe(before.get(changed[0] ?? ""));
    expect(store.stats().checkpointFiles).toBe(17);
  });

  it("makes a commit requested during a running pass wait for the next pass, which logs the later changes", async () => {
    const dir = await tempDir();
    const { store, inbox } = makeStore(dir);
    await store.open();
    inbox.set("a", { receivedAt: 1 });
    const first = store.commit();
    // setImmediate callbacks run in order: the pass has started (and serialized its line) by now.
    await new Promise((r) => setImmediate(r));
    inbox.set("a", { receivedAt: 2 });
    inbox.set("b", { receivedAt: 2 });
    const second = store.commit();
    await first;
    expect((await loggedPasses(dir))[0]?.changes).toEqual([{ c: "inbox", k: "a", v: { receivedAt: 1 } }]);
    await second;
    expect((await loggedPasses(dir))[1]?.changes).toEqual([
      { c: "inbox", k: "a", v: { receivedAt: 2 } },
      { c: "inbox", k: "b", v: { receivedAt: 2 } },
    ]);
    expect(store.stats().passes).toBe(2);
  });

  it("rejects a failed commit, logs nothing of it, and logs its changes with the next one", async () => {
    const dir = await tempDir();
    const { store, inbox } = makeStore(dir);
    await store.open();
    inbox.set("bad", { receivedAt: 10n as unknown as number }); // JSON cannot hold a bigint
    const error = await store.commit().then(() => undefined, (e: unknown) => e);
    expect((error as PerkbridgeError).code).toBe("ERR_STATE_WRITE");
    expect(await loggedPasses(dir)).toEqual([]);
    inbox.set("bad", { receivedAt: 10 });
    await store.commit();
    await store.close();
    const second = makeStore(dir);
    await second.store.open();
    expect(second.inbox.get("bad")).toEqual({ receivedAt: 10 });
  });

  it("applies logged passes again on open, never over a file that already holds them", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.members.set("mem_1", { name: "old", n: 1 });
    await first.store.checkpoint();
    first.members.set("mem_1", { name: "new", n: 1 });
    first.inbox.set("evt_2", { receivedAt: 2 });
    await first.store.close();
    expect((await readJson(shardFile(dir, "mem_1"))).entries["mem_1"]).toEqual({ name: "old", n: 1 });

    const second = makeStore(dir);
    const report = await second.store.open();
    expect(report.replayedChanges).toBe(2);
    expect(second.members.get("mem_1")).toEqual({ name: "new", n: 1 });
    expect(second.inbox.has("evt_2")).toBe(true);
    second.members.set("mem_1", { name: "newest", n: 1 });
    await second.store.close();

    // A file whose pass is as new as the log's last one (the background checkpoint wrote it) is
    // not overwritten by the older lines the log still holds.
    const passes = await loggedPasses(dir);
    const last = passes.at(-1)?.pass ?? 0;
    expect(passes.map((p) => p.changes.find((c) => c.k === "mem_1")?.v)).toEqual([{ name: "new", n: 1 }, { name: "newest", n: 1 }]);
    const file = await readJson(shardFile(dir, "mem_1"));
    await writeFile(shardFile(dir, "mem_1"), JSON.stringify({ ...file, pass: last, entries: { mem_1: { name: "in the file", n: 1 } } }));
    const third = makeStore(dir);
    expect((await third.store.open()).replayedChanges).toBe(1); // evt_2 only: inbox.json was never written
    expect(third.members.get("mem_1")).toEqual({ name: "in the file", n: 1 });
  });

  it("applies the journal a store written before the log left behind, once", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.members.set("mem_1", { name: "old", n: 1 });
    await first.store.checkpoint();
    await first.store.close();
    const filePass = (await readJson(shardFile(dir, "mem_1"))).pass ?? 0;
    await writeFile(
      join(dir, "perkbridge.journal.json"),
      JSON.stringify({ perkbridge: 1, pass: filePass + 1, changes: [{ c: "members", k: "mem_1", v: { name: "journaled", n: 1 } }, { c: "members", k: "mem_2" }] }),
    );

    const second = makeStore(dir);
    expect((await second.store.open()).replayedChanges).toBe(2);
    expect(second.members.get("mem_1")).toEqual({ name: "journaled", n: 1 });
    await second.store.close();
    await expect(stat(join(dir, "perkbridge.journal.json"))).rejects.toThrow(/ENOENT/);
    // Now from the log, which the first pass after the journal wrote.
    const third = makeStore(dir);
    expect((await third.store.open()).replayedChanges).toBe(2);
    expect(third.members.get("mem_1")).toEqual({ name: "journaled", n: 1 });
  });

  it("rejects a commit whose append fails (disk full), and carries on in a new log segment", async () => {
    const dir = await tempDir();
    // Segments of 1 byte: every pass after the first starts a new one.
    const store = createStore({ dir, logSegmentBytes: 1 });
    stores.push(store);
    const inbox = store.collection<{ receivedAt: number }>("inbox");
    await store.open();
    inbox.set("evt_1", { receivedAt: 1 });
    await store.commit();
    // The next segment is /dev/full: every write fails with ENOSPC, and a device cannot be cut
    // back, so that segment is broken for good and the pass after it must start another one.
    const full = join(dir, "perkbridge-00000002.log");
    await symlink("/dev/full", full);
    inbox.set("evt_2", { receivedAt: 2 });
    const error = await store.commit().then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_STATE_WRITE" });
    expect((error as Error).message).toContain("ENOSPC");
    inbox.set("evt_3", { receivedAt: 3 });
    await store.commit();
    // The checkpoint rewrites inbox.json and deletes the segments before it (the link, not the device).
    await store.checkpoint();
    expect((await readdir(dir)).filter((f) => f.endsWith(".log"))).toEqual(["perkbridge-00000004.log"]);
    await store.close();

    const reopened = createStore({ dir });
    stores.push(reopened);
    const again = reopened.collection<{ receivedAt: number }>("inbox");
    await reopened.open();
    expect([...again.keys()].sort()).toEqual(["evt_1", "evt_2", "evt_3"]);
  });

  it("drops the torn tail of an append cut short by a crash, and appends after the good lines", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.members.set("mem_1", { name: "kept", n: 1 });
    await first.store.close();
    const log = await logFile(dir);
    await appendFile(log, '{"pass":2,"changes":[{"c":"members","k":"mem_1","v":{"na');

    const second = makeStore(dir);
    const report = await second.store.open();
    expect(report.tornLogBytes).toBeGreaterThan(0);
    expect(second.members.get("mem_1")).toEqual({ name: "kept", n: 1 });
    second.members.set("mem_2", { name: "after", n: 2 });
    await second.store.close();

    const third = makeStore(dir);
    expect((await third.store.open()).tornLogBytes).toBe(0);
    expect(third.members.get("mem_2")).toEqual({ name: "after", n: 2 });
  });

  it("stops open when a line before good ones is damaged, naming the file and line", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.members.set("mem_1", { name: "a", n: 1 });
    await first.store.commit();
    first.members.set("mem_2", { name: "b", n: 2 });
    await first.store.close();
    const log = await logFile(dir);
    const lines = (await readFile(log, "utf8")).split("\n");
    await writeFile(log, [lines[0]?.replace('"mem_1"', '"mem_1'), ...lines.slice(1)].join("\n"));
    const error = await openError(makeStore(dir).store);
    expect(error.code).toBe("ERR_STATE_CORRUPT");
    expect(error.message).toContain(`${log} is corrupt at line 1, before changes that follow it.`);
  });

  it("starts a new log segment past its size, rewrites what the old one changed, then deletes it", async () => {
    const dir = await tempDir();
    const store = createStore({ dir, logSegmentBytes: 4096 });
    stores.push(store);
    const members = store.collection<Member>("members", { shards: 16 });
    await store.open();
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 20; i++) members.set(`mem_${round}_${i}`, { name: "x".repeat(20), n: round });
      await store.commit();
    }
    // The checkpoint runs behind the commits: wait until it has caught up.
    for (let i = 0; i < 500 && (store.stats().logSegments > 1 || store.stats().checkpointQueue > 0); i++) await new Promise((r) => setTimeout(r, 5));
    expect(store.stats()).toMatchObject({ logSegments: 1, checkpointQueue: 0 });
    const segments = (await readdir(dir)).filter((f) => f.endsWith(".log"));
    expect(segments).toHaveLength(1);
    expect(segments[0]).not.toBe("perkbridge-00000001.log");
    expect(store.stats().checkpointFiles).toBeGreaterThanOrEqual(16);
    await store.close();

    const reopened = createStore({ dir, logSegmentBytes: 4096 });
    stores.push(reopened);
    const again = reopened.collection<Member>("members", { shards: 16 });
    await reopened.open();
    expect(again.size).toBe(400);
    expect(again.get("mem_0_0")).toEqual({ name: "x".repeat(20), n: 0 });
    expect(again.get("mem_19_19")).toEqual({ name: "x".repeat(20), n: 19 });
  });

  it("prunes entries older than the retention by the injected clock", async () => {
    const dir = await tempDir();
    let now = 1_000_000_000_000;
    const { store, inbox } = makeStore(dir, () => now);
    await store.open();
    expect(store.retentionMs).toBe(DEFAULT_RETENTION_MS);
    inbox.set("old", { receivedAt: now - DEFAULT_RETENTION_MS - 1 });
    inbox.set("edge", { receivedAt: now - DEFAULT_RETENTION_MS });
    inbox.set("new", { receivedAt: now });
    expect(store.pruneByAge(inbox, (e) => e.receivedAt)).toBe(1);
    expect([...inbox.keys()].sort()).toEqual(["edge", "new"]);
    now += 1;
    expect(store.pruneByAge(inbox, (e) => e.receivedAt)).toBe(1);
    expect(store.pruneByAge(inbox, (e) => e.receivedAt, 0)).toBe(1);
    expect(store.pruneByAge(inbox, () => undefined, 0)).toBe(0);
    await store.checkpoint();
    expect((await readJson(join(dir, "inbox.json"))).entries).toEqual({});
  });

  it("refuses a second store on a locked directory, and allows it after close", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    const second = makeStore(dir);
    const error = await openError(second.store);
    expect(error.code).toBe("ERR_STATE_LOCKED");
    expect(error.message).toContain(`state directory ${dir} is in use by another perkbridge (pid ${process.pid}). Stop it first, or point --config at another state.dir.`);
    await first.store.close();
    const third = makeStore(dir);
    expect((await third.store.open()).tookOverStaleLock).toBeUndefined();
  });

  it("takes over the lock of a process that is gone, and reports it", async () => {
    const dir = await tempDir();
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    await writeFile(join(dir, "perkbridge.lock"), JSON.stringify({ pid: dead, processStartedAt: 1, hostname: "h", since: "x" }));
    const { store } = makeStore(dir);
    const report = await store.open();
    expect(report.tookOverStaleLock?.holder?.pid).toBe(dead);
    expect(JSON.parse(await readFile(join(dir, "perkbridge.lock"), "utf8"))).toMatchObject({ pid: process.pid });
    await store.close();
    await expect(stat(join(dir, "perkbridge.lock"))).rejects.toThrow(/ENOENT/);
  });

  it("takes over an unreadable lock file", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "perkbridge.lock"), "");
    const { store } = makeStore(dir);
    expect((await store.open()).tookOverStaleLock).toEqual({ holder: undefined });
  });

  describe("with a damaged file", () => {
    /**
     * The error a damaged members shard causes: open() reads every shard of a collection held in
     * memory; one read on demand fails at open or where it is first read, with the same error.
     */
    async function damageError(dir: string): Promise<PerkbridgeError> {
      const { store, members } = makeStore(dir);
      if (cached === undefined) return openError(store);
      // open() reads the head of each file (for its pass): most damage shows there already.
      const atOpen = await store.open().then(() => undefined, (e: unknown) => e);
      if (atOpen !== undefined) {
        expect(atOpen).toBeInstanceOf(PerkbridgeError);
        return atOpen as PerkbridgeError;
      }
      let error: unknown;
      try {
        members.get("mem_1");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(PerkbridgeError);
      await store.close();
      return error as PerkbridgeError;
    }

    /** Two checkpoints, so that the shard of mem_1 has a good .bak. */
    async function stateWithBackup(): Promise<{ dir: string; file: string }> {
      const dir = await tempDir();
      const { store, members } = makeStore(dir);
      await store.open();
      members.set("mem_1", { name: "a", n: 1 });
      await store.checkpoint();
      members.set("mem_1", { name: "b", n: 1 });
      await store.checkpoint();
      await store.close();
      return { dir, file: shardFile(dir, "mem_1") };
    }

    it.each([
      ["garbage", async (file: string) => writeFile(file, "not json at all")],
      ["truncated", async (file: string) => truncate(file, Math.floor((await stat(file)).size / 2))],
      ["empty", async (file: string) => truncate(file, 0)],
      ["of the wrong shape", async (file: string) => writeFile(file, "[1,2,3]")],
    ])("stops open (or the first read) when a file is %s, naming it and its last good backup", async (_, damage) => {
      const { dir, file } = await stateWithBackup();
      await damage(file);
      const damaged = await readFile(file);
      const error = await damageError(dir);
      expect(error).toBeInstanceOf(StateCorruptError);
      expect(error.code).toBe("ERR_STATE_CORRUPT");
      expect(error.message).toMatch(new RegExp(`^${escape(file)} is corrupt \\(.+\\)\\. The last good copy is ${escape(file)}\\.bak: inspect it and copy it over the corrupt file to recover, then start again\\.$`));
      expect((error as StateCorruptError).backup).toBe(`${file}.bak`);
      // Never replaced, and the lock is released: the same error again, not ERR_STATE_LOCKED.
      expect(await readFile(file)).toEqual(damaged);
      expect((await damageError(dir)).code).toBe("ERR_STATE_CORRUPT");
      // Recovery as the message says.
      await copyFile(`${file}.bak`, file);
      const recovered = makeStore(dir);
      await recovered.store.open();
      expect(recovered.members.get("mem_1")).toEqual({ name: "a", n: 1 });
    });

    it("says so when there is no backup", async () => {
      const dir = await tempDir();
      await writeFile(join(dir, "inbox.json"), "{");
      const error = await openError(makeStore(dir).store);
      expect(error.code).toBe("ERR_STATE_CORRUPT");
      expect(error.message).toContain(`${join(dir, "inbox.json")} is corrupt (`);
      expect(error.message).toContain("There is no backup copy (inbox.json.bak does not exist)");
      expect((error as StateCorruptError).backup).toBeUndefined();
    });

    it("says so when the backup is damaged too", async () => {
      const { dir, file } = await stateWithBackup();
      await writeFile(file, "x");
      await writeFile(`${file}.bak`, "y");
      const error = await damageError(dir);
      expect(error.message).toContain(`Its backup ${file}.bak is unreadable too`);
    });

    it("stops open when a file was deleted but its backup is there", async () => {
      const { dir, file } = await stateWithBackup();
      await rm(file);
      const error = await damageError(dir);
      expect(error.code).toBe("ERR_STATE_CORRUPT");
      expect(error.message).toContain(`${file} is missing. The last good copy is ${file}.bak`);
    });

    it.each([true, false])("stops open when a value fails the collection's parse, naming the key (in a file: %s)", async (inFile) => {
      const dir = await tempDir();
      const plain = makeStore(dir);
      await plain.store.open();
      plain.inbox.set("evt_1", { receivedAt: 1 });
      if (inFile) await plain.store.checkpoint();
      await plain.store.close();
      if (inFile) await rm(await logFile(dir));
      const store = createStore({ dir });
      stores.push(store);
      store.collection("inbox", {
        parse: (v: unknown) => {
          if (typeof v === "object" && v !== null && "at" in v) return v;
          throw new Error("at is required");
        },
      });
      const error = await openError(store);
      expect(error.code).toBe("ERR_STATE_CORRUPT");
      expect(error.message).toContain(
        inFile ? `${join(dir, "inbox.json")} is corrupt (entry "evt_1" is invalid: at is required)` : `${await logFile(dir)} line 1: entry "evt_1" of inbox is invalid: at is required`,
      );
    });
  });

  it("removes temp files left by a crash on open", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.members.set("mem_1", { name: "a", n: 1 });
    await first.store.close();
    const leftover = join(dir, "members", "03.json.tmp-99999");
    await writeFile(leftover, "{ half");
    await writeFile(join(dir, "inbox.json.bak.tmp-99999"), "x");
    const { store } = makeStore(dir);
    const report = await store.open();
    expect([...report.removedTempFiles].sort()).toEqual([join(dir, "inbox.json.bak.tmp-99999"), leftover].sort());
    await expect(stat(leftover)).rejects.toThrow(/ENOENT/);
  });

  it("stops open when the shard count of a collection changed", async () => {
    const dir = await tempDir();
    const first = makeStore(dir);
    await first.store.open();
    first.members.set("mem_1", { name: "a", n: 1 });
    await first.store.close();

    for (const shards of [8, 1000, undefined]) {
      const store = createStore({ dir });
      stores.push(store);
      store.collection("members", shards === undefined ? {} : { shards });
      const error = await openError(store);
      expect(error.code).toBe("ERR_STATE_LAYOUT");
      expect(error.message).toContain("The shard count of a state directory cannot change");
    }
  });

  it("guards its lifecycle", async () => {
    const dir = await tempDir();
    const { store, inbox } = makeStore(dir);
    expect(() => inbox.get("x")).toThrow(expect.objectContaining({ code: "ERR_STATE_NOT_OPEN" }));
    expect(() => store.collection("inbox", { shards: 4 })).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
    expect(() => store.collection("Bad.Name")).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
    expect(() => store.collection("x", { shards: 0 })).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
    expect(store.collection("inbox")).toBe(inbox);
    await store.open();
    expect(() => store.collection("late")).toThrow(expect.objectContaining({ code: "ERR_STATE_USAGE" }));
    inbox.set("a", { receivedAt: 1 });
    await store.close(); // logs what was not committed
    expect(() => inbox.set("b", { receivedAt: 2 })).toThrow(expect.objectContaining({ code: "ERR_STATE_CLOSED" }));
    await expect(store.commit()).rejects.toMatchObject({ code: "ERR_STATE_CLOSED" });
    expect((await loggedPasses(dir)).flatMap((p) => p.changes)).toEqual([{ c: "inbox", k: "a", v: { receivedAt: 1 } }]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
