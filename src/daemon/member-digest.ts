import { createHash } from "node:crypto";
import type { Member } from "../core/member.js";

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

/**
 * A fingerprint of everything in a member record that a reconcile depends on (status, plan, trial
 * and paid-period ends, identities, metadata, whether it is gone), and nothing else: two records
 * with the same digest plan the same. A sweep compares it with the listed member's, so the stored
 * record, read from disk on demand, is read only for members that changed. 96 bits of SHA-1: a
 * collision, which would hide one change from one sweep, is not a practical concern.
 */
export function reconcileDigest(member: Member): string {
  const relevant = {
    status: member.status,
    planId: member.planId ?? null,
    trialEndsAt: member.trialEndsAt ?? null,
    paidUntil: member.paidUntil ?? null,
    identities: member.identities,
    metadata: member.metadata,
    gone: member.gone === true,
  };
  return createHash("sha1").update(stableJson(relevant)).digest("base64").slice(0, 16);
}
