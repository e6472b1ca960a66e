import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  admitRevocations,
  confirmHeld,
  defaultMassRevokeConfig,
  dropHeldIfEntitled,
  emptyMassRevokeState,
  revocationLimit,
  type GuardedRevocation,
  type MassRevokeState,
} from "../../src/core/mass-revoke-guard.js";
import { ledgerKey } from "../../src/core/ledger.js";
import type { Perk } from "../../src/core/perk.js";

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const role: Perk = { target: "discord", scope: "g1", kind: "role", value: "premium" };

const revocation = (i: number): GuardedRevocation & { type: "revoke" } => ({ id: `r${i}`, type: "revoke", subject: `discord:${i}`, perk: role });
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => revocation(from + i));
const empty = emptyMassRevokeState as MassRevokeState<ReturnType<typeof revocation>>;

describe("revocationLimit", () => {
  it.each([
    [0, 25],
    [250, 25],
    [251, 26],
    [1000, 100],
    [1001, 101],
  ])("with %i grants allows %i per window", (grants, limit) => {
    expect(revocationLimit(grants)).toBe(limit);
  });

  it("follows the configured share and minimum", () => {
    expect(revocationLimit(100, { windowMs: MIN, share: 0.5, min: 1 })).toBe(50);
    expect(revocationLimit(0, { windowMs: MIN, share: 0.5, min: 0 })).toBe(0);
  });
});

describe("admitRevocations", () => {
  it.each([
    ["below the limit", 24, 24, 0],
    ["exactly the limit", 25, 25, 0],
    ["one over the limit", 26, 25, 1],
    ["far over the limit", 400, 25, 375],
  ])("%s: %i candidates → %i admitted, %i held", (_name, n, admitted, held) => {
    const out = admitRevocations(empty, batch(0, n), 100, T0);
    expect(out.admitted).toHaveLength(admitted);
    expect(out.held).toHaveLength(held);
    expect(out.state.recent).toHaveLength(admitted);
    expect(out.state.held).toHaveLength(held);
  });

  it("holds with the time and a reason that says how to release", () => {
    const out = admitRevocations(empty, batch(0, 26), 100, T0);
    expect(out.held).toEqual([
      {
        action: revocation(25),
        heldAt: T0,
        reason: "held by the mass-revoke guard: more than 25 revocations within 10 min (10 % of 100 grants, at least 25); run `perkbridge confirm` to release",
      },
    ]);
  });

  it("counts earlier revocations in the window, across calls", () => {
    let state = admitRevocations(empty, batch(0, 20), 100, T0).state;
    const out = admitRevocations(state, batch(20, 10), 100, T0 + 5 * MIN);
    expect(out.admitted.map((a) => a.id)).toEqual(["r20", "r21", "r22", "r23", "r24"]);
    expect(out.held.map((h) => h.action.id)).toEqual(["r25", "r26", "r27", "r28", "r29"]);
    state = out.state;
    expect(state.recent).toHaveLength(25);
  });

  it.each([
    ["one ms before the window has passed", 10 * MIN - 1, 0],
    ["exactly when the window has passed", 10 * MIN, 1],
  ])("the window slides: %s", (_name, later, admitted) => {
    const full = admitRevocations(empty, batch(0, 25), 100, T0).state;
    expect(full.held).toEqual([]);
    const out = admitRevocations(full, [revocation(99)], 100, T0 + later);
    expect(out.admitted).toHaveLength(admitted);
    expect(out.held).toHaveLength(1 - admitted);
  });

  it("time alone never releases what is held, and holds everything after it until confirmed", () => {
    const tripped = admitRevocations(empty, batch(0, 26), 100, T0).state;
    const much = admitRevocations(tripped, [revocation(50)], 100, T0 + 24 * 60 * MIN);
    expect(much.admitted).toEqual([]);
    expect(much.state.held.map((h) => h.action.id)).toEqual(["r25", "r50"]);
    const released = confirmHeld(much.state, "all");
    expect(released.admitted.map((a) => a.id)).toEqual(["r25", "r50"]);
    expect(admitRevocations(released.state, [revocation(51)], 100, T0 + 24 * 60 * MIN).admitted).toHaveLength(1);
  });

  it("does not hold the same revocation twice, by id or by subject and perk", () => {
    const tripped = admitRevocations(empty, batch(0, 26), 100, T0).state;
    const out = admitRevocations(tripped, [revocation(25), { ...revocation(25), id: "again" }, revocation(30), revocation(30)], 100, T0 + 1);
    expect(out.held.map((h) => h.action.id)).toEqual(["r30"]);
    expect(out.state.held).toHaveLength(2);
  });

  it("never lets more than the limit through within any window", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 4 * MIN }), n: fc.nat({ max: 30 }) }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 600 }),
        (calls, grants) => {
          let state = empty;
          let now = T0;
          let next = 0;
          const times: number[] = [];
          for (const call of calls) {
            now += call.gap;
            const out = admitRevocations(state, batch(next, call.n), grants, now);
            next += call.n;
            state = out.state;
            for (const _ of out.admitted) times.push(now);
            expect(out.admitted.length + out.held.length).toBe(call.n);
          }
          const limit = revocationLimit(grants);
          for (const t of times) {
            expect(times.filter((u) => u > t - defaultMassRevokeConfig.windowMs && u <= t).length).toBeLessThanOrEqual(limit);
          }
        },
      ),
    );
  });
});

describe("confirmHeld", () => {
  it("releases the chosen ids only, without counting them in the window", () => {
    const tripped = admitRevocations(empty, batch(0, 28), 100, T0).state;
    const out = confirmHeld(tripped, ["r26", "nope"]);
    expect(out.admitted.map((a) => a.id)).toEqual(["r26"]);
    expect(out.state.held.map((h) => h.action.id)).toEqual(["r25", "r27"]);
    expect(out.state.recent).toEqual(tripped.recent);
  });
});

describe("dropHeldIfEntitled", () => {
  const tripped = admitRevocations(empty, batch(0, 28), 100, T0).state;

  it("drops by ledger key", () => {
    const out = dropHeldIfEntitled(tripped, ledgerKey("discord:26", role));
    expect(out.dropped.map((a) => a.id)).toEqual(["r26"]);
    expect(out.state.held.map((h) => h.action.id)).toEqual(["r25", "r27"]);
  });

  it("drops by predicate, and once all are gone the guard lets revocations through again", () => {
    const out = dropHeldIfEntitled(tripped, () => true);
    expect(out.dropped).toHaveLength(3);
    expect(out.state.held).toEqual([]);
    expect(admitRevocations(out.state, [revocation(99)], 100, T0 + 10 * MIN).admitted).toHaveLength(1);
  });

  it("drops nothing when nothing matches", () => {
    expect(dropHeldIfEntitled(tripped, "x|y").state.held).toHaveLength(3);
  });
});
