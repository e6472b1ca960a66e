import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { PerkbridgeError } from "../../src/core/errors.js";
import type { RatePriority } from "../../src/core/rate-budget.js";
import { createBudgetGate, type GateTimers } from "../../src/daemon/paymenthub/create-budget-gate.js";
import { createStore, type Store } from "../../src/daemon/store/create-store.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { createPaymentHubClient, type RequestGate } from "../../src/sources/paymenthub/create-paymenthub-client.js";
import { PaymentHubError } from "../../src/sources/paymenthub/paymenthub-error.js";

const API_KEY = "sk_test_gate_0123456789";
const T0 = Date.parse("2024-01-15T10:30:00Z");

interface Line {
  readonly level: string;
  readonly obj: object;
  readonly msg: string;
}

function recordingLogger(): { lines: Line[]; info(obj: object, msg: string): void; warn(obj: object, msg: string): void } {
  const lines: Line[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: "info", obj, msg }),
    warn: (obj, msg) => lines.push({ level: "warn", obj, msg }),
  };
}

/** Time that only moves when the test says so; the gate's timers fire as it passes them. */
function manualTime(start = T0): { clock: { now(): number }; timers: GateTimers; advance(ms: number): void; pending(): number } {
  let now = start;
  let seq = 0;
  const due = new Map<number, { at: number; fn: () => void }>();
  return {
    clock: { now: () => now },
    timers: {
      set(fn, ms) {
        const id = ++seq;
        due.set(id, { at: now + ms, fn });
        return id;
      },
      clear(handle) {
        due.delete(handle as number);
      },
    },
    advance(ms) {
      const target = now + ms;
      for (;;) {
        const next = [...due.entries()].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
        if (next === undefined) break;
        due.delete(next[0]);
        now = Math.max(now, next[1].at);
        next[1].fn();
      }
      now = target;
    },
    pending: () => due.size,
  };
}

