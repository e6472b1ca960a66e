import { parseRetryAfter } from "../../core/backoff.js";
import { PerkbridgeError } from "../../core/errors.js";
import type { Clock } from "../../core/ports.js";
import {
  budgetSnapshot,
  createRateBudget,
  observeServer,
  RATE_PRIORITIES,
  restoreRateBudget,
  tryTake,
  type BudgetSnapshot,
  type RateBudgetConfig,
  type RateBudgetState,
  type RatePriority,
} from "../../core/rate-budget.js";
import type { RateObservation, RequestGate } from "../../sources/paymenthub/create-paymenthub-client.js";
import type { Collection } from "../store/create-store.js";

/** The `sources.paymenthub.rate_limit` section of the config. */
export interface RateLimitSection {
  readonly per_hour: number;
  readonly per_minute: number;
}

/** The subset of a pino logger the gate uses. */
export interface BudgetGateLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A timer the gate can set and cancel; injected so tests can run time faster. */
export interface GateTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface BudgetGateOptions {
  readonly rateLimit: RateLimitSection;
  readonly clock: Clock;
  /** Where a long pause (and, on stop, the request log) is kept across restarts. */
  readonly kv: Collection<unknown>;
  readonly store: { commit(): Promise<void> };
  readonly logger: BudgetGateLogger;
  /** Key in `kv`; default `rate-budget:paymenthub`. */
  readonly key?: string;
  /** Reserves, margin and pacing; the windows come from `rateLimit`. */
  readonly budget?: Omit<RateBudgetConfig, "windows">;
  /** A pause at least this long is written to disk at once; default 5 s. */
  readonly persistPauseMs?: number;
  /** Default: the real `setTimeout`. */
  readonly timers?: GateTimers;
}

/** {@link BudgetGate.snapshot}: the core's view plus who is waiting. */
export interface GateSnapshot extends BudgetSnapshot {
  readonly waiting: Readonly<Record<RatePriority, number>>;
}

/** The daemon's PaymentHub {@link RequestGate}. */
export interface BudgetGate extends RequestGate {
  snapshot(): GateSnapshot;
  /** Rejects every waiting request with `ERR_GATE_STOPPED` and saves the budget. */
  stop(): Promise<void>;
}

/** What is kept in `kv`: the core state without its config, which comes from the config file. */
type Saved = Pick<RateBudgetState, "log" | "blockedUntil" | "server">;

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

const realTimers: GateTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

function isSaved(value: unknown): value is Saved {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const server = v["server"];
  const serverOk =
    server === null ||
    (typeof server === "object" &&
      server !== null &&
      ["remaining", "at", "until"].every((k) => typeof (server as Record<string, unknown>)[k] === "number"));
  return Array.isArray(v["log"]) && v["log"].every((t) => typeof t === "number") && typeof v["blockedUntil"] === "number" && serverOk;
}

/**
 * The client-side rate budget of PaymentHub (DESIGN.md invariant 8) as a
 * {@link RequestGate}: requests wait for a token from the core budget, one
 * queue per priority, first come first served within a priority and strictly
 * by priority across them (a waiting webhook lookup goes before any waiting
 * write or poll). Each waiting queue has at most one timer, set to exactly the
 * time the core says its next token frees up.
 *
 * A long pause (429 `Retry-After`, or `X-RateLimit-Remaining: 0`) is written
 * to disk at once and restored on creation, so a restart does not forget it.
 */
