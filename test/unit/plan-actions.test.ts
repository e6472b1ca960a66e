import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Desired } from "../../src/core/desired-perks.js";
import { subjectFor } from "../../src/core/identities.js";
import {
  applyLedgerChanges,
  applyLedgerChangesInPlace,
  indexByMember,
  ledgerKey,
  ledgerKeysOfMember,
  markPreExisting,
  orphanedGrants,
  type LedgerEntry,
} from "../../src/core/ledger.js";
import { KeyIndex } from "../../src/core/key-index.js";
import { memberKey, type Identities } from "../../src/core/member.js";
import type { Perk, PlanRules } from "../../src/core/perk.js";
import { planActions, type ActionPlan, type PlanInput } from "../../src/core/plan-actions.js";

const NOW = 1_700_000_000_000;
const UUID_A = "069a79f4-44e9-4726-a5be-fca90e38aaf5";
const UUID_B = "853c80ef-3c37-49fd-aa49-938b674adae6";

const role: Perk = { target: "discord", scope: "g1", kind: "role", value: "premium" };
const role2: Perk = { target: "discord", scope: "g1", kind: "role", value: "og" };
const rank: Perk = { target: "minecraft", scope: "survival", kind: "group", value: "vip" };
const ace: Perk = { target: "fivem", scope: "rp", kind: "ace", value: "vip" };
const hook: Perk = { target: "http", scope: "shop", kind: "event", value: "premium" };
const ALL_PERKS = [role, role2, rank, ace, hook];

const A = { source: "paymenthub", id: "mem_a" };
const B = { source: "paymentkit", id: "mem_b" };
const KA = memberKey(A);
const KB = memberKey(B);

const entitled = (...perks: Perk[]): Desired => ({ kind: "entitled", perks, reason: "plan_premium active" });
const notEntitled: Desired = { kind: "not-entitled", reason: "plan_premium canceled" };
const frozen: Desired = { kind: "frozen", reason: "unknown status" };

type Ledger = Map<string, LedgerEntry>;

function entry(subject: string, perk: Perk, members: string[], preExisting = false): [string, LedgerEntry] {
  return [ledgerKey(subject, perk), { subject, perk, members, preExisting, grantedAt: NOW - 1000 }];
}

/** Plans one member the way the daemon does: its justified keys come from the member index. */
function plan(
  ledger: Ledger,
  who: { source: string; id: string },
  identities: Identities,
  desired: Desired,
  adoptExisting?: PlanInput["adoptExisting"],
): ActionPlan {
  const member = { ...who, identities };
  const justified = ledgerKeysOfMember(indexByMember(ledger), memberKey(who));
  return planActions({ member, desired, justified, ledger, now: NOW, ...(adoptExisting === undefined ? {} : { adoptExisting }) });
}

const summary = (p: ActionPlan) => ({
  grants: p.grants.map((a) => `${a.subject} ${a.perk.value} [${a.members.join(",")}]`),
  revokes: p.revokes.map((a) => `${a.subject} ${a.perk.value} [${a.members.join(",")}]`),
  ledger: p.ledger.map((c) => (c.op === "delete" ? `delete ${c.key}` : `upsert ${c.key} [${c.entry.members.join(",")}]${c.entry.preExisting ? " pre" : ""}`)),
});

