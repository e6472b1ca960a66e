import type { RateWindow } from "./rate-budget.js";
import { PAYMENTHUB_RATE_WINDOWS } from "./rate-budget.js";

/**
 * How often a full member listing (a "sweep") can run within a source's rate
 * limit. A sweep costs one list request per page, so its price grows with
 * the member count: "every 15 minutes while the member count allows, less
 * often beyond" — at 1000 requests/hour with 20 % kept for webhook lookups
 * and writes, a 15-minute cadence fits 20,000 members.
 */

/** Cadences a sweep may run at, in minutes; `auto` picks from these. */
export const POLL_CADENCES_MINUTES: readonly number[] = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

/** `auto` never polls more often than this: webhooks carry the news, a sweep only catches what they missed. */
export const MIN_AUTO_CADENCE_MINUTES = 15;

/**
 * Share of every window polling may use: the rate budget's default poll
 * reserve keeps 20 % for webhook lookups and metadata writes.
 */
export const DEFAULT_POLL_SHARE = 0.8;

/** Members per list request: PaymentHub's maximum page size. */
export const DEFAULT_PAGE_SIZE = 100;

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** What every cadence calculation needs. */
export interface PollBudgetInput {
  /** Members the source holds, estimated from the last sweep's `total`. */
  readonly members: number;
  /** The source's rate windows; default PaymentHub's 1000/hour and 100/minute. */
  readonly windows?: readonly RateWindow[];
  /** Share (0..1] of every window polling may use; default {@link DEFAULT_POLL_SHARE}. */
  readonly pollShare?: number;
  /** Default {@link DEFAULT_PAGE_SIZE}. */
  readonly pageSize?: number;
}

/** The cadence `auto` chose. */
export interface CadencePlan {
  readonly everyMinutes: number;
  /** A node-cron expression for {@link everyMinutes}. */
  readonly cron: string;
  readonly requestsPerSweep: number;
  /** At this cadence. */
  readonly requestsPerHour: number;
  /** What polling may use per hour. */
  readonly budgetPerHour: number;
  /** How long one sweep takes at least within the windows, in ms. */
  readonly sweepMs: number;
  readonly fits: boolean;
  /** For the admin when even the slowest cadence does not fit. */
  readonly warning?: string;
}

/** The run times of a cron expression within a day (day fields only ever remove runs, so they are ignored). */
export interface CronFields {
  readonly second: readonly number[];
  readonly minute: readonly number[];
  readonly hour: readonly number[];
}

/** Whether an admin's cron leaves room in the budget. */
export interface CronCheck {
  /** Most runs in any 60 minutes. */
  readonly maxRunsPerHour: number;
  /**
   * What polling needs per hour in the busiest stretch of an hour, or of the
   * shortest gap between runs when that is longer.
   */
  /** Shortest time between two runs, in ms. */
  readonly minGapMs: number;
  readonly requestsPerHour: number;
  readonly requestsPerSweep: number;
  readonly budgetPerHour: number;
  readonly sweepMs: number;
  readonly fits: boolean;
  readonly warning?: string;
}

/** List requests of one sweep: one per page, and one even when there are no members (to learn that). */
export function sweepRequests(members: number, pageSize = DEFAULT_PAGE_SIZE): number {
  return Math.max(1, Math.ceil(Math.max(0, members) / pageSize));
}

interface Resolved {
  readonly members: number;
  readonly windows: readonly RateWindow[];
  readonly pollShare: number;
  readonly pageSize: number;
}

function resolve(input: PollBudgetInput): Resolved {
  const pollShare = input.pollShare ?? DEFAULT_POLL_SHARE;
  const pageSize = input.pageSize ?? DEFAULT_PAGE_SIZE;
  return {
    members: Number.isFinite(input.members) ? Math.max(0, Math.floor(input.members)) : 0,
    windows: input.windows !== undefined && input.windows.length > 0 ? input.windows : PAYMENTHUB_RATE_WINDOWS,
    pollShare: pollShare > 0 && pollShare <= 1 ? pollShare : DEFAULT_POLL_SHARE,
    pageSize: Number.isInteger(pageSize) && pageSize >= 1 ? pageSize : DEFAULT_PAGE_SIZE,
  };
}

/** Requests polling may make in one window, as the rate budget counts them (its reserve is rounded the same way). */
function pollCap(window: RateWindow, share: number): number {
  return Math.max(1, window.limit - Math.round(window.limit * (1 - share)));
}

/** What polling may sustain per hour: the tightest window, scaled to an hour. */
function budgetPerHour(r: Resolved): number {
  return Math.floor(Math.min(...r.windows.map((w) => (pollCap(w, r.pollShare) * HOUR) / w.windowMs)));
}

/** The least time `requests` take when no window may be exceeded: each full window of them waits for the next. */
function sweepDuration(requests: number, r: Resolved): number {
  return Math.max(...r.windows.map((w) => (Math.ceil(requests / pollCap(w, r.pollShare)) - 1) * w.windowMs));
}

function cronFor(minutes: number): string {
  if (minutes < 60) return `*/${minutes} * * * *`;
  if (minutes === 60) return "0 * * * *";
  if (minutes < 1440) return `0 */${minutes / 60} * * *`;
  return "0 0 * * *";
}

function describeEvery(minutes: number): string {
  if (minutes < 60) return `${minutes} minutes`;
  return minutes === 60 ? "hour" : `${minutes / 60} hours`;
}

