// Durable commit latency of the state store at 100k members and their ledger
// (the issue: "a single change commits in under 10 ms at 100k members").
// Real files in a temp dir, real fsyncs.
import { mkdtemp, open, readdir, rm, stat, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createStore, LARGE_COLLECTION_SHARDS } from "../src/daemon/store/create-store.js";
import type { Collection, Store } from "../src/daemon/store/create-store.js";
import type { Bench, BenchEntry } from "./lib.js";
import { msSince, percentile } from "./lib.js";

const MEMBERS = 100_000;
const SINGLE_SAMPLES = 200;
const BATCH_SAMPLES = 20;
const BATCH_SIZE = 1_000;
/** Compared against the chosen count, to show why it was chosen. */
const SHARD_COUNTS = [LARGE_COLLECTION_SHARDS, 64];

interface BenchMember {
  source: string;
  id: string;
  email: string;
  name: string;
  planId: string;
  status: string;
  statusSince: number;
  identities: { discord: string; minecraft: { uuid: string; name: string } };
  version: number;
}

function member(i: number, version: number): BenchMember {
  // About 300 bytes of JSON, like a normalized PaymentHub member.
  return {
    source: "paymenthub",
    id: `mem_${i.toString(36).padStart(8, "0")}`,
    email: `player${i}@example.com`,
    name: `Player Number ${i}`,
    planId: `plan_${i % 5}`,
    status: i % 10 === 0 ? "canceled" : "active",
    statusSince: 1_700_000_000_000 + i,
    identities: {
      discord: String(100_000_000_000_000_000n + BigInt(i)),
      minecraft: { uuid: `0000${i.toString(16).padStart(8, "0")}-1111-2222-3333-444455556666`, name: `mc_${i}` },
    },
    version,
  };
}

function ledgerEntry(i: number): object {
  return {
    subject: `discord:${String(100_000_000_000_000_000n + BigInt(i))}`,
    perk: { target: "discord", guild: "123456789012345678", role: "987654321098765432" },
    members: [`paymenthub:mem_${i.toString(36).padStart(8, "0")}`],
    grantedAt: 1_700_000_000_000 + i,
    preExisting: false,
  };
}

async function dirSizes(dir: string): Promise<{ total: number; biggest: number }> {
  let total = 0;
  let biggest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const size = (await stat(join(entry.parentPath, entry.name))).size;
    total += size;
    if (!entry.name.endsWith(".bak") && !entry.name.startsWith("perkbridge")) biggest = Math.max(biggest, size);
  }
  return { total, biggest };
}

/** The floor on this disk: append `bytes` to an open file and fdatasync it, without any store. */
async function bareDurableAppend(handle: FileHandle, bytes: Buffer): Promise<number> {
  const start = process.hrtime.bigint();
  await handle.write(bytes, 0, bytes.length, null);
  await handle.datasync();
  return msSince(start);
}

function declare(dir: string, shards: number): { store: Store; members: Collection<BenchMember>; ledger: Collection<object> } {
  const store = createStore({ dir });
  store.collection("inbox");
  return {
    store,
    members: store.collection<BenchMember>("members", { shards }),
    ledger: store.collection<object>("ledger", { shards }),
  };
}

async function run(shards: number): Promise<BenchEntry[]> {
  const dir = await mkdtemp(join(tmpdir(), "perkbridge-bench-store-"));
  const label = `${MEMBERS / 1000}k members + ledger, ${shards} shards`;
  try {
    const filled = declare(dir, shards);
    await filled.store.open();
    for (let i = 0; i < MEMBERS; i++) {
      filled.members.set(`mem_${i}`, member(i, 0));
      filled.ledger.set(`led_${i}`, ledgerEntry(i));
    }
    // Into the files, as a daemon that has run a while leaves them: its log holds recent changes only.
    await filled.store.checkpoint();
    await filled.store.close();

    const openStart = process.hrtime.bigint();
    const { store, members } = declare(dir, shards);
    await store.open();
    const openMs = msSince(openStart);

    // Warm-up.
    for (let i = 0; i < 20; i++) {
      members.set(`mem_${i * 997}`, member(i * 997, 1));
      await store.commit();
    }

    // Interleaved with the store's samples, so both see the same load on a shared machine.
    const bareFile = await open(join(dir, "bare.log"), "a");
    const lineBytes = Buffer.from(`${JSON.stringify({ pass: 1, changes: [{ c: "members", k: "mem_1", v: member(1, 1) }] })}\n`);
    const single: number[] = [];
    const bare: number[] = [];
    for (let s = 0; s < SINGLE_SAMPLES; s++) {
      const i = Math.floor(Math.random() * MEMBERS);
      const start = process.hrtime.bigint();
      members.set(`mem_${i}`, member(i, s + 2));
      await store.commit();
      single.push(msSince(start));
      bare.push(await bareDurableAppend(bareFile, lineBytes));
    }
    await bareFile.close();
    await rm(join(dir, "bare.log"));

    const batch: number[] = [];
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    for (let s = 0; s < BATCH_SAMPLES; s++) {
      const start = process.hrtime.bigint();
      for (let c = 0; c < BATCH_SIZE; c++) {
        const i = Math.floor(Math.random() * MEMBERS);
        members.set(`mem_${i}`, member(i, s + 1_000));
      }
      await store.commit();
      batch.push(msSince(start));
    }
    loopDelay.disable();
    await store.close();
    const sizes = await dirSizes(dir);

    return [
      // baseline: a bare append + fdatasync of a line of the same size to an open file.
      { name: `store single-change commit p50 (${label})`, value: percentile(single, 50), unit: "ms", target: "< 10 ms", better: "lower", baseline: percentile(bare, 50) },
      { name: `store single-change commit p99 (${label})`, value: percentile(single, 99), unit: "ms", target: "< 10 ms", better: "lower", baseline: percentile(bare, 99) },
      { name: `store ${BATCH_SIZE}-change commit p50 (${label})`, value: percentile(batch, 50), unit: "ms", better: "lower" },
      { name: `store ${BATCH_SIZE}-change commit p99 (${label})`, value: percentile(batch, 99), unit: "ms", better: "lower" },
      { name: `store longest event-loop block in ${BATCH_SIZE}-change commits (${label})`, value: loopDelay.max / 1e6, unit: "ms", better: "lower" },
      { name: `store open() (${label})`, value: openMs, unit: "ms", better: "lower" },
      { name: `store biggest state file (${label})`, value: sizes.biggest / 1024, unit: "KiB", better: "lower" },
      { name: `store state dir with backups (${label})`, value: sizes.total / 1024 / 1024, unit: "MiB", better: "lower" },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const bench: Bench = async () => {
  const entries: BenchEntry[] = [];
  for (const shards of SHARD_COUNTS) entries.push(...(await run(shards)));
  entries.push({ name: "store shard count chosen for members and ledger (LARGE_COLLECTION_SHARDS)", value: LARGE_COLLECTION_SHARDS, unit: "shards", better: "lower" });
  return entries;
};

export default bench;
