import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { defaultStatusPolicy, desiredPerks, type Desired } from "../../src/core/desired-perks.js";
import type { Member } from "../../src/core/member.js";
import type { Perk, PlanRules } from "../../src/core/perk.js";

const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 15, 10, 30);
const role: Perk = { target: "discord", scope: "g1", kind: "role", value: "premium" };
const rank: Perk = { target: "minecraft", scope: "survival", kind: "group", value: "vip" };
const trialRole: Perk = { target: "discord", scope: "g1", kind: "role", value: "trial" };

const plans = new Map<string, PlanRules>([
  ["plan_premium", { id: "plan_premium", perks: [role, rank], graceMs: 0, honorPaidPeriod: false }],
  ["plan_trial", { id: "plan_trial", perks: [role, rank], trialPerks: [trialRole], graceMs: 0, honorPaidPeriod: false }],
  ["plan_grace", { id: "plan_grace", perks: [role], graceMs: 24 * HOUR, honorPaidPeriod: false }],
  ["plan_paid", { id: "plan_paid", perks: [role], graceMs: 24 * HOUR, honorPaidPeriod: true }],
  ["plan_free", { id: "plan_free", perks: [], graceMs: 0, honorPaidPeriod: false }],
]);

/** Stands for "no plan" in the tables, since an optional property cannot be set to undefined. */
const NO_PLAN = "(none)";

function member(over: Partial<Member>): Member {
  const { planId, ...rest } = {
    source: "paymenthub",
    id: "mem_1",
    status: "active",
    planId: "plan_premium",
    identities: {},
    metadata: {},
    statusSince: T0,
    observedAt: T0,
    ...over,
  };
  return planId === NO_PLAN ? rest : { ...rest, planId };
}

