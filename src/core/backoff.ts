import { PerkbridgeError } from "./errors.js";

/** Retry timing. All durations are milliseconds. */
export interface BackoffOptions {
  /** Delay of the first retry; default 1000. */
  readonly baseMs?: number;
  /** Cap of the exponential delay; default 5 minutes. */
  readonly maxMs?: number;
  /** Growth per attempt; default 2. */
  readonly factor?: number;
  /** Share (0..1) of the delay that is randomized away, so clients that failed together do not retry together; default 0.2. */
  readonly jitter?: number;
  /** Source of randomness in [0, 1); default `Math.random`. Inject it for deterministic tests. */
  readonly random?: () => number;
  /** Cap of a server's `Retry-After`, which may ask for far longer than our own backoff would; default 1 hour. */
  readonly maxRetryAfterMs?: number;
}

export const DEFAULT_BACKOFF = {
  baseMs: 1_000,
  maxMs: 5 * 60_000,
  factor: 2,
  jitter: 0.2,
  maxRetryAfterMs: 60 * 60_000,
} as const;

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new PerkbridgeError("ERR_BACKOFF_OPTIONS", `backoff option ${name} must be a finite number >= 0, got ${value}`);
  }
  return value;
}

/**
 * Delay before retry number `attempt` (1 = first retry): `baseMs · factor^(attempt−1)`,
 * capped at `maxMs`, then shortened by up to `jitter` of itself. The jitter only
 * shortens, so the result always lies in [0, maxMs]. Attempts below 1 count as 1.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const baseMs = nonNegative("baseMs", opts.baseMs ?? DEFAULT_BACKOFF.baseMs);
  const maxMs = nonNegative("maxMs", opts.maxMs ?? DEFAULT_BACKOFF.maxMs);
  const factor = opts.factor ?? DEFAULT_BACKOFF.factor;
  if (!Number.isFinite(factor) || factor < 1) {
    throw new PerkbridgeError("ERR_BACKOFF_OPTIONS", `backoff option factor must be a finite number >= 1, got ${factor}`);
  }
  const jitter = Math.min(1, nonNegative("jitter", opts.jitter ?? DEFAULT_BACKOFF.jitter));
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : attempt > 0 ? Number.MAX_SAFE_INTEGER : 1;
  // factor^n overflows to Infinity for large n; min() turns that into the cap (and 0 · Infinity would be NaN).
  const capped = baseMs === 0 ? 0 : Math.min(maxMs, baseMs * factor ** (n - 1));
  const r = (opts.random ?? Math.random)();
  const share = Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 0;
  return Math.round(capped * (1 - jitter * share));
}

const WEEKDAYS_SHORT = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WEEKDAYS_LONG = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// RFC 7231 §7.1.1.1: senders use IMF-fixdate; recipients must also accept the two obsolete forms.
const IMF_FIXDATE = /^([A-Za-z]{3}), (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^([A-Za-z]{6,9}), (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^([A-Za-z]{3}) ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

interface DateParts {
  readonly weekday: string;
  readonly weekdays: readonly string[];
  readonly day: number;
  readonly month: string;
  readonly year: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function dateParts(text: string, now: number): DateParts | undefined {
  const imf = IMF_FIXDATE.exec(text);
  if (imf) {
    const g = (i: number): string => imf[i] ?? "";
    return { weekday: g(1), weekdays: WEEKDAYS_SHORT, day: Number(g(2)), month: g(3), year: Number(g(4)), hour: Number(g(5)), minute: Number(g(6)), second: Number(g(7)) };
  }
  const rfc850 = RFC850_DATE.exec(text);
  if (rfc850) {
    const g = (i: number): string => rfc850[i] ?? "";
    // RFC 7231: a two-digit year that looks more than 50 years ahead is in the past century.
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(g(4));
    if (year > thisYear + 50) year -= 100;
    return { weekday: g(1), weekdays: WEEKDAYS_LONG, day: Number(g(2)), month: g(3), year, hour: Number(g(5)), minute: Number(g(6)), second: Number(g(7)) };
  }
  const asctime = ASCTIME_DATE.exec(text);
  if (asctime) {
    const g = (i: number): string => asctime[i] ?? "";
    return { weekday: g(1), weekdays: WEEKDAYS_SHORT, month: g(2), day: Number(g(3).trim()), hour: Number(g(4)), minute: Number(g(5)), second: Number(g(6)), year: Number(g(7)) };
  }
  return undefined;
}

function parseHttpDate(text: string, now: number): number | undefined {
  const p = dateParts(text, now);
  if (!p || !p.weekdays.includes(p.weekday)) return undefined;
  const month = MONTHS.indexOf(p.month);
  const { day, hour, minute, second } = p;
  // A second of 60 is a leap second; Date has none, so it becomes the next second.
  if (month < 0 || hour > 23 || minute > 59 || second > 60 || day < 1) return undefined;
  const ms = Date.UTC(p.year, month, day, hour, minute, second);
  // Date.UTC rolls 31 Feb over into March; such a date is garbage, not a time.
  if (new Date(Date.UTC(p.year, month, day)).getUTCDate() !== day) return undefined;
  return ms;
}

/**
 * Milliseconds to wait as a `Retry-After` header asks: delay-seconds (`"120"`,
 * also fractional `"1.5"`, rounded up) or an HTTP-date (IMF-fixdate, or the
 * obsolete RFC 850 and asctime forms RFC 7231 asks recipients to accept).
 * A negative delay or a date in the past gives 0; absent or unparseable gives `undefined`.
 */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^[+-]?\d+(\.\d+)?$/.test(text)) {
    const ms = Math.ceil(Number(text) * 1000);
    return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
  }
  const at = parseHttpDate(text, now);
  return at === undefined ? undefined : Math.max(0, at - now);
}

/**
 * Delay before retry number `attempt`: the server's `Retry-After` when it sent a
 * usable one (capped at `maxRetryAfterMs`), otherwise {@link backoffDelay}.
 */
export function nextRetryDelay(
  attempt: number,
  retryAfterHeader: string | undefined,
  now: number,
  opts: BackoffOptions = {},
): number {
  const asked = parseRetryAfter(retryAfterHeader, now);
  if (asked === undefined) return backoffDelay(attempt, opts);
  const cap = nonNegative("maxRetryAfterMs", opts.maxRetryAfterMs ?? DEFAULT_BACKOFF.maxRetryAfterMs);
  return Math.min(asked, cap);
}
