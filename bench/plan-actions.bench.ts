// planActions over 100k members with one perk on each of three targets: the
// first pass grants everything, the second finds nothing to do (the steady
// state of a full resync), the third revokes everything. Each member costs
// desiredPerks + planActions + applying its ledger changes in place, as in
// the daemon. Heap figures are heapUsed deltas without a forced GC, so they
// are indicative only.
import { KeyIndex } from "../src/core/key-index.js";
import { desiredPerks } from "../src/core/desired-perks.js";
import { applyLedgerChangesInPlace, ledgerKeysOfMember, type LedgerEntry } from "../src/core/ledger.js";
import { memberKey, type Member } from "../src/core/member.js";
import type { Perk, PlanRules } from "../src/core/perk.js";
import { planActions, type ActionPlan } from "../src/core/plan-actions.js";
import { msSince, type Bench, type BenchEntry } from "./lib.js";

const N = 100_000;
const NOW = 1_700_000_000_000;

const perks: Perk[] = [
  { target: "discord", scope: "111111111111111111", kind: "role", value: "222222222222222222" },
  { target: "minecraft", scope: "survival", kind: "group", value: "vip" },
  { target: "fivem", scope: "rp", kind: "ace", value: "vip" },
];
const plans = new Map<string, PlanRules>([["plan_premium", { id: "plan_premium", perks, graceMs: 0, honorPaidPeriod: false }]]);

function member(i: number, status: string): Member {
  const hex = i.toString(16).padStart(32, "0");
  return {
    source: "paymenthub",
    id: `mem_${i}`,
    planId: "plan_premium",
    status,
    identities: {
      discord: String(100_000_000_000_000_000n + BigInt(i)),
      minecraft: { uuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` },
      fivem: [`license:${hex}`],
    },
    metadata: {},
    statusSince: NOW - 1000,
    observedAt: NOW,
  };
}

const bench: Bench = async () => {
  const ledger = new Map<string, LedgerEntry>();
  const index = new KeyIndex();
  const active = Array.from({ length: N }, (_, i) => member(i, "active"));
  const canceled = active.map((m) => ({ ...m, status: "canceled" }));
  const entries: BenchEntry[] = [];

  const pass = (label: string, members: readonly Member[]): void => {
    let actions = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    const start = process.hrtime.bigint();
    for (const m of members) {
      const desired = desiredPerks(m, plans, NOW);
      const plan: ActionPlan = planActions({ member: m, desired, justified: ledgerKeysOfMember(index, memberKey(m)), ledger, now: NOW });
      applyLedgerChangesInPlace(ledger, plan.ledger, index);
      actions += plan.grants.length + plan.revokes.length;
    }
    const ms = msSince(start);
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    process.stderr.write(`  ${label}: ${actions} actions, ledger ${ledger.size} entries\n`);
    entries.push(
      { name: `planActions 100k members ${label}: time`, value: ms, unit: "ms", better: "lower" },
      { name: `planActions 100k members ${label}: per member`, value: (ms * 1000) / members.length, unit: "µs", better: "lower" },
      { name: `planActions 100k members ${label}: heap delta`, value: heapMb, unit: "MB", better: "lower" },
    );
  };

  pass("grant all", active);
  pass("steady", active);
  pass("revoke all", canceled);
  return entries;
};

export default bench;
