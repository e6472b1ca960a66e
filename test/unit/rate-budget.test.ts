import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PerkbridgeError } from "../../src/core/errors.js";
import {
  budgetSnapshot,
  createRateBudget,
  observeServer,
  RATE_PRIORITIES,
  restoreRateBudget,
  tryTake,
  type RateBudgetConfig,
  type RateBudgetState,
  type RatePriority,
  type RateWindow,
} from "../../src/core/rate-budget.js";
import { seededRandom } from "../support/seeded-random.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** Most requests in any half-open interval of `windowMs`; the worst interval starts at a request. */
function maxInWindow(times: readonly number[], windowMs: number): number {
  let most = 0;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    if (j < i) j = i;
    while (j < times.length && (times[j] as number) < (times[i] as number) + windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

/** Arrival times of a Poisson process with mean gap `meanMs`, up to `endMs`. */
function arrivals(random: () => number, meanMs: number, endMs: number): number[] {
  const out: number[] = [];
  for (let t = 0; ; ) {
    t += Math.max(1, Math.round(-Math.log(1 - random()) * meanMs));
    if (t > endMs) return out;
    out.push(t);
  }
}

interface Take {
  readonly t: number;
  readonly priority: RatePriority;
  /** Higher priorities that had a request waiting at that instant. */
  readonly higherWaiting: readonly RatePriority[];
  /** The take's own state before it, for reserve checks. */
  readonly before: RateBudgetState;
}

/**
 * Runs callers against the budget with an injected clock, each setting one
 * timer from `waitMs` as a daemon would. A caller is `"greedy"` (always has a
 * request) or a list of arrival times. Ties go to the higher priority.
 */
function simulate(
  start: RateBudgetState,
  demand: Readonly<Record<RatePriority, "greedy" | readonly number[]>>,
  endMs: number,
): { takes: Take[]; state: RateBudgetState; pending: Record<RatePriority, number> } {
  let state = start;
  const takes: Take[] = [];
  const next = { webhook: 0, write: 0, poll: 0 };
  const queued = { webhook: 0, write: 0, poll: 0 };
  const due = { webhook: 0, write: 0, poll: 0 };
  const arrivalsOf = (p: RatePriority): readonly number[] => {
    const d = demand[p];
    return d === "greedy" ? [] : d;
  };
  const waiting = (p: RatePriority): boolean => demand[p] === "greedy" || queued[p] > 0;
  for (let t = 0; t <= endMs; ) {
    for (const p of RATE_PRIORITIES) {
      const list = arrivalsOf(p);
      while (next[p] < list.length && (list[next[p]] as number) <= t) {
        if (queued[p] === 0) due[p] = Math.max(due[p], list[next[p]] as number);
        queued[p]++;
        next[p]++;
      }
    }
    let took = false;
    for (const p of RATE_PRIORITIES) {
      if (!waiting(p) || due[p] > t) continue;
      const before = state;
      const result = tryTake(state, p, t);
      state = result.state;
      if (result.ok) {
        const higherWaiting = RATE_PRIORITIES.slice(0, RATE_PRIORITIES.indexOf(p)).filter(waiting);
        takes.push({ t, priority: p, higherWaiting, before });
        if (demand[p] !== "greedy") queued[p]--;
        took = true;
        break; // the highest priority asks again first
      }
      due[p] = t + result.waitMs;
    }
    if (took) continue;
    const times = RATE_PRIORITIES.flatMap((p) => {
      const list = arrivalsOf(p);
      return [...(waiting(p) ? [due[p]] : []), ...(next[p] < list.length ? [list[next[p]] as number] : [])];
    });
    const nextT = Math.min(...times);
    expect(nextT).toBeGreaterThan(t);
    t = nextT;
  }
  return { takes, state, pending: queued };
}

function checkWindows(takes: readonly Take[]): void {
  const times = takes.map((x) => x.t);
  expect(maxInWindow(times, MINUTE)).toBeLessThanOrEqual(100);
  expect(maxInWindow(times, HOUR)).toBeLessThanOrEqual(1000);
}

/** Requests in the window before `t` (as the budget counts them, with its 1 s margin). */
function usedBefore(takes: readonly Take[], t: number, windowMs: number): number {
  return takes.filter((x) => x.t < t && x.t > t - windowMs - 1000).length;
}

describe("createRateBudget", () => {
  it("defaults to PaymentHub's windows, as plain JSON data", () => {
    const state = createRateBudget();
    expect(state).toEqual({
      config: {
        windows: [
          { limit: 100, windowMs: MINUTE },
          { limit: 1000, windowMs: HOUR },
        ],
        reserves: { write: 0.05, poll: 0.2 },
        marginMs: 1000,
        slowBelow: 0.25,
        default429Ms: 60_000,
      },
      log: [],
      blockedUntil: 0,
      server: null,
    });
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
  });

  it.each<[string, RateBudgetConfig, RegExp]>([
    ["no windows", { windows: [] }, /at least one window/],
    ["a zero limit", { windows: [{ limit: 0, windowMs: 1000 }] }, /limit 0 is not a whole number/],
    ["a fractional limit", { windows: [{ limit: 1.5, windowMs: 1000 }] }, /limit 1.5/],
    ["a zero window", { windows: [{ limit: 5, windowMs: 0 }] }, /window length 0 ms is not positive/],
    ["a reserve of 1", { reserves: { poll: 1 } }, /reserve of poll/],
    ["a negative reserve", { reserves: { write: -0.1 } }, /reserve of write/],
    ["a NaN reserve", { reserves: { write: Number.NaN } }, /reserve of write/],
    ["a reserve that leaves nothing", { windows: [{ limit: 2, windowMs: 1000 }], reserves: { poll: 0.9 } }, /poll reserve leaves no request of the 2-per-1000-ms window/],
    ["a negative margin", { marginMs: -1 }, /marginMs/],
    ["an infinite 429 pause", { default429Ms: Number.POSITIVE_INFINITY }, /default429Ms/],
    ["slowBelow above 1", { slowBelow: 2 }, /slowBelow/],
  ])("rejects %s with ERR_RATE_BUDGET_CONFIG", (_name, config, message) => {
    expect(() => createRateBudget(config)).toThrow(PerkbridgeError);
    expect(() => createRateBudget(config)).toThrow(message);
    expect(() => createRateBudget(config)).toThrow(expect.objectContaining({ code: "ERR_RATE_BUDGET_CONFIG" }) as Error);
  });
});

describe("tryTake", () => {
  it.each<[RatePriority, number]>([
    ["webhook", 100],
    ["write", 95],
    ["poll", 80],
  ])("lets %s burst to %i of the minute window, then waits exactly until the oldest leaves it", (priority, cap) => {
    let state = createRateBudget();
    for (let i = 0; i < cap; i++) {
      const r = tryTake(state, priority, 1000 + i);
      expect(r.ok).toBe(true);
      state = r.state;
    }
    const denied = tryTake(state, priority, 5000);
    // The first request (t=1000) leaves the 60 s window, plus the 1 s margin, at 62000.
    expect(denied).toMatchObject({ ok: false, waitMs: 62_000 - 5000 });
    expect(tryTake(state, priority, 61_999).ok).toBe(false);
    expect(tryTake(state, priority, 62_000).ok).toBe(true);
  });

  it("keeps the reserve of the hour window too", () => {
    let state = createRateBudget({ windows: [{ limit: 1000, windowMs: HOUR }] });
    for (let i = 0; i < 800; i++) state = (tryTake(state, "poll", i) as { state: RateBudgetState }).state;
    expect(tryTake(state, "poll", 800)).toMatchObject({ ok: false, waitMs: HOUR + 1000 - 800 });
    expect(tryTake(state, "write", 800).ok).toBe(true);
    expect(tryTake(state, "webhook", 800).ok).toBe(true);
  });

  it("records a later time, never an unsorted log, when the clock steps back", () => {
    const a = tryTake(createRateBudget(), "webhook", 10_000).state;
    const b = tryTake(a, "webhook", 4_000).state;
    expect(b.log).toEqual([10_000, 10_000]);
  });

  it("keeps its log bounded to the longest window", () => {
    let state = createRateBudget();
    let t = 0;
    let last = 0;
    for (let i = 0; i < 5000; i++) {
      const r = tryTake(state, "webhook", t);
      state = r.state;
      last = t;
      t += r.ok ? 1 : r.waitMs;
    }
    expect(last).toBeGreaterThan(2 * HOUR);
    expect(state.log.length).toBeLessThanOrEqual(1000);
    expect(state.log.every((x) => x > last - HOUR - 1000)).toBe(true);
  });
});

describe("a simulated 6-hour run", () => {
  const SIX_HOURS = 6 * HOUR;

  it("greedy callers of every priority: never over 100/min or 1000/h, webhooks take it all", () => {
    const { takes, state } = simulate(createRateBudget(), { webhook: "greedy", write: "greedy", poll: "greedy" }, SIX_HOURS);
    checkWindows(takes);
    expect(takes.every((x) => x.priority === "webhook")).toBe(true);
    // No idling either: with a 1 s margin per window, six hours hold six full hours of budget.
    expect(takes.length).toBe(6000);
    expect(state.log.length).toBeLessThanOrEqual(1000);
  });

  it("greedy polling with bursts of webhooks and writes: priorities and reserves hold", () => {
    const random = seededRandom(7);
    // ~6/min of webhook lookups with a burst of 150 at 2 h; ~4/min of writes; polling takes the rest.
    const webhooks = [...arrivals(random, 10_000, SIX_HOURS), ...Array.from({ length: 150 }, () => 2 * HOUR)].sort((a, b) => a - b);
    const writes = arrivals(random, 15_000, SIX_HOURS);
    const { takes, pending } = simulate(createRateBudget(), { webhook: webhooks, write: writes, poll: "greedy" }, SIX_HOURS);
    checkWindows(takes);
    const count = (p: RatePriority): number => takes.filter((x) => x.priority === p).length;
    expect(count("poll")).toBeGreaterThan(0);
    // Webhooks and writes, each far under the budget on their own, all get through.
    expect(pending.webhook).toBe(0);
    expect(count("webhook")).toBe(webhooks.length);
    expect(count("write")).toBeGreaterThan(writes.length - 10);
    for (const take of takes) {
      // Never a poll while a webhook lookup or a write waits; never a write while a webhook lookup waits.
      expect(take.higherWaiting).toEqual([]);
      if (take.priority === "webhook") continue;
      const [minuteCap, hourCap] = take.priority === "write" ? [95, 950] : [80, 800];
      expect(usedBefore(takes, take.t, MINUTE)).toBeLessThan(minuteCap);
      expect(usedBefore(takes, take.t, HOUR)).toBeLessThan(hourCap);
    }
  });

  it("a server stricter than the config (50 per fixed minute): remaining is trusted, no 429, and requests slow down", () => {
    let state = createRateBudget();
    const SERVER_LIMIT = 50;
    const served: number[] = [];
    let t = 7_777; // not aligned to the server's minutes
    while (t < HOUR) {
      const r = tryTake(state, "webhook", t);
      state = r.state;
      if (!r.ok) {
        t += r.waitMs;
        continue;
      }
      const windowStart = Math.floor(t / MINUTE) * MINUTE;
      const used = served.filter((x) => x >= windowStart).length;
      expect(used).toBeLessThan(SERVER_LIMIT); // the server would answer 429 otherwise
      served.push(t);
      state = observeServer(state, { status: 200, remaining: SERVER_LIMIT - used - 1 }, t);
    }
    // Within a server minute, once remaining is under a quarter of the tightest window, gaps only grow.
    const byMinute = new Map<number, number[]>();
    for (const x of served) byMinute.set(Math.floor(x / MINUTE), [...(byMinute.get(Math.floor(x / MINUTE)) ?? []), x]);
    let paced = 0;
    for (const times of byMinute.values()) {
      const gaps = times.slice(1).map((x, i) => x - (times[i] as number));
      const late = gaps.slice(SERVER_LIMIT - 25);
      for (let i = 1; i < late.length; i++) expect(late[i]).toBeGreaterThanOrEqual(late[i - 1] as number);
      paced += late.length;
    }
    expect(paced).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(100);
  });
});

describe("observeServer", () => {
  /** A budget with one request taken at t=0. */
  const oneTaken = (): RateBudgetState => tryTake(createRateBudget(), "webhook", 0).state;

  it.each<[number, RatePriority, number | "ok"]>([
    [99, "webhook", "ok"], // higher than our own count: ours stands
    [50, "poll", "ok"],
    [25, "webhook", "ok"], // at the threshold: no pacing yet
    [24, "webhook", 2_500], // 60 s spread over 24 requests
    [10, "webhook", 6_000],
    [2, "webhook", 30_000],
    [1, "webhook", 60_000],
    [21, "poll", 2_858], // above the poll reserve of 20, paced
    [20, "poll", 61_000], // the poll reserve: wait until the minute could have reset
    [5, "write", 61_000], // the write reserve
    [6, "write", 10_000],
    [0, "webhook", 61_000], // stop until the shortest window could have reset
  ])("remaining %i: %s waits %s ms", (remaining, priority, expected) => {
    const state = observeServer(oneTaken(), { status: 200, remaining }, 0);
    const r = tryTake(state, priority, 0);
    if (expected === "ok") expect(r.ok).toBe(true);
    else expect(r).toMatchObject({ ok: false, waitMs: expected });
  });

  it("falling remaining means slower requests", () => {
    let previous = 0;
    for (const remaining of [30, 24, 20, 15, 10, 5, 2, 1, 0]) {
      const r = tryTake(observeServer(oneTaken(), { status: 200, remaining }, 0), "webhook", 0);
      const wait = r.ok ? 0 : r.waitMs;
      expect(wait).toBeGreaterThanOrEqual(previous);
      previous = wait;
    }
    expect(previous).toBe(61_000);
  });

  it("remaining 0 stops every priority until the minute could have reset, then the view is dropped", () => {
    const state = observeServer(oneTaken(), { status: 200, remaining: 0 }, 1_000);
    for (const p of RATE_PRIORITIES) {
      expect(tryTake(state, p, 61_999)).toMatchObject({ ok: false, waitMs: 1 });
    }
    const after = tryTake(state, "webhook", 62_000);
    expect(after.ok).toBe(true);
    expect(after.state.server).toBeNull();
  });

  it("counts its own requests against what the server reported", () => {
    let state = observeServer(createRateBudget(), { status: 200, remaining: 3 }, 0);
    state = tryTake(state, "webhook", 0).state;
    expect(budgetSnapshot(state, 0).serverRemaining).toBe(2);
  });

  it.each<[string, { status: number; retryAfterMs?: number; remaining?: number }, number]>([
    ["429 with Retry-After", { status: 429, retryAfterMs: 120_000 }, 120_000],
    ["429 without Retry-After: 60 s", { status: 429 }, 60_000],
    ["429 with a garbage Retry-After: 60 s", { status: 429, retryAfterMs: Number.NaN }, 60_000],
    ["503 with Retry-After", { status: 503, retryAfterMs: 5_000 }, 5_000],
    ["429 with Retry-After 0 and remaining 0", { status: 429, retryAfterMs: 0, remaining: 0 }, 61_000],
  ])("%s: nothing before it ends", (_name, observation, pause) => {
    const state = observeServer(createRateBudget(), observation, 10_000);
    for (const p of RATE_PRIORITIES) {
      if (pause > 0) expect(tryTake(state, p, 10_000 + pause - 1)).toMatchObject({ ok: false, waitMs: 1 });
      expect(tryTake(state, p, 10_000 + pause).ok).toBe(true);
    }
  });

  it("a shorter later 429 does not cut a longer pause short; 200s and bad remaining values change nothing", () => {
    let state = observeServer(createRateBudget(), { status: 429, retryAfterMs: 300_000 }, 0);
    state = observeServer(state, { status: 429, retryAfterMs: 1_000 }, 1_000);
    state = observeServer(state, { status: 200 }, 2_000);
    state = observeServer(state, { status: 200, remaining: Number.NaN }, 2_000);
    expect(state.blockedUntil).toBe(300_000);
    expect(state.server).toBeNull();
    expect(tryTake(state, "webhook", 299_999).ok).toBe(false);
    expect(observeServer(createRateBudget(), { status: 200, remaining: -4 }, 0).server).toEqual({ remaining: 0, at: 0, until: 61_000 });
  });
});

describe("budgetSnapshot", () => {
  it("shows remaining per window, the pause, what the server said and each priority's wait", () => {
    let state = createRateBudget();
    for (let i = 0; i < 90; i++) state = tryTake(state, "webhook", i * 100).state;
    state = observeServer(state, { status: 429, retryAfterMs: 30_000, remaining: 40 }, 9_000);
    expect(budgetSnapshot(state, 10_000)).toEqual({
      windows: [
        { limit: 100, windowMs: MINUTE, used: 90, remaining: 10 },
        { limit: 1000, windowMs: HOUR, used: 90, remaining: 910 },
      ],
      serverRemaining: 40,
      blockedUntil: 39_000,
      // poll: 11 requests must leave the minute; the 11th (t=1000) leaves at 1000 + 61000.
      waitMs: { webhook: 29_000, write: 29_000, poll: 52_000 },
    });
    const later = budgetSnapshot(state, 2 * HOUR);
    expect(later).toEqual({
      windows: [
        { limit: 100, windowMs: MINUTE, used: 0, remaining: 100 },
        { limit: 1000, windowMs: HOUR, used: 0, remaining: 1000 },
      ],
      waitMs: { webhook: 0, write: 0, poll: 0 },
    });
  });
});

describe("persistence", () => {
  type Op =
    | { readonly kind: "take"; readonly priority: RatePriority; readonly dt: number }
    | { readonly kind: "observe"; readonly status: number; readonly remaining?: number; readonly retryAfterMs?: number; readonly dt: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant("take" as const), priority: fc.constantFrom(...RATE_PRIORITIES), dt: fc.integer({ min: 0, max: 3_000 }) }) },
    {
      weight: 1,
      arbitrary: fc.record(
        {
          kind: fc.constant("observe" as const),
          status: fc.constantFrom(200, 429, 503),
          remaining: fc.integer({ min: 0, max: 120 }),
          retryAfterMs: fc.integer({ min: 0, max: 200_000 }),
          dt: fc.integer({ min: 0, max: 3_000 }),
        },
        { requiredKeys: ["kind", "status", "dt"] },
      ),
    },
  );
  const config = fc.record({
    windows: fc.constantFrom<readonly RateWindow[]>(
      [{ limit: 10, windowMs: 20_000 }],
      [
        { limit: 5, windowMs: 5_000 },
        { limit: 12, windowMs: 40_000 },
      ],
    ),
    marginMs: fc.constantFrom(0, 1000),
  });

  function apply(state: RateBudgetState, o: Op, now: number): { state: RateBudgetState; out: unknown } {
    if (o.kind === "observe") {
      const { kind: _kind, dt: _dt, ...observation } = o;
      return { state: observeServer(state, observation, now), out: null };
    }
    const r = tryTake(state, o.priority, now);
    return { state: r.state, out: r.ok ? "ok" : r.waitMs };
  }

  it("a JSON round trip at any point keeps behaviour", () => {
    fc.assert(
      fc.property(config, fc.array(op, { maxLength: 120 }), (cfg, ops) => {
        let live = createRateBudget(cfg);
        let now = 0;
        for (const o of ops) {
          now += o.dt;
          const thawed = JSON.parse(JSON.stringify(live)) as RateBudgetState;
          expect(thawed).toEqual(live);
          const a = apply(live, o, now);
          const b = apply(thawed, o, now);
          expect(b).toEqual(a);
          expect(budgetSnapshot(thawed, now)).toEqual(budgetSnapshot(live, now));
          live = a.state;
        }
      }),
      { numRuns: 150 },
    );
  });

  it("waitMs is exact: one ms earlier is too early, then it goes; and no window is ever exceeded", () => {
    fc.assert(
      fc.property(config, fc.array(op, { maxLength: 150 }), (cfg, ops) => {
        let state = createRateBudget(cfg);
        let now = 0;
        const taken: number[] = [];
        for (const o of ops) {
          now += o.dt;
          if (o.kind === "observe") {
            state = apply(state, o, now).state;
            continue;
          }
          const r = tryTake(state, o.priority, now);
          state = r.state;
          if (r.ok) {
            taken.push(now);
            continue;
          }
          expect(r.waitMs).toBeGreaterThan(0);
          expect(tryTake(state, o.priority, now + r.waitMs - 1).ok).toBe(false);
          const go = tryTake(state, o.priority, now + r.waitMs);
          expect(go.ok).toBe(true);
          now += r.waitMs;
          state = go.state;
          taken.push(now);
        }
        for (const w of cfg.windows) expect(maxInWindow(taken, w.windowMs + cfg.marginMs)).toBeLessThanOrEqual(w.limit);
      }),
      { numRuns: 200 },
    );
  });

  it("restoreRateBudget keeps the log, the pause and the server view under a new config", () => {
    let saved = createRateBudget();
    for (let i = 0; i < 100; i++) saved = tryTake(saved, "webhook", i).state;
    saved = observeServer(saved, { status: 429, retryAfterMs: HOUR, remaining: 0 }, 100);
    const restored = restoreRateBudget(JSON.parse(JSON.stringify(saved)) as RateBudgetState, { reserves: { poll: 0.5 } });
    expect(restored.config.reserves.poll).toBe(0.5);
    expect(restored.log).toEqual(saved.log);
    expect(restored.server).toEqual(saved.server);
    expect(tryTake(restored, "webhook", HOUR + 99)).toMatchObject({ ok: false, waitMs: 1 });
    expect(tryTake(restored, "webhook", HOUR + 100).ok).toBe(true);
  });

  it("restoreRateBudget sorts a hand-edited log and drops what is not a time", () => {
    const restored = restoreRateBudget({ log: [30, Number.NaN, 10, 20], blockedUntil: Number.NaN, server: null });
    expect(restored.log).toEqual([10, 20, 30]);
    expect(restored.blockedUntil).toBe(0);
    expect(createRateBudget().config).toEqual(restoreRateBudget({ log: [], blockedUntil: 0, server: null }).config);
  });
});