/** Real time run `speed` times faster, for the emulator's windows and the gate alike. */
function fastTime(speed: number): { clock: { now(): number }; timers: GateTimers } {
  const realStart = Date.now();
  return {
    clock: { now: () => T0 + (Date.now() - realStart) * speed },
    timers: {
      set: (fn, ms) => setTimeout(fn, Math.ceil(ms / speed)),
      clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startEmulator(clock: { now(): number }, rateLimit = { perHour: 1000, perMinute: 100 }): Promise<PaymentHubEmulator> {
  const emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: "whsec_gate", clock, rateLimit });
  await emulator.start();
  cleanups.push(() => emulator.close());
  return emulator;
}

async function openStore(dir: string, clock: { now(): number }): Promise<{ store: Store; kv: ReturnType<Store["collection"]> }> {
  const store = createStore({ dir, clock });
  const kv = store.collection<unknown>("kv");
  await store.open();
  return { store, kv };
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "perkbridge-gate-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function clientFor(emulator: PaymentHubEmulator, gate: RequestGate, clock: { now(): number }) {
  return createPaymentHubClient({ baseUrl: emulator.url, apiKey: API_KEY, timeoutMs: 5_000, gate, clock, retry: { limit: 0 } });
}

const RANK: Record<RatePriority, number> = { webhook: 0, write: 1, poll: 2 };

describe("budget gate against the PaymentHub emulator", () => {
  it("a burst of 200 lookups never draws a 429 and waiting requests go strictly by priority", async () => {
    const time = fastTime(100);
    const emulator = await startEmulator(time.clock, { perHour: 300, perMinute: 30 });
    for (let i = 0; i < 200; i++) emulator.addMember({ id: `mem_${i}`, email: `m${i}@example.com` }, { emit: false });
    const { store, kv } = await openStore(await tempDir(), time.clock);
    cleanups.push(() => store.close());
    const gate = createBudgetGate({
      rateLimit: { per_hour: 300, per_minute: 30 },
      clock: time.clock,
      kv,
      store,
      logger: recordingLogger(),
      timers: time.timers,
      // 20 virtual seconds are 200 real ms at this speed: room for the loopback's own jitter.
      budget: { marginMs: 20_000 },
    });
    cleanups.push(() => gate.stop());
    const order: RatePriority[] = [];
    const observed: RequestGate = {
      async acquire(priority) {
        await gate.acquire(priority);
        order.push(priority);
      },
      observe: (info) => gate.observe(info),
    };
    const client = clientFor(emulator, observed, time.clock);

    // Issued lowest priority first, so the higher ones must overtake the waiting polls.
    const plan: RatePriority[] = [...Array<RatePriority>(70).fill("poll"), ...Array<RatePriority>(65).fill("write"), ...Array<RatePriority>(65).fill("webhook")];
    const results = await Promise.all(plan.map((priority, i) => client.getMember(`mem_${i}`, { priority })));

    expect(results.every((m) => m !== null)).toBe(true);
    expect(emulator.calls).toHaveLength(200);
    expect(emulator.calls.filter((c) => c.status === 429)).toEqual([]);
    const firstWebhook = order.indexOf("webhook");
    expect(firstWebhook).toBeGreaterThan(0);
    expect(order.lastIndexOf("poll")).toBeGreaterThan(firstWebhook);
    const afterFirstWait = order.slice(firstWebhook).map((p) => RANK[p]);
    expect(afterFirstWait).toEqual([...afterFirstWait].sort((a, b) => a - b));
    expect(gate.snapshot().waiting).toEqual({ webhook: 0, write: 0, poll: 0 });
  });

  it.each([
    ["delta seconds", (_now: number) => "7", 7_000],
    ["an HTTP date", (now: number) => new Date(now + 30_000).toUTCString(), 30_000],
  ])("honours a 429's Retry-After given as %s", async (_form, header, waitMs) => {
    const time = manualTime();
    const emulator = await startEmulator(time.clock);
    emulator.addMember({ id: "mem_a", email: "a@example.com" }, { emit: false });
    const { store, kv } = await openStore(await tempDir(), time.clock);
    cleanups.push(() => store.close());
    const gate = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv, store, logger: recordingLogger(), timers: time.timers });
    cleanups.push(() => gate.stop());
    const client = clientFor(emulator, gate, time.clock);

    emulator.faults.rateLimit429Next(1, header(time.clock.now()));
    const refused = await client.getMember("mem_a").then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(PaymentHubError);
    expect((refused as PaymentHubError).code).toBe("ERR_PAYMENTHUB_RATE_LIMITED");
    expect(gate.snapshot().blockedUntil).toBe(T0 + waitMs);

    const later = client.getMember("mem_a");
    await sleep(30);
    time.advance(waitMs - 1);
    await sleep(30);
    expect(emulator.calls).toHaveLength(1);
    time.advance(1);
    expect((await later)?.id).toBe("mem_a");
    expect(emulator.calls.map((c) => c.status)).toEqual([429, 200]);
  });

  it("keeps a long pause across a restart from the same state directory", async () => {
    const time = manualTime();
    const emulator = await startEmulator(time.clock);
    emulator.addMember({ id: "mem_a", email: "a@example.com" }, { emit: false });
    const dir = await tempDir();
    const first = await openStore(dir, time.clock);
    const logger = recordingLogger();
    const gate = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv: first.kv, store: first.store, logger, timers: time.timers });
    emulator.faults.rateLimit429Next(1, "120");
    await clientFor(emulator, gate, time.clock).getMember("mem_a").catch(() => undefined);
    expect(logger.lines.some((l) => l.level === "warn" && /paused by its rate limit/.test(l.msg))).toBe(true);

    // The pause is already on disk: no stop() of the gate (a crash), only what the pause itself committed.
    await first.store.commit();
    const logged = await loggedValues(dir, "kv", "rate-budget:paymenthub");
    expect((logged.at(-1) as { blockedUntil: number } | undefined)?.blockedUntil).toBe(T0 + 120_000);
    await first.store.close();

    time.advance(20_000);
    const second = await openStore(dir, time.clock);
    cleanups.push(() => second.store.close());
    const restored = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv: second.kv, store: second.store, logger: recordingLogger(), timers: time.timers });
    cleanups.push(() => restored.stop());
    expect(restored.snapshot()).toMatchObject({ blockedUntil: T0 + 120_000, waitMs: { webhook: 100_000, write: 100_000, poll: 100_000 } });

    let served = false;
    const waiting = restored.acquire("webhook").then(() => {
      served = true;
    });
    time.advance(99_999);
    await sleep(10);
    expect(served).toBe(false);
    time.advance(1);
    await waiting;
    expect(served).toBe(true);
  });

  it("persists a stop at X-RateLimit-Remaining 0 but not the pacing before it", async () => {
    const time = manualTime();
    const dir = await tempDir();
    const { store, kv } = await openStore(dir, time.clock);
    cleanups.push(() => store.close());
    const gate = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv, store, logger: recordingLogger(), timers: time.timers });
    cleanups.push(() => gate.stop());
    await gate.acquire("poll");
    gate.observe({ status: 200, remaining: 3 });
    expect(kv.get("rate-budget:paymenthub")).toBeUndefined();
    // Pacing: with 3 left, requests are spread 20 s apart, which is no pause to save.
    expect(gate.snapshot().waitMs.webhook).toBe(20_000);
    gate.observe({ status: 200, remaining: 0 });
    expect(kv.get("rate-budget:paymenthub")).toMatchObject({ server: { remaining: 0 } });
    expect(gate.snapshot().waitMs.webhook).toBe(61_000);
  });

  it("stop() rejects every waiting request cleanly and saves the request log", async () => {
    const time = manualTime();
    const emulator = await startEmulator(time.clock);
    emulator.addMember({ id: "mem_a", email: "a@example.com" }, { emit: false });
    const { store, kv } = await openStore(await tempDir(), time.clock);
    cleanups.push(() => store.close());
    const gate = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv, store, logger: recordingLogger(), timers: time.timers });
    const client = clientFor(emulator, gate, time.clock);
    gate.observe({ status: 429, retryAfter: "3600" });
    const waiting = [client.getMember("mem_a"), client.getMember("mem_a", { priority: "poll" }), gate.acquire("write")];
    await sleep(10);
    expect(gate.snapshot().waiting).toEqual({ webhook: 1, write: 1, poll: 1 });
    expect(time.pending()).toBe(1);
    const settled = Promise.allSettled(waiting);
    await gate.stop();
    const outcomes = await settled;
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(PerkbridgeError);
      expect(((o as PromiseRejectedResult).reason as PerkbridgeError).code).toBe("ERR_GATE_STOPPED");
    }
    expect(time.pending()).toBe(0);
    expect(emulator.calls).toHaveLength(0);
    await expect(gate.acquire("webhook")).rejects.toMatchObject({ code: "ERR_GATE_STOPPED" });
    expect(kv.get("rate-budget:paymenthub")).toMatchObject({ blockedUntil: T0 + 3_600_000 });
  });

  it("starts afresh from an unreadable saved budget, saying so", async () => {
    const time = manualTime();
    const { store, kv } = await openStore(await tempDir(), time.clock);
    cleanups.push(() => store.close());
    kv.set("rate-budget:paymenthub", { log: "nonsense" });
    const logger = recordingLogger();
    const gate = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv, store, logger, timers: time.timers });
    cleanups.push(() => gate.stop());
    expect(logger.lines.map((l) => l.msg)).toContain("saved PaymentHub rate budget is unreadable; starting a fresh one");
    await gate.acquire("poll");
    expect(gate.snapshot().windows.map((w) => w.used)).toEqual([1, 1]);
  });
});

/** Every value the state directory's write-ahead log holds for one key, oldest first. */
async function loggedValues(dir: string, collection: string, key: string): Promise<unknown[]> {
  const values: unknown[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".log")).sort()) {
    for (const line of (await readFile(join(dir, file), "utf8")).split("\n").filter((l) => l !== "")) {
      const { changes } = JSON.parse(line) as { changes: { c: string; k: string; v?: unknown }[] };
      for (const change of changes) if (change.c === collection && change.k === key) values.push(change.v);
    }
  }
  return values;
}
