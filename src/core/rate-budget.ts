import { PerkbridgeError } from "./errors.js";

/**
 * Client-side request budget for one API key (DESIGN.md invariant 8), as
 * plain data and pure functions: the caller passes `now` and sets its own
 * timer from `waitMs`.
 *
 * It keeps a sliding log of request times rather than fixed-window counters.
 * PaymentHub ("1000 requests per hour per API key, Burst: 100 requests per
 * minute") does not say whether its windows slide or are fixed. A log that
 * never holds more than `limit` requests in any interval of `windowMs` is safe
 * under both readings: every fixed window is one such interval. Counters
 * aligned to our clock are not: 100 requests at 0:59 and 100 at 1:01 pass two
 * fixed windows of ours yet are 200 in a minute of a sliding server.
 */

/** Who asks, highest priority first: lookups caused by webhooks, metadata writes, polling sweeps. */
export type RatePriority = "webhook" | "write" | "poll";

export const RATE_PRIORITIES: readonly RatePriority[] = ["webhook", "write", "poll"];

/** At most `limit` requests in any `windowMs`. */
export interface RateWindow {
  readonly limit: number;
  readonly windowMs: number;
}

/** PaymentHub: 1000 requests per hour per API key, bursts of 100 per minute. */
export const PAYMENTHUB_RATE_WINDOWS: readonly RateWindow[] = [
  { limit: 100, windowMs: 60_000 },
  { limit: 1000, windowMs: 3_600_000 },
];

/** How a budget is shared; every field has a default. */
export interface RateBudgetConfig {
  /** Default {@link PAYMENTHUB_RATE_WINDOWS}. */
  readonly windows?: readonly RateWindow[];
  /**
   * Share (0..1) of every window a priority leaves free for those above it:
   * polling leaves 20 % for webhook lookups and writes, writes leave 5 % for
   * webhook lookups. Webhook lookups may use the whole window.
   */
  readonly reserves?: { readonly write?: number; readonly poll?: number };
  /**
   * Added to every window, default 1000 ms: requests sent a window apart may
   * reach the server closer together than that when the network delays the
   * first one more.
   */
  readonly marginMs?: number;
  /**
   * When the server reports fewer than this share of the tightest window as
   * remaining (default 0.25), requests are spaced out over that window
   * instead of sent in a burst.
   */
  readonly slowBelow?: number;
  /** Pause after a 429 without `Retry-After`; default 60 s. */
  readonly default429Ms?: number;
}

/** The config with every default filled in, as it lives in the state. */
export interface ResolvedRateBudgetConfig {
  readonly windows: readonly RateWindow[];
  readonly reserves: { readonly write: number; readonly poll: number };
  readonly marginMs: number;
  readonly slowBelow: number;
  readonly default429Ms: number;
}

/** What the server last said about its own count (`X-RateLimit-Remaining`). */
export interface ServerView {
  /** Remaining as reported, less the requests taken since. */
  readonly remaining: number;
  readonly at: number;
  /** When the shortest window could have reset since the report; the view is dropped then. */
  readonly until: number;
}

/**
 * A rate budget. Plain JSON data, so the daemon can persist it (a long 429
 * wait must survive a restart). Treat as immutable: every function returns
 * a new state.
 */
export interface RateBudgetState {
  readonly config: ResolvedRateBudgetConfig;
  /** Times requests were taken, ascending; only those within the longest window. */
  readonly log: readonly number[];
  /** No request before this instant (a 429 or `Retry-After`); 0 when none. */
  readonly blockedUntil: number;
  readonly server: ServerView | null;
}

/** Answer of {@link tryTake}: go, or wait exactly `waitMs` for this priority's next token. */
export type TakeResult =
  | { readonly ok: true; readonly state: RateBudgetState }
  | { readonly ok: false; readonly waitMs: number; readonly state: RateBudgetState };

/** What a response said about the server's limit. */
export interface ServerObservation {
  readonly status: number;
  /** `X-RateLimit-Remaining`, parsed. */
  readonly remaining?: number;
  /** `Retry-After`, in ms (see `parseRetryAfter`). */
  readonly retryAfterMs?: number;
}