export function createBudgetGate(options: BudgetGateOptions): BudgetGate {
  const { clock, kv, store, logger } = options;
  const key = options.key ?? "rate-budget:paymenthub";
  const persistPauseMs = options.persistPauseMs ?? 5_000;
  const timers = options.timers ?? realTimers;
  const config: RateBudgetConfig = {
    ...options.budget,
    windows: [
      { limit: options.rateLimit.per_minute, windowMs: MINUTE },
      { limit: options.rateLimit.per_hour, windowMs: HOUR },
    ],
  };

  let state: RateBudgetState;
  const saved = kv.get(key);
  if (saved === undefined) {
    state = createRateBudget(config);
  } else if (isSaved(saved)) {
    state = restoreRateBudget(saved, config);
    const snap = budgetSnapshot(state, clock.now());
    if (snap.waitMs.webhook > 0) {
      logger.info({ until: new Date(clock.now() + snap.waitMs.webhook).toISOString() }, "PaymentHub rate-limit pause restored from the state directory");
    }
  } else {
    logger.warn({ key }, "saved PaymentHub rate budget is unreadable; starting a fresh one");
    state = createRateBudget(config);
  }

  const queues = new Map<RatePriority, Waiter[]>(RATE_PRIORITIES.map((p) => [p, []]));
  const armed = new Map<RatePriority, { at: number; handle: unknown }>();
  /** End of the last pause written to disk, so one pause is written once. */
  let persistedUntil = 0;
  let stopped = false;

  function queue(priority: RatePriority): Waiter[] {
    return queues.get(priority) as Waiter[];
  }

  function disarm(priority: RatePriority): void {
    const timer = armed.get(priority);
    if (timer === undefined) return;
    timers.clear(timer.handle);
    armed.delete(priority);
  }

  function arm(priority: RatePriority, at: number, waitMs: number): void {
    if (armed.get(priority)?.at === at) return;
    disarm(priority);
    const handle = timers.set(() => {
      armed.delete(priority);
      pump();
    }, waitMs);
    armed.set(priority, { at, handle });
  }

  /**
   * Serves waiters from the highest priority down. A priority that must wait
   * holds back every lower one: the core never lets a lower priority go
   * earlier than a higher one, so they need no timer of their own until then.
   */
  function pump(): void {
    if (stopped) return;
    const now = clock.now();
    let held = false;
    for (const priority of RATE_PRIORITIES) {
      const waiting = queue(priority);
      if (held || waiting.length === 0) {
        disarm(priority);
        continue;
      }
      while (waiting.length > 0) {
        const result = tryTake(state, priority, now);
        state = result.state;
        if (!result.ok) {
          arm(priority, now + result.waitMs, result.waitMs);
          held = true;
          break;
        }
        (waiting.shift() as Waiter).resolve();
      }
      if (waiting.length === 0) disarm(priority);
    }
  }

  function save(): void {
    const value: Saved = { log: state.log, blockedUntil: state.blockedUntil, server: state.server };
    kv.set(key, value);
  }

  function persistPause(until: number, status: number): void {
    persistedUntil = until;
    save();
    logger.warn(
      { status, until: new Date(until).toISOString(), waitMs: until - clock.now() },
      "PaymentHub requests paused by its rate limit; the pause is saved so a restart keeps it",
    );
    store.commit().catch((error: unknown) => {
      logger.warn({ err: error }, "could not save the PaymentHub rate-limit pause; a restart may forget it");
    });
  }

  return {
    acquire(priority) {
      if (stopped) return Promise.reject(stoppedError());
      return new Promise<void>((resolve, reject) => {
        queue(priority).push({ resolve, reject });
        pump();
      });
    },

    observe(info: RateObservation) {
      const now = clock.now();
      const retryAfterMs = parseRetryAfter(info.retryAfter, now);
      if (info.status === 429) {
        // Our own budget should have prevented this: another client may share the API key.
        logger.warn({ retryAfter: info.retryAfter, retryAfterMs }, "PaymentHub answered 429 Too Many Requests; pausing as it asks");
      }
      // A 429 says "Remaining: 0" and when to come back; the Retry-After is the more exact of the two,
      // so with one, the zero is not also held against us for a whole window.
      const remaining = info.status === 429 && retryAfterMs !== undefined ? undefined : info.remaining;
      state = observeServer(
        state,
        {
          status: info.status,
          ...(remaining !== undefined ? { remaining } : {}),
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        },
        now,
      );
      // Only a stop is a pause worth a disk write; pacing as Remaining falls is not (it changes with every response).
      const server = state.server;
      const until = Math.max(state.blockedUntil, server !== null && server.remaining <= 0 ? server.until : 0);
      if (until - now >= persistPauseMs && until > persistedUntil && !stopped) persistPause(until, info.status);
      pump();
    },

    snapshot() {
      const waiting = {} as Record<RatePriority, number>;
      for (const p of RATE_PRIORITIES) waiting[p] = queue(p).length;
      return { ...budgetSnapshot(state, clock.now()), waiting };
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      for (const p of RATE_PRIORITIES) {
        disarm(p);
        for (const waiter of queue(p).splice(0)) waiter.reject(stoppedError());
      }
      // The request log too: a restart right after must not grant a fresh burst.
      save();
      await store.commit();
    },
  };
}

function stoppedError(): PerkbridgeError {
  return new PerkbridgeError("ERR_GATE_STOPPED", "The PaymentHub request budget was stopped (perkbridge is shutting down); the request was not sent.");
}