describe("planActions", () => {
  const ids: Identities = { discord: "42", minecraft: { uuid: UUID_A, name: "Notch" }, fivem: ["license:aa", "steam:11"] };

  it.each<[string, [string, LedgerEntry][], Identities, Desired, ReturnType<typeof summary>]>([
    [
      "grants a desired perk absent from the ledger, on every target",
      [],
      ids,
      entitled(role, rank, ace, hook),
      {
        grants: ["discord:42 premium [paymenthub:mem_a]", `minecraft:${UUID_A} vip [paymenthub:mem_a]`, "fivem:license:aa vip [paymenthub:mem_a]", "member:paymenthub:mem_a premium [paymenthub:mem_a]"],
        revokes: [],
        ledger: [
          `upsert discord:42|discord:g1:role:premium [paymenthub:mem_a]`,
          `upsert minecraft:${UUID_A}|minecraft:survival:group:vip [paymenthub:mem_a]`,
          `upsert fivem:license:aa|fivem:rp:ace:vip [paymenthub:mem_a]`,
          `upsert member:paymenthub:mem_a|http:shop:event:premium [paymenthub:mem_a]`,
        ],
      },
    ],
    ["a perk listed twice is granted once", [], ids, entitled(role, { ...role, params: { x: 1 } }), {
      grants: ["discord:42 premium [paymenthub:mem_a]"], revokes: [], ledger: ["upsert discord:42|discord:g1:role:premium [paymenthub:mem_a]"],
    }],
    ["an entry another member justifies only gains this member", [entry("discord:42", role, [KB])], ids, entitled(role), {
      grants: [], revokes: [], ledger: ["upsert discord:42|discord:g1:role:premium [paymenthub:mem_a,paymentkit:mem_b]"],
    }],
    ["keeps pre-existing and sorted members when joining", [entry("discord:42", role, ["zzz:1"], true)], ids, entitled(role), {
      grants: [], revokes: [], ledger: ["upsert discord:42|discord:g1:role:premium [paymenthub:mem_a,zzz:1] pre"],
    }],
    ["nothing to do when already justified", [entry("discord:42", role, [KA])], ids, entitled(role), { grants: [], revokes: [], ledger: [] }],
    ["revokes only what the ledger granted: a hand-set role is not in it", [], ids, notEntitled, { grants: [], revokes: [], ledger: [] }],
    ["not-entitled lets go of every justification", [entry("discord:42", role, [KA]), entry(`minecraft:${UUID_A}`, rank, [KA]), entry("discord:42", role2, [KA, KB])], ids, notEntitled, {
      grants: [],
      revokes: ["discord:42 premium [paymenthub:mem_a]", `minecraft:${UUID_A} vip [paymenthub:mem_a]`],
      ledger: ["delete discord:42|discord:g1:role:premium", `delete minecraft:${UUID_A}|minecraft:survival:group:vip`, "upsert discord:42|discord:g1:role:og [paymentkit:mem_b]"],
    }],
    ["union: another member still justifies it, so no revoke", [entry("discord:42", role, [KA, KB])], ids, notEntitled, {
      grants: [], revokes: [], ledger: ["upsert discord:42|discord:g1:role:premium [paymentkit:mem_b]"],
    }],
    ["a pre-existing perk leaves the ledger without a revoke", [entry("discord:42", role, [KA], true)], ids, notEntitled, {
      grants: [], revokes: [], ledger: ["delete discord:42|discord:g1:role:premium"],
    }],
    ["plan downgrade revokes what the new plan lacks", [entry("discord:42", role, [KA]), entry("discord:42", role2, [KA])], ids, entitled(role), {
      grants: [], revokes: ["discord:42 og [paymenthub:mem_a]"], ledger: ["delete discord:42|discord:g1:role:og"],
    }],
    ["a changed Discord id: the old subject loses it, the new one gains it", [entry("discord:41", role, [KA])], ids, entitled(role), {
      grants: ["discord:42 premium [paymenthub:mem_a]"],
      revokes: ["discord:41 premium [paymenthub:mem_a]"],
      ledger: ["upsert discord:42|discord:g1:role:premium [paymenthub:mem_a]", "delete discord:41|discord:g1:role:premium"],
    }],
    ["frozen changes nothing, not even with grants on record", [entry("discord:42", role, [KA]), entry("discord:42", role2, [KA])], ids, frozen, { grants: [], revokes: [], ledger: [] }],
    ["a missing identity keeps what the member holds on that target", [entry(`minecraft:${UUID_B}`, rank, [KA])], { discord: "42" }, entitled(role), {
      grants: ["discord:42 premium [paymenthub:mem_a]"], revokes: [], ledger: ["upsert discord:42|discord:g1:role:premium [paymenthub:mem_a]"],
    }],
    ["a missing identity does not keep anything once not entitled", [entry(`minecraft:${UUID_B}`, rank, [KA])], {}, notEntitled, {
      grants: [], revokes: [`minecraft:${UUID_B} vip [paymenthub:mem_a]`], ledger: [`delete minecraft:${UUID_B}|minecraft:survival:group:vip`],
    }],
  ])("%s", (_name, entries, identities, desired, expected) => {
    const ledger: Ledger = new Map(entries);
    expect(summary(plan(ledger, A, identities, desired))).toEqual(expected);
  });

  it("carries the reason of the decision on every action", () => {
    const ledger: Ledger = new Map([entry("discord:41", role, [KA]), entry("discord:42", role2, [KA])]);
    const p = plan(ledger, A, ids, entitled(role));
    expect(p.grants.map((a) => [a.type, a.reason])).toEqual([["grant", "plan_premium active"]]);
    expect(p.revokes.map((a) => [a.type, a.reason])).toEqual([
      ["revoke", "plan_premium active: identity changed from discord:41 to discord:42"],
      ["revoke", "plan_premium active: discord:g1:role:og is no longer in the plan"],
    ]);
    expect(plan(ledger, A, ids, notEntitled).revokes.map((a) => a.reason)).toEqual(["plan_premium canceled", "plan_premium canceled"]);
  });

  it("records new grants at planning time, not pre-existing", () => {
    const [change] = plan(new Map(), A, ids, entitled(role)).ledger;
    expect(change).toEqual({
      op: "upsert",
      key: "discord:42|discord:g1:role:premium",
      entry: { subject: "discord:42", perk: role, members: [KA], preExisting: false, grantedAt: NOW },
    });
  });

  it.each<[string, PlanInput["adoptExisting"], number]>([
    ["adopt_existing on", true, 1],
    ["adopt_existing off", false, 0],
    ["adopt_existing for discord only", (p: Perk) => p.target === "discord", 1],
    ["adopt_existing for minecraft only", (p: Perk) => p.target === "minecraft", 0],
  ])("a pre-existing perk with %s: %i revokes", (_name, adopt, revokes) => {
    const ledger: Ledger = new Map([entry("discord:42", role, [KA], true)]);
    const p = plan(ledger, A, ids, notEntitled, adopt);
    expect(p.revokes).toHaveLength(revokes);
    expect(p.ledger).toEqual([{ op: "delete", key: "discord:42|discord:g1:role:premium" }]);
  });

  it("waits for a missing identity, and grants once it arrives", () => {
    let ledger: Ledger = new Map();
    const first = plan(ledger, A, { discord: "42" }, entitled(role, rank, ace));
    expect(first.grants.map((g) => g.subject)).toEqual(["discord:42"]);
    expect(first.pending).toEqual([
      { perk: rank, reason: expect.stringMatching(/^waiting: no Minecraft account on the member record/) },
      { perk: ace, reason: expect.stringMatching(/^waiting: no FiveM identifier/) },
    ]);
    ledger = applyLedgerChanges(ledger, first.ledger);
    const later = plan(ledger, A, { discord: "42", minecraft: { uuid: UUID_A } }, entitled(role, rank, ace));
    expect(summary(later).grants).toEqual([`minecraft:${UUID_A} vip [paymenthub:mem_a]`]);
    expect(later.revokes).toEqual([]);
    expect(later.pending).toHaveLength(1);
  });

  it("frozen reports nothing pending either", () => {
    expect(plan(new Map(), A, {}, frozen)).toEqual({ grants: [], revokes: [], ledger: [], pending: [] });
  });

  it("ignores index keys the ledger no longer backs", () => {
    const ledger: Ledger = new Map([entry("discord:42", role, [KB])]);
    const p = planActions({
      member: { ...A, identities: ids },
      desired: notEntitled,
      justified: ["discord:42|discord:g1:role:premium", "gone|key"],
      ledger,
      now: NOW,
    });
    expect(p).toEqual({ grants: [], revokes: [], ledger: [], pending: [] });
  });

  it("union across sources: revoke happens only when the last member lets go", () => {
    let ledger: Ledger = new Map();
    const step = (who: typeof A, desired: Desired): ActionPlan => {
      const p = plan(ledger, who, { discord: "42" }, desired);
      ledger = applyLedgerChanges(ledger, p.ledger);
      return p;
    };
    expect(step(A, entitled(role)).grants).toHaveLength(1);
    expect(step(B, entitled(role)).grants).toHaveLength(0);
    expect(step(A, notEntitled).revokes).toHaveLength(0);
    expect(ledger.get("discord:42|discord:g1:role:premium")?.members).toEqual([KB]);
    expect(step(B, notEntitled).revokes).toHaveLength(1);
    expect(ledger.size).toBe(0);
  });
});

