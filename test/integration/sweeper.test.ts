import { createServer } from "node:http";
import { reconcileDigest } from "../../src/daemon/member-digest.js";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import type { Member } from "../../src/core/member.js";
import { createPaymentHubLookup } from "../../src/daemon/paymenthub/create-paymenthub-lookup.js";
import { createSweeper, type SweepEngine, type SweeperOptions, type SweepReport } from "../../src/daemon/paymenthub/create-sweeper.js";
import type { ReconcileHint } from "../../src/daemon/reconcile/reconcile-engine.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { createPaymentHubClient, type PaymentHubClient } from "../../src/sources/paymenthub/create-paymenthub-client.js";

const API_KEY = "sk_test_sweeper_0123456789";
let now = Date.parse("2024-01-15T10:30:00Z");
const clock = { now: () => now };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Line {
  readonly level: string;
  readonly msg: string;
}

function recordingLogger(): { lines: Line[]; info(obj: object, msg: string): void; warn(obj: object, msg: string): void } {
  const lines: Line[] = [];
  return { lines, info: (_o, msg) => lines.push({ level: "info", msg }), warn: (_o, msg) => lines.push({ level: "warn", msg }) };
}

/**
 * The engine is not the unit under test: this one records what it is asked to
 * schedule and keeps members the way the engine stores them (`store()` plays
 * the engine having reconciled what was scheduled).
 */
function recordingEngine(): SweepEngine & { scheduled: { key: string; hint: ReconcileHint }[]; members: Map<string, Member>; store(): void } {
  const members = new Map<string, Member>();
  const scheduled: { key: string; hint: ReconcileHint }[] = [];
  return {
    scheduled,
    members,
    schedule(key, hint) {
      scheduled.push({ key, hint });
    },
    member: (key) => members.get(key),
    store() {
      for (const { key, hint } of scheduled.splice(0)) if (hint.payload) members.set(key, hint.payload);
    },
  };
}

async function startEmulator(rateLimit = { perHour: 100_000, perMinute: 100_000 }): Promise<PaymentHubEmulator> {
  const emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: "whsec_sweep", clock, rateLimit });
  await emulator.start();
  cleanups.push(() => emulator.close());
  return emulator;
}

function seed(emulator: PaymentHubEmulator, n: number): void {
  for (let i = 0; i < n; i++) {
    emulator.addMember(
      { id: `mem_${String(i).padStart(4, "0")}`, email: `m${i}@example.com`, plan_id: "plan_premium", metadata: { discord_id: `1000000000000${i}`, custom_field: "x" } },
      { emit: false },
    );
  }
}

function clientFor(emulator: PaymentHubEmulator): PaymentHubClient {
  return createPaymentHubClient({ baseUrl: emulator.url, apiKey: API_KEY, timeoutMs: 2_000, clock, retry: { limit: 2, baseDelayMs: 1, maxDelayMs: 5 } });
}

function sweeperFor(client: PaymentHubClient, engine: ReturnType<typeof recordingEngine>, overrides: Partial<SweeperOptions> = {}) {
  const logger = recordingLogger();
  const sweeper = createSweeper({
    client,
    engine,
    members: membersView(engine.members),
    clock,
    logger,
    cron: "auto",
    rateLimit: { per_hour: 1000, per_minute: 100 },
    ...overrides,
  });
  cleanups.push(() => sweeper.stop());
  return { sweeper, logger };
}

/** What the sweeper reads of the members collection, over a map (the store's own is tested with the store). */
function membersView(members: Map<string, Member>) {
  return {
    keys: () => members.keys(),
    get: (key: string) => members.get(key),
    digestOf: (key: string) => {
      const member = members.get(key);
      return member === undefined ? undefined : reconcileDigest(member);
    },
  };
}

const listCalls = (emulator: PaymentHubEmulator) => emulator.calls.filter((c) => c.method === "GET" && c.path === "/v1/members");