describe("desiredPerks", () => {
  it.each<[string, Partial<Member>, number, Desired]>([
    ["active grants the plan's perks", {}, T0, { kind: "entitled", perks: [role, rank], reason: "plan_premium active" }],
    ["status is matched case-insensitively", { status: "ACTIVE" }, T0, { kind: "entitled", perks: [role, rank], reason: "plan_premium ACTIVE" }],
    ["a plan granting nothing", { planId: "plan_free" }, T0, { kind: "entitled", perks: [], reason: "plan_free active" }],
    [
      "trial grants the trial perks and asks to look again when it ends",
      { planId: "plan_trial", status: "trial", trialEndsAt: T0 + 7 * 24 * HOUR },
      T0,
      { kind: "entitled", perks: [trialRole], reason: "plan_trial trial", next: { at: T0 + 7 * 24 * HOUR, cause: "trial-ends" } },
    ],
    [
      "trialing defaults to the plan's perks",
      { status: "trialing", trialEndsAt: T0 + HOUR },
      T0,
      { kind: "entitled", perks: [role, rank], reason: "plan_premium trialing", next: { at: T0 + HOUR, cause: "trial-ends" } },
    ],
    [
      "a trial past its end date still grants: only a status read revokes",
      { status: "trial", trialEndsAt: T0 },
      T0 + HOUR,
      { kind: "entitled", perks: [role, rank], reason: "plan_premium trial" },
    ],
    ["trial without an end date", { status: "trial" }, T0, { kind: "entitled", perks: [role, rank], reason: "plan_premium trial" }],
    ["canceled without grace revokes at once", { status: "canceled" }, T0, { kind: "not-entitled", reason: "plan_premium canceled" }],
    ["cancelled (British) revokes", { status: "cancelled" }, T0, { kind: "not-entitled", reason: "plan_premium cancelled" }],
    ["expired revokes", { status: "expired" }, T0 + 1, { kind: "not-entitled", reason: "plan_premium expired" }],
    [
      "canceled keeps the perks during grace",
      { planId: "plan_grace", status: "canceled" },
      T0 + 24 * HOUR - 1,
      {
        kind: "entitled",
        perks: [role],
        reason: "plan_grace canceled, kept until 2024-01-16T10:30:00.000Z (grace)",
        next: { at: T0 + 24 * HOUR, cause: "grace-ends" },
      },
    ],
    ["grace ends exactly at statusSince + graceMs", { planId: "plan_grace", status: "canceled" }, T0 + 24 * HOUR, { kind: "not-entitled", reason: "plan_grace canceled" }],
    [
      "honor_paid_period keeps the perks until the paid period ends",
      { planId: "plan_paid", status: "canceled", paidUntil: T0 + 72 * HOUR },
      T0 + 48 * HOUR,
      {
        kind: "entitled",
        perks: [role],
        reason: "plan_paid canceled, kept until 2024-01-18T10:30:00.000Z (paid period)",
        next: { at: T0 + 72 * HOUR, cause: "paid-period-ends" },
      },
    ],
    ["and revokes when it has ended", { planId: "plan_paid", status: "canceled", paidUntil: T0 + 72 * HOUR }, T0 + 72 * HOUR, { kind: "not-entitled", reason: "plan_paid canceled" }],
    [
      "a paid period shorter than the grace leaves the grace",
      { planId: "plan_paid", status: "deleted", paidUntil: T0 + HOUR },
      T0 + 2 * HOUR,
      { kind: "entitled", perks: [role], reason: "plan_paid deleted, kept until 2024-01-16T10:30:00.000Z (grace)", next: { at: T0 + 24 * HOUR, cause: "grace-ends" } },
    ],
    [
      "honor_paid_period without a known end is just the grace",
      { planId: "plan_paid", status: "canceled" },
      T0 + 24 * HOUR,
      { kind: "not-entitled", reason: "plan_paid canceled" },
    ],
    [
      "without honor_paid_period the paid period is ignored",
      { planId: "plan_grace", status: "canceled", paidUntil: T0 + 72 * HOUR },
      T0 + 24 * HOUR,
      { kind: "not-entitled", reason: "plan_grace canceled" },
    ],
    ["a member confirmed gone revokes whatever its status", { gone: true }, T0, { kind: "not-entitled", reason: "plan_premium gone" }],
    ["gone even with an unknown status", { gone: true, status: "weird" }, T0, { kind: "not-entitled", reason: "plan_premium gone" }],
    [
      "gone keeps the grace",
      { gone: true, planId: "plan_grace" },
      T0,
      { kind: "entitled", perks: [role], reason: "plan_grace gone, kept until 2024-01-16T10:30:00.000Z (grace)", next: { at: T0 + 24 * HOUR, cause: "grace-ends" } },
    ],
    ["no plan and active: nothing justifies perks", { planId: NO_PLAN }, T0, { kind: "not-entitled", reason: "no plan, active" }],
    ["no plan and canceled", { planId: NO_PLAN, status: "canceled" }, T0, { kind: "not-entitled", reason: "no plan, canceled" }],
  ])("%s", (_name, over, now, expected) => {
    expect(desiredPerks(member(over), plans, now)).toEqual(expected);
  });

  it.each<[string, Partial<Member>, RegExp]>([
    ["an unknown status", { status: "past_due" }, /^unknown status "past_due" of paymenthub:mem_1: .*status policy/],
    ["an unknown plan", { planId: "plan_x" }, /^unknown plan plan_x of paymenthub:mem_1: add it to the config, with `perks: \[\]`/],
    ["an unknown plan even when canceled", { planId: "plan_x", status: "canceled" }, /^unknown plan plan_x/],
  ])("%s is frozen", (_name, over, reason) => {
    const out = desiredPerks(member(over), plans, T0);
    expect(out.kind).toBe("frozen");
    expect(out.reason).toMatch(reason);
  });

  it("maps platform-specific statuses through a policy", () => {
    const policy = { grant: ["paid"], trial: [], revoke: ["refunded"] };
    expect(desiredPerks(member({ status: "paid" }), plans, T0, policy).kind).toBe("entitled");
    expect(desiredPerks(member({ status: "Refunded" }), plans, T0, policy).kind).toBe("not-entitled");
    expect(desiredPerks(member({ status: "active" }), plans, T0, policy).kind).toBe("frozen");
    expect(defaultStatusPolicy.grant).toEqual(["active"]);
  });

  it("is pure, and a revoking status never grants after its end nor revokes before it", () => {
    const statuses = ["active", "trial", "trialing", "canceled", "deleted", "expired", "past_due"];
    fc.assert(
      fc.property(
        fc.constantFrom(...statuses),
        fc.constantFrom("plan_premium", "plan_trial", "plan_grace", "plan_paid", "plan_free", "plan_x"),
        fc.boolean(),
        fc.integer({ min: 0, max: 200 * HOUR }),
        fc.option(fc.integer({ min: 0, max: 200 * HOUR }), { nil: undefined }),
        (status, planId, gone, offset, paid) => {
          const m = member({ status, planId, gone, ...(paid === undefined ? {} : { paidUntil: T0 + paid }) });
          const a = desiredPerks(m, plans, T0 + offset);
          expect(desiredPerks(m, plans, T0 + offset)).toEqual(a);
          const plan = plans.get(planId);
          const revoking = gone || ["canceled", "deleted", "expired"].includes(status);
          if (plan === undefined || (!revoking && status === "past_due")) {
            expect(a.kind).toBe("frozen");
          } else if (!revoking) {
            expect(a.kind).toBe("entitled");
          } else {
            const end = Math.max(T0 + plan.graceMs, plan.honorPaidPeriod && paid !== undefined ? T0 + paid : 0);
            expect(a.kind).toBe(T0 + offset < end ? "entitled" : "not-entitled");
            if (a.kind === "entitled") expect(a.next?.at).toBe(end);
          }
        },
      ),
    );
  });
});
