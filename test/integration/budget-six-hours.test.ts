// Six simulated hours of PaymentHub traffic through the real client, the budget gate and the
// emulator's rate limits, on a virtual clock that jumps to the next timer whenever every caller
// waits for the gate: real HTTP on loopback, no sleeping.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { RatePriority } from "../../src/core/rate-budget.js";
import { createBudgetGate, type GateTimers } from "../../src/daemon/paymenthub/create-budget-gate.js";
import { createStore } from "../../src/daemon/store/create-store.js";
import { createPaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { createPaymentHubClient, type RequestGate } from "../../src/sources/paymenthub/create-paymenthub-client.js";

const API_KEY = "sk_test_six_hours_42";
const T0 = Date.parse("2024-01-15T00:00:00Z");
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** A clock that moves only when told, to the next due timer. */
function virtualTime(): { clock: { now(): number }; timers: GateTimers; next(): number | undefined; fireNext(): void } {
  let now = T0;
  let seq = 0;
  const due = new Map<number, { at: number; fn: () => void }>();
  const earliest = () => [...due.entries()].sort((a, b) => a[1].at - b[1].at)[0];
  return {
    clock: { now: () => now },
    timers: {
      set(fn, ms) {
        due.set(++seq, { at: now + Math.max(0, ms), fn });
        return seq;
      },
      clear: (handle) => void due.delete(handle as number),
    },
    next: () => earliest()?.[1].at,
    fireNext() {
      const first = earliest();
      if (!first) return;
      due.delete(first[0]);
      now = Math.max(now, first[1].at);
      first[1].fn();
    },
  };
}

/** The most requests any window of `windowMs` holds, over sorted times. */
function busiestWindow(times: readonly number[], windowMs: number): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] as number) - (times[start] as number) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("six hours of traffic against PaymentHub's documented limits", () => {
  it("never exceeds 100 per minute or 1000 per hour, never draws a 429, and still serves every webhook lookup", async () => {
    const time = virtualTime();
    const emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: "whsec_six", clock: time.clock, rateLimit: { perHour: 1000, perMinute: 100 } });
    await emulator.start();
    cleanups.push(() => emulator.close());
    emulator.addMember({ id: "mem_1", email: "one@example.com" }, { emit: false });
    const dir = await mkdtemp(join(tmpdir(), "perkbridge-six-hours-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = createStore({ dir, clock: time.clock });
    const kv = store.collection<unknown>("kv");
    await store.open();
    cleanups.push(() => store.close());
    const silent = { info: () => undefined, warn: () => undefined };
    const gate = createBudgetGate({ rateLimit: { per_hour: 1000, per_minute: 100 }, clock: time.clock, kv, store, logger: silent, timers: time.timers });
    cleanups.push(() => gate.stop());

    let inFlight = 0;
    const sent: { at: number; priority: RatePriority }[] = [];
    const counted: RequestGate = {
      async acquire(priority) {
        await gate.acquire(priority);
        inFlight++;
        sent.push({ at: time.clock.now(), priority });
      },
      observe(info) {
        inFlight--;
        gate.observe(info);
      },
    };
    const client = createPaymentHubClient({ baseUrl: emulator.url, apiKey: API_KEY, timeoutMs: 5_000, gate: counted, clock: time.clock, retry: { limit: 0 } });

    const end = T0 + 6 * HOUR;
    let stop = false;
    // Polling and writes ask as fast as the gate lets them; webhook lookups come in bursts of 30 every 20 minutes.
    const greedy = (priority: RatePriority) => async () => {
      while (!stop) await client.getMember("mem_1", { priority });
    };
    const webhooks = async () => {
      for (let burst = T0; burst < end && !stop; burst += 20 * MINUTE) {
        await new Promise<void>((resolve) => time.timers.set(resolve, burst - time.clock.now()));
        await Promise.all(Array.from({ length: 30 }, () => client.getMember("mem_1", { priority: "webhook" })));
      }
    };
    const workers = [greedy("poll")(), greedy("write")(), webhooks()];

    // With no request on the wire, every caller waits for a timer (the gate's or the next burst):
    // time jumps to the earliest one.
    while (time.clock.now() < end) {
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      if (inFlight > 0) continue;
      if (time.next() === undefined) break;
      time.fireNext();
    }
    stop = true;
    const settled = Promise.allSettled(workers);
    await gate.stop();
    await settled;

    const times = sent.map((s) => s.at).sort((a, b) => a - b);
    expect(emulator.calls.filter((c) => c.status === 429)).toEqual([]);
    expect(busiestWindow(times, MINUTE)).toBeLessThanOrEqual(100);
    expect(busiestWindow(times, HOUR)).toBeLessThanOrEqual(1000);
    // The budget was used, not left idle: close to 1000 an hour for six hours.
    expect(sent.length).toBeGreaterThan(5_000);
    // Every burst of webhook lookups got through while polling and writes kept the budget busy.
    expect(sent.filter((s) => s.priority === "webhook")).toHaveLength(18 * 30);
    expect(emulator.calls.every((c) => c.status === 200)).toBe(true);
  }, 120_000);
});
