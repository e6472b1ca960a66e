import type { Desired } from "./desired-perks.js";
import { missingIdentityReason, subjectFor } from "./identities.js";
import type { LedgerChange, LedgerEntry, LedgerView } from "./ledger.js";
import { ledgerKey } from "./ledger.js";
import type { Identities } from "./member.js";
import { memberKey } from "./member.js";
import type { Perk } from "./perk.js";
import { perkKey, subjectKindOf } from "./perk.js";

/** A grant or revoke before the daemon gives it an id and queues it as a `PerkAction`. */
export interface PlannedAction {
  readonly type: "grant" | "revoke";
  readonly subject: string;
  readonly perk: Perk;
  readonly members: readonly string[];
  readonly reason: string;
}

/** A desired perk that waits for an identity the member has not linked yet. */
export interface PendingPerk {
  readonly perk: Perk;
  readonly reason: string;
}

/** What reconciling one member needs. */
export interface PlanInput {
  readonly member: { readonly source: string; readonly id: string; readonly identities: Identities };
  /** The member's {@link Desired} perks at planning time. */
  readonly desired: Desired;
  /** Keys of the ledger entries this member justifies now (see `ledgerKeysOfMember`). */
  readonly justified: Iterable<string>;
  readonly ledger: LedgerView;
  readonly now: number;
  /** Revoke pre-existing perks too (`adopt_existing`), for all perks or per perk. Default false. */
  readonly adoptExisting?: boolean | ((perk: Perk) => boolean);
}

/** The outcome of {@link planActions}: actions to queue, ledger changes to store with them, and what waits. */
export interface ActionPlan {
  readonly grants: readonly PlannedAction[];
  readonly revokes: readonly PlannedAction[];
  readonly ledger: readonly LedgerChange[];
  readonly pending: readonly PendingPerk[];
}

/**
 * Plans one member against the ledger: grant what it should have and nobody
 * granted yet, revoke what only it justified and it no longer should have.
 * O(desired perks + entries the member justifies).
 *
 * - Only ledger entries are ever revoked, and only when their last justifying
 *   member lets go (invariants 2, 3). A pre-existing entry is then dropped from
 *   the ledger without a revoke, unless `adoptExisting`.
 * - `frozen` changes nothing at all.
 * - A perk whose identity the member lacks is `pending`; while entitled, what the
 *   member justifies on that kind of subject is kept, since a missing identity is
 *   no evidence of anything. A different identity is: the old subject's entry is
 *   let go and the new subject granted.
 *
 * Applying `ledger` and planning again with the same input yields no actions
 * and no changes.
 */
export function planActions(input: PlanInput): ActionPlan {
  const { member, desired, ledger, now } = input;
  const grants: PlannedAction[] = [];
  const revokes: PlannedAction[] = [];
  const changes: LedgerChange[] = [];
  const pending: PendingPerk[] = [];
  if (desired.kind === "frozen") return { grants, revokes, ledger: changes, pending };

  const me = memberKey(member);
  const wanted = new Set<string>();
  if (desired.kind === "entitled") {
    for (const perk of desired.perks) {
      const subject = subjectFor(perk, member);
      if (subject === undefined) {
        pending.push({ perk, reason: missingIdentityReason(subjectKindOf(perk)) });
        continue;
      }
      const key = ledgerKey(subject, perk);
      if (wanted.has(key)) continue;
      wanted.add(key);
      const entry = ledger.get(key);
      if (entry === undefined) {
        grants.push({ type: "grant", subject, perk, members: [me], reason: desired.reason });
        changes.push({ op: "upsert", key, entry: { subject, perk, members: [me], preExisting: false, grantedAt: now } });
      } else if (!entry.members.includes(me)) {
        changes.push({ op: "upsert", key, entry: { ...entry, members: withMember(entry.members, me) } });
      }
    }
  }

  const adopt = input.adoptExisting ?? false;
  for (const key of input.justified) {
    if (wanted.has(key)) continue;
    const entry = ledger.get(key);
    if (entry === undefined || !entry.members.includes(me)) continue;
    const reason = letGoReason(desired, entry, member);
    if (reason === undefined) continue;
    const rest = entry.members.filter((m) => m !== me);
    if (rest.length > 0) {
      changes.push({ op: "upsert", key, entry: { ...entry, members: rest } });
    } else {
      changes.push({ op: "delete", key });
      if (!entry.preExisting || (typeof adopt === "function" ? adopt(entry.perk) : adopt)) {
        revokes.push({ type: "revoke", subject: entry.subject, perk: entry.perk, members: [me], reason });
      }
    }
  }
  return { grants, revokes, ledger: changes, pending };
}

/** Why the member stops justifying an entry it is no longer wanted for; `undefined` to keep it. */
function letGoReason(
  desired: Exclude<Desired, { kind: "frozen" }>,
  entry: LedgerEntry,
  member: PlanInput["member"],
): string | undefined {
  if (desired.kind === "not-entitled") return desired.reason;
  const subject = subjectFor(entry.perk, member);
  if (subject === undefined) return undefined;
  if (subject !== entry.subject) return `${desired.reason}: identity changed from ${entry.subject} to ${subject}`;
  return `${desired.reason}: ${perkKey(entry.perk)} is no longer in the plan`;
}

function withMember(members: readonly string[], member: string): string[] {
  const next = [...members, member];
  // Default sort compares UTF-16 code units: the same order on every machine.
  return next.sort();
}