/** For `perkbridge status` and metrics. */
export interface BudgetSnapshot {
  readonly windows: readonly {
    readonly limit: number;
    readonly windowMs: number;
    readonly used: number;
    readonly remaining: number;
  }[];
  /** What the server last reported, less requests since; absent when unknown or stale. */
  readonly serverRemaining?: number;
  /** Present while a 429 or `Retry-After` pause lasts. */
  readonly blockedUntil?: number;
  /** How long each priority would wait for its next token now. */
  readonly waitMs: Readonly<Record<RatePriority, number>>;
}

function configError(message: string): PerkbridgeError {
  return new PerkbridgeError("ERR_RATE_BUDGET_CONFIG", `rate budget: ${message}`);
}

function reserveTokens(config: ResolvedRateBudgetConfig, limit: number, priority: RatePriority): number {
  return priority === "webhook" ? 0 : Math.round(limit * config.reserves[priority]);
}

function resolveConfig(config: RateBudgetConfig): ResolvedRateBudgetConfig {
  const resolved: ResolvedRateBudgetConfig = {
    windows: (config.windows ?? PAYMENTHUB_RATE_WINDOWS).map((w) => ({ limit: w.limit, windowMs: w.windowMs })),
    reserves: { write: config.reserves?.write ?? 0.05, poll: config.reserves?.poll ?? 0.2 },
    marginMs: config.marginMs ?? 1_000,
    slowBelow: config.slowBelow ?? 0.25,
    default429Ms: config.default429Ms ?? 60_000,
  };
  if (resolved.windows.length === 0) throw configError("at least one window is needed");
  for (const w of resolved.windows) {
    if (!Number.isInteger(w.limit) || w.limit < 1) throw configError(`window limit ${w.limit} is not a whole number of at least 1`);
    if (!Number.isFinite(w.windowMs) || w.windowMs <= 0) throw configError(`window length ${w.windowMs} ms is not positive`);
  }
  for (const [name, share] of Object.entries(resolved.reserves)) {
    if (!(share >= 0 && share < 1)) throw configError(`reserve of ${name} must be a share from 0 up to (not including) 1, got ${share}`);
  }
  for (const w of resolved.windows) {
    for (const p of RATE_PRIORITIES) {
      if (w.limit - reserveTokens(resolved, w.limit, p) < 1) {
        throw configError(`the ${p} reserve leaves no request of the ${w.limit}-per-${w.windowMs}-ms window to ${p}`);
      }
    }
  }
  for (const [name, value] of [["marginMs", resolved.marginMs], ["default429Ms", resolved.default429Ms]] as const) {
    if (!Number.isFinite(value) || value < 0) throw configError(`${name} must be a finite number >= 0, got ${value}`);
  }
  if (!(resolved.slowBelow >= 0 && resolved.slowBelow <= 1)) throw configError(`slowBelow must be a share from 0 to 1, got ${resolved.slowBelow}`);
  return resolved;
}

/** A fresh budget; throws `ERR_RATE_BUDGET_CONFIG` on a config that cannot work. */
export function createRateBudget(config: RateBudgetConfig = {}): RateBudgetState {
  return { config: resolveConfig(config), log: [], blockedUntil: 0, server: null };
}

/**
 * A persisted budget under a (possibly changed) config: its request log, pause
 * and server view carry over, so a restart neither forgets a 429 nor grants a
 * fresh burst.
 */
export function restoreRateBudget(saved: Pick<RateBudgetState, "log" | "blockedUntil" | "server">, config: RateBudgetConfig = {}): RateBudgetState {
  const fresh = createRateBudget(config);
  const log = saved.log.filter((t) => Number.isFinite(t)).sort((a, b) => a - b);
  const blockedUntil = Number.isFinite(saved.blockedUntil) ? saved.blockedUntil : 0;
  return { ...fresh, log, blockedUntil, server: saved.server };
}