describe("ledger helpers", () => {
  it("applyLedgerChanges leaves its input alone", () => {
    const before: Ledger = new Map([entry("discord:1", role, [KA])]);
    const after = applyLedgerChanges(before, [{ op: "delete", key: ledgerKey("discord:1", role) }]);
    expect(before.size).toBe(1);
    expect(after.size).toBe(0);
  });

  it("applyLedgerChangesInPlace keeps the member index in step", () => {
    const ledger: Ledger = new Map([entry("discord:1", role, [KA, KB])]);
    const index = indexByMember(ledger);
    const [k, e] = entry("discord:1", role, [KB]);
    applyLedgerChangesInPlace(ledger, [{ op: "upsert", key: k, entry: e }], index);
    expect(ledgerKeysOfMember(index, KA)).toEqual([]);
    expect(ledgerKeysOfMember(index, KB)).toEqual([k]);
    applyLedgerChangesInPlace(ledger, [{ op: "delete", key: k }, { op: "delete", key: "absent" }], index);
    expect(index.size).toBe(0);
    applyLedgerChangesInPlace(ledger, [{ op: "upsert", key: k, entry: e }]);
    expect(ledger.get(k)).toBe(e);
  });

  it("markPreExisting marks an entry once, and not a missing one", () => {
    const ledger: Ledger = new Map([entry("discord:1", role, [KA])]);
    const key = ledgerKey("discord:1", role);
    const change = markPreExisting(ledger, key);
    expect(change).toEqual({ op: "upsert", key, entry: { ...ledger.get(key), preExisting: true } });
    const marked = applyLedgerChanges(ledger, change === undefined ? [] : [change]);
    expect(markPreExisting(marked, key)).toBeUndefined();
    expect(markPreExisting(ledger, "nope")).toBeUndefined();
  });

  it("orphanedGrants lists entries whose perk no plan has, trial perks included", () => {
    const plans = new Map<string, PlanRules>([
      ["p", { id: "p", perks: [role], trialPerks: [rank], graceMs: 0, honorPaidPeriod: false }],
      ["q", { id: "q", perks: [{ ...ace, params: { changed: true } }], graceMs: 0, honorPaidPeriod: false }],
    ]);
    const ledger = new Map([entry("discord:1", role, [KA]), entry("discord:1", role2, [KA]), entry(`minecraft:${UUID_A}`, rank, [KA]), entry("fivem:license:aa", ace, [KA])]);
    expect(orphanedGrants(ledger.values(), plans).map((e) => e.perk)).toEqual([role2]);
  });
});

