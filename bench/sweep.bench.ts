// A full PaymentHub sweep of N members through the real client, budget gate
// and emulator on loopback (rate limits raised so only the sweep's own cost
// shows). The first sweep finds every member new and schedules each; the
// second is the steady state: nothing changed, nothing missing, so it must
// cost exactly ceil(N/100) list requests and schedule nothing.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { declareCollections, INTAKE_DIR } from "../src/daemon/declare-collections.js";
import { createBudgetGate } from "../src/daemon/paymenthub/create-budget-gate.js";
import { createSweeper } from "../src/daemon/paymenthub/create-sweeper.js";
import type { ReconcileHint } from "../src/daemon/reconcile/reconcile-engine.js";
import { createStore } from "../src/daemon/store/create-store.js";
import { createPaymentHubEmulator } from "../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { createPaymentHubClient } from "../src/sources/paymenthub/create-paymenthub-client.js";
import { msSince, type Bench, type BenchEntry } from "./lib.js";

const API_KEY = "sk_bench_sweep_0123456789";
const SIZES = [1_000, 10_000, 25_000];
const quiet = { info: () => undefined, warn: () => undefined };

async function sweepOf(n: number): Promise<BenchEntry[]> {
  const raised = { perHour: 10_000_000, perMinute: 1_000_000 };
  const emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: "whsec_bench", rateLimit: raised });
  await emulator.start();
  const dir = await mkdtemp(join(tmpdir(), "perkbridge-sweep-bench-"));
  const store = createStore({ dir });
  // The daemon's own collections: members read on demand, with the digests a sweep compares.
  const { members, kv } = declareCollections(store, createStore({ dir: join(dir, INTAKE_DIR) }));
  await store.open();
  const gate = createBudgetGate({ rateLimit: { per_hour: raised.perHour, per_minute: raised.perMinute }, clock: { now: () => Date.now() }, kv, store, logger: quiet });
  try {
    for (let i = 0; i < n; i++) {
      emulator.addMember(
        { id: `mem_${i}`, email: `m${i}@example.com`, plan_id: "plan_premium", metadata: { discord_id: String(100_000_000_000_000_000n + BigInt(i)), minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", playtime: i } } },
        { emit: false },
      );
    }
    const client = createPaymentHubClient({ baseUrl: emulator.url, apiKey: API_KEY, timeoutMs: 10_000, gate });
    // The engine's side of it: members stored as scheduled, so the second sweep sees them as known.
    let scheduled = 0;
    let confirmations = 0;
    const engine = {
      schedule(key: string, hint: ReconcileHint) {
        scheduled++;
        if (hint.confirmGone === true) confirmations++;
        if (hint.payload) members.set(key, hint.payload);
      },
      member: (key: string) => members.get(key),
    };
    const sweeper = createSweeper({ client, engine, members, clock: { now: () => Date.now() }, logger: quiet, cron: "auto", rateLimit: { per_hour: 1000, per_minute: 100 } });

    let start = process.hrtime.bigint();
    const first = await sweeper.sweep();
    const firstMs = msSince(start);
    const listed = (): number => emulator.calls.filter((c) => c.path === "/v1/members").length;
    const afterFirst = listed();
    scheduled = 0;
    confirmations = 0;
    start = process.hrtime.bigint();
    const steady = await sweeper.sweep();
    const steadyMs = msSince(start);
    const requests = listed() - afterFirst;
    const expected = Math.ceil(n / 100);
    if (!first.complete || !steady.complete) throw new Error(`sweep of ${n} members did not complete: ${first.error ?? steady.error}`);
    const label = n.toLocaleString("en-US");
    return [
      { name: `sweep ${label} members: list requests`, value: requests + confirmations, unit: "requests", target: `= ${expected}`, better: "lower", baseline: expected },
      { name: `sweep ${label} members: first sweep list requests`, value: afterFirst, unit: "requests", target: `= ${expected}`, better: "lower" },
      { name: `sweep ${label} members: reconciles scheduled by a quiet sweep`, value: scheduled, unit: "members", target: "= 0", better: "lower" },
      { name: `sweep ${label} members: first sweep duration`, value: firstMs, unit: "ms", better: "lower" },
      { name: `sweep ${label} members: quiet sweep duration`, value: steadyMs, unit: "ms", better: "lower" },
      { name: `sweep ${label} members: auto cadence`, value: sweeper.cadence().plan?.everyMinutes ?? Number.NaN, unit: "min", better: "lower" },
    ];
  } finally {
    await gate.stop();
    await store.close();
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const bench: Bench = async () => {
  const entries: BenchEntry[] = [];
  for (const n of SIZES) entries.push(...(await sweepOf(n)));
  return entries;
};

export default bench;
