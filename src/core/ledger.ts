import { KeyIndex } from "./key-index.js";
import type { Perk, PlanRules } from "./perk.js";
import { perkKey } from "./perk.js";

/**
 * One thing perkbridge granted: a perk on one subject, with the members that
 * justify it (DESIGN.md invariants 2 and 3). Only what is here is ever revoked.
 */
export interface LedgerEntry {
  /** `discord:<id>`, `minecraft:<uuid>`, `fivem:<identifier>` or `member:<member key>`. */
  readonly subject: string;
  /** The perk as configured when it was granted (revokes use its params). */
  readonly perk: Perk;
  /** Member keys that justify it, sorted, unique, never empty. */
  readonly members: readonly string[];
  /** The subject already had the perk at our first grant: not ours to revoke unless `adopt_existing`. */
  readonly preExisting: boolean;
  readonly grantedAt: number;
}

/** Read access to the ledger by key; a `ReadonlyMap` is one. */
export interface LedgerView {
  get(key: string): LedgerEntry | undefined;
}

/** One change planned for the ledger; applied when its action is durably queued. */
export type LedgerChange =
  | { readonly op: "upsert"; readonly key: string; readonly entry: LedgerEntry }
  | { readonly op: "delete"; readonly key: string };

/** Key of a ledger entry: `discord:42|discord:guild:role:7`. */
export function ledgerKey(subject: string, perk: Pick<Perk, "target" | "scope" | "kind" | "value">): string {
  return `${subject}|${perkKey(perk)}`;
}

/** Applies changes to a copy of the ledger; the input is left alone. */
export function applyLedgerChanges(
  ledger: ReadonlyMap<string, LedgerEntry>,
  changes: readonly LedgerChange[],
): Map<string, LedgerEntry> {
  const next = new Map(ledger);
  applyLedgerChangesInPlace(next, changes);
  return next;
}

/**
 * Applies changes to the ledger itself, and to its member index when given, so
 * the daemon pays O(changes) per member instead of copying the ledger.
 */
export function applyLedgerChangesInPlace(
  ledger: Map<string, LedgerEntry>,
  changes: readonly LedgerChange[],
  index?: KeyIndex,
): void {
  for (const change of changes) {
    if (index !== undefined) {
      for (const member of ledger.get(change.key)?.members ?? []) index.delete(member, change.key);
      if (change.op === "upsert") for (const member of change.entry.members) index.add(member, change.key);
    }
    if (change.op === "upsert") ledger.set(change.key, change.entry);
    else ledger.delete(change.key);
  }
}

/** Member key → keys of the ledger entries it justifies; what planning needs to stay O(perks of one member). */
export function indexByMember(ledger: Iterable<readonly [string, LedgerEntry]>): KeyIndex {
  const index = new KeyIndex();
  for (const [key, entry] of ledger) for (const member of entry.members) index.add(member, key);
  return index;
}

/** Keys of the ledger entries a member justifies, per the index. */
export function ledgerKeysOfMember(index: KeyIndex, member: string): readonly string[] {
  return index.get(member);
}

/**
 * The change that records an entry as pre-existing, for when a target reports
 * the perk was already there at our first grant; `undefined` when there is no
 * such entry (revoked meanwhile) or it is already marked.
 */
export function markPreExisting(ledger: LedgerView, key: string): LedgerChange | undefined {
  const entry = ledger.get(key);
  if (entry === undefined || entry.preExisting) return undefined;
  return { op: "upsert", key, entry: { ...entry, preExisting: true } };
}

/**
 * Entries whose perk no longer appears in any plan (a plan or role removed from
 * the config). They are reported, never revoked (invariant 4): nothing read
 * from the platform says the member lost them.
 */
export function orphanedGrants(
  ledger: Iterable<LedgerEntry>,
  plans: ReadonlyMap<string, PlanRules>,
): LedgerEntry[] {
  const configured = new Set<string>();
  for (const plan of plans.values()) {
    for (const perk of plan.perks) configured.add(perkKey(perk));
    for (const perk of plan.trialPerks ?? []) configured.add(perkKey(perk));
  }
  return [...ledger].filter((entry) => !configured.has(perkKey(entry.perk)));
}