/** Index of the first log entry later than `time` (the log is ascending). */
function firstAfter(log: readonly number[], time: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((log[mid] as number) > time) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function tightest(config: ResolvedRateBudgetConfig): { limit: number; windowMs: number } {
  return {
    limit: Math.min(...config.windows.map((w) => w.limit)),
    windowMs: Math.min(...config.windows.map((w) => w.windowMs)),
  };
}

/** Drops what can no longer matter: log entries older than the longest window, an outdated server view. */
function prune(state: RateBudgetState, now: number): RateBudgetState {
  const { config } = state;
  const horizon = now - Math.max(...config.windows.map((w) => w.windowMs)) - config.marginMs;
  const first = firstAfter(state.log, horizon);
  const server = state.server !== null && now < state.server.until ? state.server : null;
  if (first === 0 && server === state.server) return state;
  return { ...state, log: first === 0 ? state.log : state.log.slice(first), server };
}

/**
 * The earliest instant `priority` may take a token, given no other take or
 * observation happens meanwhile. Every constraint, once met, stays met as time
 * passes, so the latest of their individual times is exact.
 */
function readyAt(state: RateBudgetState, priority: RatePriority, now: number): number {
  const { config, log } = state;
  let at = Math.max(now, state.blockedUntil);
  for (const w of config.windows) {
    const span = w.windowMs + config.marginMs;
    const cap = w.limit - reserveTokens(config, w.limit, priority);
    const first = firstAfter(log, now - span);
    const count = log.length - first;
    // The oldest (count − cap + 1) entries must leave the window; the last of them leaves at its time + span.
    if (count >= cap) at = Math.max(at, (log[first + count - cap] as number) + span);
  }
  const server = state.server;
  if (server !== null && now < server.until) {
    // The doc does not say which window X-RateLimit-Remaining counts, so it is taken as the tightest.
    const tight = tightest(config);
    const last = log[log.length - 1];
    if (server.remaining <= reserveTokens(config, tight.limit, priority)) {
      at = Math.max(at, server.until);
    } else if (server.remaining < Math.ceil(tight.limit * config.slowBelow) && last !== undefined) {
      // Spread what is left over the window instead of spending it at once.
      at = Math.max(at, Math.min(server.until, last + Math.ceil(tight.windowMs / server.remaining)));
    }
  }
  return at;
}

/**
 * Takes one request token for `priority` at `now`, or says how long until one
 * is free for it. Never grants a request that would put any window over its
 * limit, nor one that would eat into a higher priority's reserve.
 */
export function tryTake(state: RateBudgetState, priority: RatePriority, now: number): TakeResult {
  const current = prune(state, now);
  const at = readyAt(current, priority, now);
  if (at > now) return { ok: false, waitMs: at - now, state: current };
  const server = current.server === null ? null : { ...current.server, remaining: current.server.remaining - 1 };
  // A clock that stepped back must not unsort the log: record the later of the two times.
  const last = current.log[current.log.length - 1] ?? now;
  return { ok: true, state: { ...current, log: [...current.log, Math.max(now, last)], server } };
}

/**
 * Folds what a response said into the budget. `X-RateLimit-Remaining` lower
 * than our own count is trusted (and paces or stops requests until the
 * shortest window could have reset); a 429 pauses everything for
 * `Retry-After`, or 60 s when it gives none. A `Retry-After` on another
 * status (503) is honoured too.
 */
export function observeServer(state: RateBudgetState, observation: ServerObservation, now: number): RateBudgetState {
  const current = prune(state, now);
  const { config } = current;
  let blockedUntil = current.blockedUntil;
  const retryAfter =
    observation.retryAfterMs !== undefined && Number.isFinite(observation.retryAfterMs)
      ? Math.max(0, observation.retryAfterMs)
      : observation.status === 429
        ? config.default429Ms
        : undefined;
  if (retryAfter !== undefined) blockedUntil = Math.max(blockedUntil, now + retryAfter);
  let server = current.server;
  if (observation.remaining !== undefined && Number.isFinite(observation.remaining)) {
    server = {
      remaining: Math.max(0, Math.floor(observation.remaining)),
      at: now,
      until: now + tightest(config).windowMs + config.marginMs,
    };
  }
  return { ...current, blockedUntil, server };
}

/** Remaining requests per window and any pause, for `status` and metrics. */
export function budgetSnapshot(state: RateBudgetState, now: number): BudgetSnapshot {
  const current = prune(state, now);
  const { config, log } = current;
  const windows = config.windows.map((w) => {
    const used = log.length - firstAfter(log, now - w.windowMs - config.marginMs);
    return { limit: w.limit, windowMs: w.windowMs, used, remaining: Math.max(0, w.limit - used) };
  });
  const waitMs = {} as Record<RatePriority, number>;
  for (const p of RATE_PRIORITIES) waitMs[p] = readyAt(current, p, now) - now;
  return {
    windows,
    ...(current.server === null ? {} : { serverRemaining: current.server.remaining }),
    ...(current.blockedUntil > now ? { blockedUntil: current.blockedUntil } : {}),
    waitMs,
  };
}
