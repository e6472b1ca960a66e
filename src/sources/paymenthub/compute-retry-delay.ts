import { backoffDelay } from "../../core/backoff.js";

export { parseRetryAfter } from "../../core/backoff.js";

/** Backoff settings of the PaymentHub client's GET retries. */
export interface RetryDelayOptions {
  /** Delay before the first retry, before jitter. */
  readonly baseDelayMs: number;
  /** No delay is ever longer, not even one asked for by `Retry-After`. */
  readonly maxDelayMs: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): the core backoff with
 * up to half of it jittered away, so clients that failed together do not retry
 * together (`random` 1 gives the full delay, 0 half of it). A server's `Retry-After` wins over the computed delay (still capped).
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
  return backoffDelay(Math.max(1, attempt), { baseMs: options.baseDelayMs, maxMs: options.maxDelayMs, jitter: 0.5, random: () => 1 - random() });
}
