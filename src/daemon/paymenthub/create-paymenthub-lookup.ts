import type { Clock } from "../../core/ports.js";
import type { RatePriority } from "../../core/rate-budget.js";
import type { PaymentHubClient } from "../../sources/paymenthub/create-paymenthub-client.js";
import { mapMember } from "../../sources/paymenthub/map-member.js";
import { PaymentHubError } from "../../sources/paymenthub/paymenthub-error.js";
import type { FetchResult, SourceLookup } from "../reconcile/reconcile-engine.js";

export interface PaymentHubLookupOptions {
  /** The gate-bound client. */
  readonly client: PaymentHubClient;
  readonly clock: Clock;
  /** Default `paymenthub`. */
  readonly source?: string;
  /** Identity conflicts and unreadable dates of a member are reported here. */
  readonly logger: { warn(obj: object, msg: string): void };
}

/**
 * The reconcile engine's direct lookup at PaymentHub. Found: the mapped member,
 * observed at the fetch time. Not found: only a 404 with PaymentHub's error
 * envelope (the client's `null`), so a wrong base URL never confirms anyone
 * gone. Everything else failed, which the engine treats as no evidence.
 */
export function createPaymentHubLookup(options: PaymentHubLookupOptions): SourceLookup {
  const name = options.source ?? "paymenthub";
  return {
    name,
    async fetchMember(id: string, priority: RatePriority): Promise<FetchResult> {
      let wire;
      try {
        wire = await options.client.getMember(id, { priority });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        const retryAfterMs = error instanceof PaymentHubError && error.code === "ERR_PAYMENTHUB_RATE_LIMITED" ? error.retryAfterMs : undefined;
        return { kind: "failed", reason, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
      }
      if (wire === null) return { kind: "not-found" };
      const observedAt = options.clock.now();
      // The engine keeps status_since itself; the fetch time is only its fallback.
      const mapped = mapMember(wire, { source: name, observedAt, statusSince: observedAt });
      if (mapped.conflicts.length > 0 || mapped.problems.length > 0) {
        options.logger.warn({ member: `${name}:${id}`, conflicts: mapped.conflicts, problems: mapped.problems }, "PaymentHub member metadata needs attention");
      }
      return { kind: "found", member: mapped.member };
    },
  };
}