describe("PaymentHub sweeper against the emulator", () => {
  it("lists 250 members in exactly 3 requests and schedules each new one with its listed state", async () => {
    const emulator = await startEmulator();
    seed(emulator, 250);
    const engine = recordingEngine();
    const { sweeper } = sweeperFor(clientFor(emulator), engine);

    const report = await sweeper.sweep();

    expect(listCalls(emulator).map((c) => c.query)).toEqual([1, 2, 3].map((page) => ({ page: String(page), limit: "100" })));
    expect(emulator.calls).toHaveLength(3);
    expect(report).toMatchObject({ pages: 3, requests: 3, members: 250, total: 250, changed: 250, missing: 0, confirmed: 0, complete: true });
    expect(report.error).toBeUndefined();
    expect(engine.scheduled).toHaveLength(250);
    const first = engine.scheduled[0];
    expect(first?.key).toBe("paymenthub:mem_0000");
    expect(first?.hint).toMatchObject({ cause: "sweep", payload: { source: "paymenthub", id: "mem_0000", status: "active", planId: "plan_premium", identities: { discord: "10000000000000" }, observedAt: now } });
    expect(sweeper.lastReport()).toBe(report);
  });

  it("schedules only members whose relevant state changed; a quiet sweep schedules nothing", async () => {
    const emulator = await startEmulator();
    seed(emulator, 120);
    const engine = recordingEngine();
    const { sweeper } = sweeperFor(clientFor(emulator), engine);
    await sweeper.sweep();
    engine.store();

    now += 60_000;
    const quiet = await sweeper.sweep();
    expect(quiet).toMatchObject({ complete: true, changed: 0, missing: 0, requests: 2 });
    expect(engine.scheduled).toEqual([]);

    emulator.updateMember("mem_0003", { status: "canceled" }, { emit: false });
    emulator.updateMember("mem_0007", { plan_id: "plan_basic" }, { emit: false });
    emulator.updateMember("mem_0011", { metadata: { discord_id: "99999999999999999", custom_field: "x" } }, { emit: false });
    emulator.updateMember("mem_0013", { metadata: { custom_field: "y", discord_id: "100000000000013" } }, { emit: false });
    emulator.renewSubscription("mem_0101", "2024-02-15T10:30:00Z", { emit: false });
    emulator.updateMember("mem_0102", { trial_ends_at: "2024-01-22T10:30:00Z" }, { emit: false });
    // Not relevant to perks: a new name, and the same metadata in another key order.
    emulator.updateMember("mem_0020", { name: "Renamed" }, { emit: false });
    emulator.updateMember("mem_0021", { metadata: { custom_field: "x", discord_id: "100000000000021" } }, { emit: false });

    const report = await sweeper.sweep();
    expect(report.changed).toBe(6);
    expect(engine.scheduled.map((s) => s.key)).toEqual(["mem_0003", "mem_0007", "mem_0011", "mem_0013", "mem_0101", "mem_0102"].map((id) => `paymenthub:${id}`));
    expect(engine.scheduled.every((s) => s.hint.payload !== undefined && s.hint.confirmGone === undefined)).toBe(true);
    expect(engine.scheduled[0]?.hint.payload?.status).toBe("canceled");
    expect(engine.scheduled[4]?.hint.payload?.paidUntil).toBe(Date.parse("2024-02-15T10:30:00Z"));
  });

  it("asks the engine to confirm a member deleted at PaymentHub only after a complete sweep", async () => {
    const emulator = await startEmulator();
    seed(emulator, 150);
    const engine = recordingEngine();
    const { sweeper } = sweeperFor(clientFor(emulator), engine);
    await sweeper.sweep();
    engine.store();
    engine.members.set("paymenthub:mem_gone", { source: "paymenthub", id: "mem_gone", status: "active", identities: {}, metadata: {}, statusSince: 0, observedAt: 0, gone: true });
    engine.members.set("other:mem_0001", { source: "other", id: "mem_0001", status: "active", identities: {}, metadata: {}, statusSince: 0, observedAt: 0 });

    emulator.deleteMember("mem_0042", "deleted", { emit: false });
    emulator.deleteMember("mem_0149", "deleted", { emit: false });
    const report = await sweeper.sweep();

    expect(report).toMatchObject({ complete: true, members: 148, missing: 2, confirmed: 2, changed: 0, requests: 2 });
    expect(engine.scheduled).toEqual([
      { key: "paymenthub:mem_0042", hint: { cause: "sweep", confirmGone: true } },
      { key: "paymenthub:mem_0149", hint: { cause: "sweep", confirmGone: true } },
    ]);
  });

  it("confirms nothing when the API is down for the whole sweep", async () => {
    const emulator = await startEmulator();
    seed(emulator, 150);
    const engine = recordingEngine();
    const { sweeper, logger } = sweeperFor(clientFor(emulator), engine);
    await sweeper.sweep();
    engine.store();

    emulator.faults.failNext(100, 503);
    const report = await sweeper.sweep();

    expect(report).toMatchObject({ complete: false, pages: 0, requests: 1, members: 0, changed: 0, missing: 0, confirmed: 0 });
    expect(report.error).toMatch(/PaymentHub answered 503/);
    // One list request, retried twice inside the client.
    expect(listCalls(emulator).slice(2).map((c) => c.status)).toEqual([503, 503, 503]);
    expect(engine.scheduled).toEqual([]);
    expect(logger.lines.some((l) => l.level === "warn" && /sweep aborted/.test(l.msg))).toBe(true);
  });

  it("aborts at a page that draws a 429 and confirms nothing", async () => {
    // One request a minute: page 1 passes, page 2 is refused by the emulator's own limit.
    const emulator = await startEmulator({ perHour: 1000, perMinute: 1 });
    seed(emulator, 150);
    const engine = recordingEngine();
    engine.members.set("paymenthub:mem_9999", { source: "paymenthub", id: "mem_9999", status: "active", identities: {}, metadata: {}, statusSince: 0, observedAt: 0 });
    const { sweeper } = sweeperFor(clientFor(emulator), engine);

    const report = await sweeper.sweep();

    expect(listCalls(emulator).map((c) => c.status)).toEqual([200, 429]);
    expect(report).toMatchObject({ complete: false, pages: 1, requests: 2, members: 100, missing: 0, confirmed: 0 });
    expect(report.error).toMatch(/429/);
    // Page 1's members were read and may be reconciled; nobody is asked to be confirmed gone.
    expect(engine.scheduled).toHaveLength(100);
    expect(engine.scheduled.some((s) => s.hint.confirmGone === true)).toBe(false);
  });

  it("members shifting pages mid-sweep are caught by a confirming lookup or the next sweep, never lost", async () => {
    const emulator = await startEmulator();
    seed(emulator, 200);
    const engine = recordingEngine();
    const real = clientFor(emulator);
    const { sweeper: first } = sweeperFor(real, engine);
    await first.sweep();
    engine.store();

    // Between pages 1 and 2 someone is deleted at PaymentHub, so mem_0100 moves onto page 1, already read.
    let deleted = false;
    const client: PaymentHubClient = {
      ...real,
      async listMembers(query, options) {
        const page = await real.listMembers(query, options);
        if (query.page === 1 && !deleted) {
          deleted = true;
          emulator.deleteMember("mem_0005", "deleted", { emit: false });
        }
        return page;
      },
    };
    const { sweeper } = sweeperFor(client, engine);
    const report = await sweeper.sweep();

    // mem_0005 was read on page 1 before it went; mem_0100 was on no page this time.
    expect(report).toMatchObject({ complete: true, members: 199, missing: 1 });
    expect(engine.scheduled).toEqual([{ key: "paymenthub:mem_0100", hint: { cause: "sweep", confirmGone: true } }]);

    // The next sweep sees the deletion.
    engine.scheduled.splice(0);
    expect(await sweeper.sweep()).toMatchObject({ complete: true, members: 199, missing: 1 });
    expect(engine.scheduled).toEqual([{ key: "paymenthub:mem_0005", hint: { cause: "sweep", confirmGone: true } }]);
  });

  it("joins a sweep already running instead of listing twice", async () => {
    const emulator = await startEmulator();
    seed(emulator, 50);
    const engine = recordingEngine();
    const { sweeper } = sweeperFor(clientFor(emulator), engine);
    const [a, b] = await Promise.all([sweeper.sweep(), sweeper.sweep()]);
    expect(a).toBe(b);
    expect(listCalls(emulator)).toHaveLength(1);
  });

  it("plans the auto cadence from the last complete sweep and warns about a cron that does not fit", async () => {
    const emulator = await startEmulator();
    seed(emulator, 250);
    const engine = recordingEngine();
    const { sweeper: auto } = sweeperFor(clientFor(emulator), engine, { rateLimit: { per_hour: 40, per_minute: 100 } });
    // Nothing known yet: one request a sweep.
    expect(auto.cadence()).toMatchObject({ cron: "*/15 * * * *" });
    await auto.sweep();
    // 3 requests a sweep, 32 an hour for polling: every 15 minutes needs 12.
    expect(auto.cadence()).toMatchObject({ cron: "*/15 * * * *", plan: { requestsPerSweep: 3, budgetPerHour: 32 } });

    const { sweeper: fixed, logger } = sweeperFor(clientFor(emulator), engine, { cron: "*/5 * * * *", rateLimit: { per_hour: 40, per_minute: 100 } });
    await fixed.sweep();
    expect(fixed.cadence()).toMatchObject({ cron: "*/5 * * * *", check: { requestsPerHour: 36, budgetPerHour: 32, fits: false } });
    expect(logger.lines.filter((l) => l.level === "warn" && /poll cron "\*\/5 \* \* \* \*" needs 36 requests\/hour for 250 members/.test(l.msg))).toHaveLength(1);
  });

  it("re-plans a running auto schedule after each sweep as the member count moves", async () => {
    const emulator = await startEmulator();
    seed(emulator, 250);
    const engine = recordingEngine();
    // 10 an hour, 8 of them for polling: 3 requests a sweep fit every 30 minutes, not every 15.
    const { sweeper, logger } = sweeperFor(clientFor(emulator), engine, { rateLimit: { per_hour: 10, per_minute: 100 } });
    sweeper.start();
    expect(sweeper.cadence().cron).toBe("*/15 * * * *");
    await sweeper.sweep();
    expect(sweeper.cadence()).toMatchObject({ cron: "*/30 * * * *", plan: { everyMinutes: 30, requestsPerSweep: 3 } });
    expect(logger.lines.map((l) => l.msg)).toContain("PaymentHub poll cadence changed with the member count");
  });

  it("start() runs sweeps on the cron and stop() ends them", async () => {
    const emulator = await startEmulator();
    seed(emulator, 10);
    const engine = recordingEngine();
    const reports: SweepReport[] = [];
    const { sweeper } = sweeperFor(clientFor(emulator), engine, { cron: "* * * * * *", onSweep: (r) => reports.push(r) });
    sweeper.start();
    for (let i = 0; i < 40 && reports.length === 0; i++) await sleep(100);
    await sweeper.stop();
    expect(reports.length).toBeGreaterThanOrEqual(1);
    expect(reports[0]).toMatchObject({ complete: true, members: 10 });
    const after = listCalls(emulator).length;
    await sleep(1_200);
    expect(listCalls(emulator)).toHaveLength(after);
    const stopped = await sweeper.sweep();
    expect(stopped).toMatchObject({ complete: false, requests: 0, error: "the sweeper was stopped" });
  });
});

