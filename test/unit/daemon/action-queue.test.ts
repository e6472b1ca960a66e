import { describe, expect, it } from "vitest";
import type { PerkAction } from "../../../src/core/ports.js";
import { ledgerKey } from "../../../src/core/ledger.js";
import { ActionQueue, type QueuedAction } from "../../../src/daemon/reconcile/action-queue.js";

function mapCollection(): Map<string, QueuedAction> {
  return new Map<string, QueuedAction>();
}

function action(id: string, type: "grant" | "revoke", subject = "discord:1", role = "r1"): PerkAction {
  return { id, type, subject, perk: { target: "discord", scope: "g", kind: "role", value: role }, members: ["paymenthub:m1"], reason: "plan_x active", identities: {} };
}

const opts = { lane: "discord", once: false, cause: "webhook", now: 10 };

describe("ActionQueue", () => {
  it("offers queued actions per lane", () => {
    const q = new ActionQueue(mapCollection());
    q.enqueue(action("a1", "grant"), opts);
    q.enqueue(action("a2", "grant", "discord:2"), { ...opts, lane: "minecraft" });
    expect([...q.ready("discord")]).toEqual(["a1"]);
    expect([...q.ready("minecraft")]).toEqual(["a2"]);
    expect(q.lanes().sort()).toEqual(["discord", "minecraft"]);
  });

  it("supersedes an unsent action for the same subject and perk: the newest plan wins", () => {
    const q = new ActionQueue(mapCollection());
    q.enqueue(action("a1", "grant"), opts);
    q.enqueue(action("a2", "revoke"), opts);
    expect(q.get("a1")?.state).toBe("superseded");
    expect([...q.ready("discord")]).toEqual(["a2"]);
    const probe = action("x", "grant");
    expect(q.openFor(ledgerKey(probe.subject, probe.perk))?.action.id).toBe("a2");
  });

  it("never supersedes a once action already marked as sending", () => {
    const q = new ActionQueue(mapCollection());
    const first = q.enqueue(action("a1", "grant"), { ...opts, once: true });
    q.update(first, "sending", 11);
    q.enqueue(action("a2", "grant"), opts);
    expect(q.get("a1")?.state).toBe("sending");
  });

  it("keeps different perks of one subject apart", () => {
    const q = new ActionQueue(mapCollection());
    q.enqueue(action("a1", "grant", "discord:1", "r1"), opts);
    q.enqueue(action("a2", "grant", "discord:1", "r2"), opts);
    expect(q.ready("discord").size).toBe(2);
  });

  it("rebuilds its indexes from the records on disk", () => {
    const records = mapCollection();
    const q1 = new ActionQueue(records);
    q1.enqueue(action("a1", "grant"), opts);
    const parked = q1.enqueue(action("a2", "grant", "discord:2"), opts);
    q1.update(parked, "parked", 12, { last: { kind: "failed", reason: "50013" } });
    const q2 = new ActionQueue(records);
    expect([...q2.ready("discord")]).toEqual(["a1"]);
    expect(q2.openFor(parked.key)?.state).toBe("parked");
  });

  it("prunes only finished actions older than the retention", () => {
    const q = new ActionQueue(mapCollection());
    const done = q.enqueue(action("a1", "grant"), opts);
    q.update(done, "done", 20);
    q.enqueue(action("a2", "grant", "discord:2"), opts);
    expect(q.prune(1000, 5000)).toBe(0);
    expect(q.prune(6000, 5000)).toBe(1);
    expect(q.get("a1")).toBeUndefined();
    expect(q.get("a2")?.state).toBe("queued");
  });

  it("moves finished actions to the history collection, where only pruning removes them", () => {
    const records = mapCollection();
    const history = mapCollection();
    const q = new ActionQueue(records, history);
    const done = q.enqueue(action("a1", "grant"), opts);
    q.update(done, "done", 20);
    const open = q.enqueue(action("a2", "grant", "discord:2"), opts);
    expect([...records.keys()]).toEqual(["a2"]);
    expect([...history.keys()]).toEqual(["a1"]);
    expect(q.get("a1")?.state).toBe("done");
    expect([...q.open()].map((r) => r.action.id)).toEqual(["a2"]);
    expect([...q.all()].map((r) => r.action.id).sort()).toEqual(["a1", "a2"]);
    expect(q.prune(10_000, 5000)).toBe(1);
    expect(history.size).toBe(0);
    expect(q.get("a2")).toBe(open);
  });

  it("moves finished records left in the hot collection by an older layout on load", () => {
    const records = mapCollection();
    const old = new ActionQueue(records);
    old.update(old.enqueue(action("a1", "grant"), opts), "superseded", 11);
    const history = mapCollection();
    new ActionQueue(records, history);
    expect(records.size).toBe(0);
    expect(history.get("a1")?.state).toBe("superseded");
  });
});
