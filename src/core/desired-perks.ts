import type { Member } from "./member.js";
import type { Perk, PlanRules } from "./perk.js";

/** When the daemon should look at an entitled member again, and why. */
export interface NextCheck {
  readonly at: number;
  readonly cause: "grace-ends" | "trial-ends" | "paid-period-ends";
}

/**
 * What a member should have right now.
 * - `entitled`: grant these perks (possibly none), and revoke those no longer among them.
 * - `not-entitled`: positive evidence that the member justifies nothing; revokes are allowed.
 * - `frozen`: nothing can be decided (unknown status or plan): neither grant nor revoke, report `reason`.
 */
export type Desired =
  | { readonly kind: "entitled"; readonly perks: readonly Perk[]; readonly reason: string; readonly next?: NextCheck }
  | { readonly kind: "not-entitled"; readonly reason: string }
  | { readonly kind: "frozen"; readonly reason: string };

/** How platform statuses map to perkbridge's rules; compared case-insensitively. */
export interface StatusPolicy {
  readonly grant: readonly string[];
  readonly trial: readonly string[];
  /** Revoking statuses: perks stay until the plan's grace (and paid period) ends. */
  readonly revoke: readonly string[];
}

export const defaultStatusPolicy: StatusPolicy = Object.freeze({
  grant: Object.freeze(["active"]),
  trial: Object.freeze(["trial", "trialing"]),
  revoke: Object.freeze(["canceled", "cancelled", "deleted", "expired"]),
});

/**
 * The perks a member should have at `now` (DESIGN.md, "Plans"). Pure: the same
 * member, plans and time give the same answer, so replaying any event changes
 * nothing (invariant 1). A member confirmed gone is treated as a revoking
 * status whatever its last status was; its grace counts from `statusSince`,
 * which the daemon sets when it marks the member gone.
 */
export function desiredPerks(
  member: Member,
  plans: ReadonlyMap<string, PlanRules>,
  now: number,
  policy: StatusPolicy = defaultStatusPolicy,
): Desired {
  const who = `${member.source}:${member.id}`;
  const status = member.status.trim().toLowerCase();
  const rule =
    member.gone === true ? "revoke"
    : policy.grant.some((s) => s.toLowerCase() === status) ? "grant"
    : policy.trial.some((s) => s.toLowerCase() === status) ? "trial"
    : policy.revoke.some((s) => s.toLowerCase() === status) ? "revoke"
    : undefined;
  const shown = member.gone === true ? "gone" : member.status;

  if (rule === undefined) {
    return {
      kind: "frozen",
      reason: `unknown status "${member.status}" of ${who}: perks neither granted nor revoked; map it in the status policy`,
    };
  }
  if (member.planId === undefined) return { kind: "not-entitled", reason: `no plan, ${shown}` };
  const plan = plans.get(member.planId);
  if (plan === undefined) {
    return {
      kind: "frozen",
      reason: `unknown plan ${member.planId} of ${who}: add it to the config, with \`perks: []\` if it grants nothing`,
    };
  }
  const label = `${plan.id} ${shown}`;

  switch (rule) {
    case "grant":
      return { kind: "entitled", perks: plan.perks, reason: label };
    case "trial": {
      const perks = plan.trialPerks ?? plan.perks;
      // The trial's end revokes nothing by itself: it only makes the daemon read the status again.
      return member.trialEndsAt !== undefined && member.trialEndsAt > now
        ? { kind: "entitled", perks, reason: label, next: { at: member.trialEndsAt, cause: "trial-ends" } }
        : { kind: "entitled", perks, reason: label };
    }
    case "revoke": {
      const graceEnd = member.statusSince + plan.graceMs;
      const paidUntil = plan.honorPaidPeriod ? member.paidUntil : undefined;
      const paid = paidUntil !== undefined && paidUntil > graceEnd;
      const end = paid ? paidUntil : graceEnd;
      if (now >= end) return { kind: "not-entitled", reason: label };
      const cause = paid ? "paid-period-ends" : "grace-ends";
      return {
        kind: "entitled",
        perks: plan.perks,
        reason: `${label}, kept until ${new Date(end).toISOString()} (${paid ? "paid period" : "grace"})`,
        next: { at: end, cause },
      };
    }
  }
}