describe("PaymentHub lookup for the reconcile engine", () => {
  it("maps a found member, observed at the fetch time", async () => {
    const emulator = await startEmulator();
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium", metadata: { discord_id: "123456789012345678" } }, { emit: false });
    const lookup = createPaymentHubLookup({ client: clientFor(emulator), clock, logger: recordingLogger() });
    expect(lookup.name).toBe("paymenthub");
    expect(await lookup.fetchMember("mem_1", "poll")).toEqual({
      kind: "found",
      member: expect.objectContaining({ source: "paymenthub", id: "mem_1", planId: "plan_premium", status: "active", identities: { discord: "123456789012345678" }, observedAt: now }),
    });
  });

  it("says not-found only for PaymentHub's own 404, never for a wrong base URL", async () => {
    const emulator = await startEmulator();
    const lookup = createPaymentHubLookup({ client: clientFor(emulator), clock, logger: recordingLogger() });
    expect(await lookup.fetchMember("mem_gone", "webhook")).toEqual({ kind: "not-found" });
    // A proxy or a wrong host: a 404 without PaymentHub's envelope.
    const proxy = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/html" });
      res.end("<h1>Not Found</h1>");
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const wrongBase = createPaymentHubClient({ baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1`, apiKey: API_KEY, timeoutMs: 2_000, clock, retry: { limit: 0 } });
    const misconfigured = createPaymentHubLookup({ client: wrongBase, clock, logger: recordingLogger() });
    expect(await misconfigured.fetchMember("mem_gone", "webhook")).toEqual({ kind: "failed", reason: expect.stringMatching(/check the base URL/) });
  });

  it("fails with the wait a 429 asks for, and fails plainly on a server error", async () => {
    const emulator = await startEmulator();
    emulator.addMember({ id: "mem_1", email: "a@example.com" }, { emit: false });
    const lookup = createPaymentHubLookup({ client: clientFor(emulator), clock, logger: recordingLogger() });
    emulator.faults.rateLimit429Next(1, "42");
    expect(await lookup.fetchMember("mem_1", "webhook")).toEqual({ kind: "failed", reason: expect.stringMatching(/429/), retryAfterMs: 42_000 });
    emulator.faults.failNext(3, 502);
    const failed = await lookup.fetchMember("mem_1", "webhook");
    expect(failed).toEqual({ kind: "failed", reason: expect.stringMatching(/502/) });
  });
});
