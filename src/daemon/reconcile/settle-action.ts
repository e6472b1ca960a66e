import type { SyncResult } from "../../core/ports.js";
import type { ActionState, QueuedAction } from "./action-queue.js";

/** How the queue retries: the delay comes from the core backoff, injected. */
export interface RetryPolicy {
  /** Retryable failures after which an action is parked for the operator. */
  readonly maxAttempts: number;
  /** Delay before attempt `attempt` (1-based). */
  readonly delay: (attempt: number) => number;
  /** How long a target that is down is left alone before it is tried again. */
  readonly downDelayMs: number;
}

export interface Settlement {
  readonly state: ActionState;
  readonly attempts: number;
  readonly notBefore: number;
  readonly last: NonNullable<QueuedAction["last"]>;
}

/**
 * What becomes of an action after its target answered: a pure decision, so the
 * whole retry table is unit-tested without a target.
 */
export function settleAction(rec: Pick<QueuedAction, "attempts">, result: SyncResult, now: number, policy: RetryPolicy): Settlement {
  switch (result.kind) {
    case "granted":
    case "revoked":
    case "unchanged":
      return { state: "done", attempts: rec.attempts + 1, notBefore: now, last: { kind: result.kind } };
    case "not-linked":
    case "target-missing":
      // Woken by the event that resolves it (a join, a name learned, a re-plan), not by time.
      return { state: "waiting", attempts: rec.attempts, notBefore: now, last: { kind: result.kind, reason: result.reason } };
    case "failed": {
      const last = { kind: result.kind, reason: result.reason, ...(result.fix === undefined ? {} : { fix: result.fix }) };
      if (result.outcomeUnknown) {
        return { state: "parked", attempts: rec.attempts + 1, notBefore: now, last: { ...last, reason: `outcome unknown: ${result.reason}` } };
      }
      if (!result.retryable) return { state: "parked", attempts: rec.attempts + 1, notBefore: now, last };
      if (result.targetDown) {
        // An outage is not the action's fault: hold it without spending its attempts.
        return { state: "queued", attempts: rec.attempts, notBefore: now + Math.max(result.retryAfterMs ?? 0, policy.downDelayMs), last };
      }
      const attempts = rec.attempts + 1;
      if (attempts >= policy.maxAttempts) {
        return { state: "parked", attempts, notBefore: now, last: { ...last, reason: `gave up after ${attempts} attempts: ${result.reason}` } };
      }
      return { state: "queued", attempts, notBefore: now + Math.max(result.retryAfterMs ?? 0, policy.delay(attempts)), last };
    }
  }
}