const count = (n: number): string => n.toLocaleString("en-US");

/**
 * The most frequent cadence from {@link POLL_CADENCES_MINUTES}, at least
 * {@link MIN_AUTO_CADENCE_MINUTES}, whose sweeps fit the polling share of
 * every window and finish before the next one starts. When none fits it
 * returns the slowest, with a warning.
 */
export function planPollCadence(input: PollBudgetInput): CadencePlan {
  const r = resolve(input);
  const requestsPerSweep = sweepRequests(r.members, r.pageSize);
  const budget = budgetPerHour(r);
  const sweepMs = sweepDuration(requestsPerSweep, r);
  const candidates = POLL_CADENCES_MINUTES.filter((m) => m >= MIN_AUTO_CADENCE_MINUTES);
  const planFor = (everyMinutes: number): Omit<CadencePlan, "fits" | "warning"> => ({
    everyMinutes,
    cron: cronFor(everyMinutes),
    requestsPerSweep,
    requestsPerHour: Math.ceil((requestsPerSweep * 60) / everyMinutes),
    budgetPerHour: budget,
    sweepMs,
  });
  for (const minutes of candidates) {
    const plan = planFor(minutes);
    if (plan.requestsPerHour <= budget && sweepMs <= minutes * MINUTE) return { ...plan, fits: true };
  }
  const slowest = planFor(candidates[candidates.length - 1] as number);
  return {
    ...slowest,
    fits: false,
    warning:
      `${count(r.members)} members need ${count(requestsPerSweep)} list requests per sweep; even one sweep a day ` +
      `(${count(slowest.requestsPerHour)} requests/hour) exceeds what polling may use (${count(budget)}/hour). ` +
      `Sweeps will run late; members are still kept current by webhooks.`,
  };
}

/** Run times of one day in ms, ascending. */
function runTimes(fields: CronFields): number[] {
  const valid = (values: readonly number[], max: number): number[] =>
    [...new Set(values.filter((v) => Number.isInteger(v) && v >= 0 && v < max))].sort((a, b) => a - b);
  const seconds = fields.second.length === 0 ? [0] : valid(fields.second, 60);
  const times: number[] = [];
  for (const h of valid(fields.hour, 24)) {
    for (const m of valid(fields.minute, 60)) {
      for (const s of seconds) times.push(h * HOUR + m * MINUTE + s * 1000);
    }
  }
  return times;
}

/** Most runs in any half-open interval of `spanMs`, over the day and into the next. */
function maxRunsWithin(times: readonly number[], cyclic: readonly number[], spanMs: number): number {
  let most = 0;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    while (j < cyclic.length && (cyclic[j] as number) < (times[i] as number) + spanMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

/**
 * Checks that a cron expression's sweeps fit the polling share of the budget,
 * by the same measure as {@link planPollCadence}: the busiest stretch of an
 * hour, or of the shortest gap between runs when that is longer (a sweep
 * every 2 hours may spend two hours' budget). The day-of-month, month and
 * day-of-week fields are ignored: they only remove whole days, and the
 * busiest stretch of a day that runs is what counts.
 */
export function checkCronCadence(input: PollBudgetInput & { readonly expression: string; readonly fields: CronFields }): CronCheck {
  const r = resolve(input);
  const requestsPerSweep = sweepRequests(r.members, r.pageSize);
  const budget = budgetPerHour(r);
  const sweepMs = sweepDuration(requestsPerSweep, r);
  const times = runTimes(input.fields);
  // The day repeats: the busiest hour may span midnight, and the last run's gap is to the first of the next day.
  const cyclic = [...times, ...times.map((t) => t + DAY)];
  let minGapMs = times.length > 0 ? DAY : 0;
  for (let i = 0; i < times.length; i++) minGapMs = Math.min(minGapMs, (cyclic[i + 1] as number) - (times[i] as number));
  const maxRunsPerHour = maxRunsWithin(times, cyclic, HOUR);
  const spanMs = Math.max(HOUR, minGapMs);
  const requestsPerHour = Math.ceil((maxRunsWithin(times, cyclic, spanMs) * requestsPerSweep * HOUR) / spanMs);
  const problems: string[] = [];
  if (requestsPerHour > budget) {
    const runs = spanMs === HOUR ? `up to ${maxRunsPerHour} sweeps an hour` : `a sweep every ${describeEvery(Math.round(minGapMs / MINUTE))}`;
    problems.push(
      `needs ${count(requestsPerHour)} requests/hour for ${count(r.members)} members ` +
        `(${count(requestsPerSweep)} per sweep, ${runs}) but polling may use ${count(budget)}/hour`,
    );
  }
  if (times.length > 0 && sweepMs > minGapMs) {
    problems.push(`a sweep takes at least ${Math.ceil(sweepMs / MINUTE)} minutes within the rate limit but runs start ${Math.round(minGapMs / 1000)} s apart`);
  }
  const fits = problems.length === 0;
  const check = { maxRunsPerHour, minGapMs, requestsPerSweep, requestsPerHour, budgetPerHour: budget, sweepMs, fits };
  if (fits) return check;
  const suggestion = planPollCadence(input);
  return {
    ...check,
    warning:
      `poll cron "${input.expression}" ${problems.join("; ")}. Sweeps will be slowed down by the rate budget and run late. ` +
      `Set sources.paymenthub.poll.cron to "auto" (now: every ${describeEvery(suggestion.everyMinutes)}) or to a cron that runs less often.`,
  };
}
