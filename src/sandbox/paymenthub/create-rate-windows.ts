import type { Clock } from "../../core/ports.js";

/** PaymentHub's documented limits: 1000 per hour, burst 100 per minute. */
export interface RateLimitOptions {
  readonly perHour: number;
  readonly perMinute: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** The smaller remaining count of the two windows, after this request if it was allowed. */
  readonly remaining: number;
  /** Whole seconds until a request would be allowed again; only when not allowed. */
  readonly retryAfterSeconds?: number;
}

export interface RateWindows {
  /** Admits and counts one request, or refuses it without counting it. */
  take(): RateDecision;
  /** The smaller remaining count, without taking. */
  remaining(): number;
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** Two sliding windows (an hour and a minute) over the times of admitted requests. */
export function createRateWindows(limits: RateLimitOptions, clock: Clock): RateWindows {
  // Admitted request times, oldest first; nothing older than an hour is kept.
  const times: number[] = [];

  function prune(now: number): void {
    while (times.length > 0 && (times[0] as number) <= now - HOUR) times.shift();
  }

  function countSince(since: number): number {
    let count = 0;
    for (let i = times.length - 1; i >= 0 && (times[i] as number) > since; i--) count++;
    return count;
  }

  function remainingAt(now: number): number {
    return Math.max(0, Math.min(limits.perHour - times.length, limits.perMinute - countSince(now - MINUTE)));
  }

  return {
    take() {
      const now = clock.now();
      prune(now);
      const inMinute = countSince(now - MINUTE);
      const waits: number[] = [];
      if (times.length >= limits.perHour) {
        // The oldest request that must leave the hour for one slot to free up.
        const oldest = times[times.length - limits.perHour] as number;
        waits.push(oldest + HOUR - now);
      }
      if (inMinute >= limits.perMinute) {
        const oldest = times[times.length - limits.perMinute] as number;
        waits.push(oldest + MINUTE - now);
      }
      if (waits.length > 0) {
        return { allowed: false, remaining: 0, retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits) / 1000)) };
      }
      times.push(now);
      return { allowed: true, remaining: remainingAt(now) };
    },
    remaining() {
      const now = clock.now();
      prune(now);
      return remainingAt(now);
    },
  };
}