// ---- properties over random members, plans and ledgers ----

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const identitiesArb = (full: boolean): fc.Arbitrary<Identities> =>
  fc
    .record({
      discord: full ? fc.constantFrom("1", "2") : maybe(fc.constantFrom("1", "2")),
      uuid: full ? fc.constantFrom(UUID_A, UUID_B) : maybe(fc.constantFrom(UUID_A, UUID_B)),
      fivem: fc.subarray(["license:aa", "license:bb", "steam:11"], { minLength: full ? 1 : 0 }),
    })
    .map(({ discord, uuid, fivem }) => ({
      ...(discord === undefined ? {} : { discord }),
      ...(uuid === undefined ? {} : { minecraft: { uuid } }),
      ...(fivem.length === 0 ? {} : { fivem: [...fivem].sort() }),
    }));
const desiredArb = (withFrozen: boolean): fc.Arbitrary<Desired> =>
  fc.oneof(
    fc.subarray(ALL_PERKS).map((perks): Desired => ({ kind: "entitled", perks, reason: "p active" })),
    fc.constant<Desired>(notEntitled),
    ...(withFrozen ? [fc.constant<Desired>(frozen)] : []),
  );
const MEMBERS = [0, 1, 2, 3].map((i) => ({ source: i % 2 === 0 ? "paymenthub" : "paymentkit", id: `m${i}` }));
const stepArb = fc.record({ who: fc.nat({ max: 3 }), identities: identitiesArb(false), desired: desiredArb(true) });
const allKeys = ["1", "2"].flatMap((d) => [ledgerKey(`discord:${d}`, role), ledgerKey(`discord:${d}`, role2)]).concat(
  [UUID_A, UUID_B].map((u) => ledgerKey(`minecraft:${u}`, rank)),
  ["license:aa", "license:bb", "steam:11"].map((f) => ledgerKey(`fivem:${f}`, ace)),
);
const scenarioArb = fc.record({
  steps: fc.array(stepArb, { maxLength: 25 }),
  finals: fc.tuple(...MEMBERS.map(() => fc.record({ identities: identitiesArb(true), desired: desiredArb(false) }))),
  handSet: fc.subarray(allKeys),
  adopt: fc.boolean(),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** An index as plain data, values sorted: two indexes built in a different order compare equal. */
function indexView(index: KeyIndex): Map<string, string[]> {
  return new Map([...index.keys()].map((key) => [key, index.get(key).sort()]));
}

/** Runs planning against a simulated target that holds perks set by hand too, checking every step. */
function simulate(s: Scenario) {
  const ledger: Ledger = new Map();
  const index = new KeyIndex();
  const world = new Set(s.handSet);
  let now = NOW;
  const run = (who: { source: string; id: string }, identities: Identities, desired: Desired): void => {
    const me = memberKey(who);
    const input = { member: { ...who, identities }, desired, ledger, adoptExisting: s.adopt };
    const p = planActions({ ...input, justified: ledgerKeysOfMember(index, me), now: ++now });
    if (desired.kind === "frozen") expect(p).toEqual({ grants: [], revokes: [], ledger: [], pending: [] });
    for (const r of p.revokes) {
      const e = ledger.get(ledgerKey(r.subject, r.perk));
      expect(e?.members).toEqual([me]);
      if (!s.adopt) expect(e?.preExisting).toBe(false);
    }
    for (const g of p.grants) expect(ledger.has(ledgerKey(g.subject, g.perk))).toBe(false);
    applyLedgerChangesInPlace(ledger, p.ledger, index);
    for (const g of p.grants) {
      const key = ledgerKey(g.subject, g.perk);
      const mark = world.has(key) ? markPreExisting(ledger, key) : undefined;
      if (mark !== undefined) applyLedgerChangesInPlace(ledger, [mark], index);
      world.add(key);
    }
    for (const r of p.revokes) world.delete(ledgerKey(r.subject, r.perk));
    // Idempotent: the same input against the updated ledger plans nothing.
    const again = planActions({ ...input, justified: ledgerKeysOfMember(index, me), now: ++now });
    expect([again.grants, again.revokes, again.ledger]).toEqual([[], [], []]);
    expect(again.pending).toEqual(p.pending);
    expect(indexView(index)).toEqual(indexView(indexByMember(ledger)));
    for (const e of ledger.values()) {
      expect(e.members.length).toBeGreaterThan(0);
      expect(e.members).toEqual([...new Set(e.members)].sort());
    }
  };
  for (const step of s.steps) run(MEMBERS[step.who] as (typeof MEMBERS)[number], step.identities, step.desired);
  s.finals.forEach((f, i) => run(MEMBERS[i] as (typeof MEMBERS)[number], f.identities, f.desired));
  return { ledger, world };
}

describe("planActions properties", () => {
  it("never revokes a hand-set perk unless adopting, is idempotent, and converges to the union of what members justify", () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { ledger, world } = simulate(s);
        const want = new Map<string, string[]>();
        s.finals.forEach((f, i) => {
          if (f.desired.kind !== "entitled") return;
          const m = { ...(MEMBERS[i] as (typeof MEMBERS)[number]), identities: f.identities };
          for (const perk of f.desired.perks) {
            const key = ledgerKey(subjectFor(perk, m) as string, perk);
            want.set(key, [...new Set([...(want.get(key) ?? []), memberKey(m)])].sort());
          }
        });
        expect(new Map([...ledger].map(([k, e]) => [k, e.members]))).toEqual(want);
        const union = new Set([...s.handSet, ...want.keys()]);
        if (!s.adopt) expect(world).toEqual(union);
        for (const key of want.keys()) expect(world.has(key)).toBe(true);
        for (const key of world) expect(union.has(key)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
