/** Backoff settings of the PaymentHub client's GET retries. */
export interface RetryDelayOptions {
  /** Delay before the first retry, before jitter. */
  readonly baseDelayMs: number;
  /** No delay is ever longer, not even one asked for by `Retry-After`. */
  readonly maxDelayMs: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): exponential from
 * `baseDelayMs`, with jitter in [50 %, 100 %] so clients that failed together
 * do not retry together, capped at `maxDelayMs`. A server's `Retry-After`
 * wins over the computed delay (still capped).
 */
export function computeRetryDelay(
  attempt: number,
  options: RetryDelayOptions,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) {
    return Math.min(options.maxDelayMs, retryAfterMs);
  }
  const exponential = options.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const jittered = exponential * (0.5 + 0.5 * random());
  return Math.max(0, Math.min(options.maxDelayMs, Math.round(jittered)));
}

/**
 * `Retry-After` (delta seconds or an HTTP date) as milliseconds from `now`;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  if (!Number.isFinite(date)) return undefined;
  return Math.max(0, date - now);
}
