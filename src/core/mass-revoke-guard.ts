import { ledgerKey } from "./ledger.js";
import type { Perk } from "./perk.js";

/** What the guard needs of a revocation; `PerkAction` and an id'd `PlannedAction` both fit. */
export interface GuardedRevocation {
  readonly id: string;
  readonly subject: string;
  readonly perk: Perk;
}

/** A revocation the guard stopped, waiting for an operator. */
export interface HeldRevocation<T extends GuardedRevocation = GuardedRevocation> {
  readonly action: T;
  readonly heldAt: number;
  readonly reason: string;
}

/** The guard's whole state; persist it, it is plain data. */
export interface MassRevokeState<T extends GuardedRevocation = GuardedRevocation> {
  /** Times of revocations admitted within the window, oldest first. */
  readonly recent: readonly number[];
  readonly held: readonly HeldRevocation<T>[];
}

/** DESIGN.md invariant 5: at most max(`min`, ceil(`share` × grants)) revocations per sliding `windowMs`. */
export interface MassRevokeConfig {
  readonly windowMs: number;
  readonly share: number;
  readonly min: number;
}

export const defaultMassRevokeConfig: MassRevokeConfig = Object.freeze({ windowMs: 600_000, share: 0.1, min: 25 });

export const emptyMassRevokeState: MassRevokeState<never> = Object.freeze({
  recent: Object.freeze([]),
  held: Object.freeze([]),
});

/** How many revocations one window allows with this many grants in the ledger. */
export function revocationLimit(totalGrants: number, config: MassRevokeConfig = defaultMassRevokeConfig): number {
  return Math.max(config.min, Math.ceil(config.share * totalGrants));
}

/**
 * Admits revocations while the sliding window has room and holds the rest.
 * Once anything is held, every further revocation is held too until an
 * operator confirms or the held ones are dropped: otherwise a runaway revoke
 * would still trickle out one window's worth at a time, and time alone must
 * never release it. A candidate whose id or subject and perk are already held
 * is not held twice.
 */
export function admitRevocations<T extends GuardedRevocation>(
  state: MassRevokeState<T>,
  candidates: readonly T[],
  totalGrants: number,
  now: number,
  config: MassRevokeConfig = defaultMassRevokeConfig,
): { admitted: T[]; held: HeldRevocation<T>[]; state: MassRevokeState<T> } {
  const recent = state.recent.filter((t) => now - t < config.windowMs);
  const limit = revocationLimit(totalGrants, config);
  const admitted: T[] = [];
  const held: HeldRevocation<T>[] = [];
  const heldIds = new Set(state.held.map((h) => h.action.id));
  const heldKeys = new Set(state.held.map((h) => keyOf(h.action)));
  let tripped = state.held.length > 0;
  for (const action of candidates) {
    if (!tripped && recent.length < limit) {
      recent.push(now);
      admitted.push(action);
      continue;
    }
    tripped = true;
    const key = keyOf(action);
    if (heldIds.has(action.id) || heldKeys.has(key)) continue;
    heldIds.add(action.id);
    heldKeys.add(key);
    held.push({
      action,
      heldAt: now,
      reason:
        `held by the mass-revoke guard: more than ${limit} revocations within ${Math.round(config.windowMs / 60_000)} min ` +
        `(${Math.round(config.share * 1000) / 10} % of ${totalGrants} grants, at least ${config.min}); run \`perkbridge confirm\` to release`,
    });
  }
  return { admitted, held, state: { recent, held: [...state.held, ...held] } };
}

/**
 * Releases held revocations an operator confirmed (`"all"` or by id). They are
 * not counted against the window: the operator has vouched for them.
 */
export function confirmHeld<T extends GuardedRevocation>(
  state: MassRevokeState<T>,
  ids: readonly string[] | "all",
): { admitted: T[]; state: MassRevokeState<T> } {
  const chosen = ids === "all" ? undefined : new Set(ids);
  const admitted: T[] = [];
  const kept: HeldRevocation<T>[] = [];
  for (const h of state.held) {
    if (chosen === undefined || chosen.has(h.action.id)) admitted.push(h.action);
    else kept.push(h);
  }
  return { admitted, state: { recent: state.recent, held: kept } };
}

/**
 * Drops held revocations that are justified again: a ledger key
 * (`subject|perk key`) or a predicate over the held action.
 */
export function dropHeldIfEntitled<T extends GuardedRevocation>(
  state: MassRevokeState<T>,
  entitled: string | ((action: T) => boolean),
): { dropped: T[]; state: MassRevokeState<T> } {
  const test = typeof entitled === "string" ? (a: T) => keyOf(a) === entitled : entitled;
  const dropped: T[] = [];
  const kept: HeldRevocation<T>[] = [];
  for (const h of state.held) {
    if (test(h.action)) dropped.push(h.action);
    else kept.push(h);
  }
  return { dropped, state: { recent: state.recent, held: kept } };
}

function keyOf(action: GuardedRevocation): string {
  return ledgerKey(action.subject, action.perk);
}
