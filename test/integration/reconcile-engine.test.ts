import { afterEach, describe, expect, it } from "vitest";
import { signPayload } from "../../src/sources/paymenthub/verify-signature.js";
import { premiumMember, SECRETS, startHarness, type Harness } from "./harness.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const held = (harness: Harness, id: string) => harness.receiver.held.has(`member:paymenthub:${id}|event:`);

async function post(harness: Harness, body: string, signature: string | undefined): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (signature !== undefined) headers["x-paymenthub-signature"] = signature;
  const res = await fetch(`${harness.daemon.url}/webhooks/paymenthub`, { method: "POST", headers, body });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

function event(id: string, type: string, data: Record<string, unknown>, created = new Date()): string {
  return JSON.stringify({ id, type, created: created.toISOString(), data });
}

describe("reconcile engine end to end (PaymentHub emulator → daemon → http receiver)", () => {
  it("grants on purchase and revokes on cancellation", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_1"));
    await h.settle();
    expect(held(h, "mem_1")).toBe(true);
    expect(h.engine.grantsOf("paymenthub:mem_1")).toHaveLength(1);

    h.emulator.cancelSubscription("mem_1", "requested");
    await h.settle();
    expect(held(h, "mem_1")).toBe(false);
    expect(h.engine.grantsOf("paymenthub:mem_1")).toHaveLength(0);
  });

  it("a plan without perks grants nothing, and a downgrade revokes", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_2", { plan_id: "plan_basic" }));
    await h.settle();
    expect(held(h, "mem_2")).toBe(false);
    h.emulator.updateMember("mem_2", { plan_id: "plan_premium" });
    await h.settle();
    expect(held(h, "mem_2")).toBe(true);
    h.emulator.updateMember("mem_2", { plan_id: "plan_basic" });
    await h.settle();
    expect(held(h, "mem_2")).toBe(false);
  });

  it("rejects forged and malformed signatures with 401 and changes nothing", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_3", { status: "canceled" }), { emit: false });
    const body = event("evt_forged", "member.updated", { member: premiumMember("mem_3") });
    const good = signPayload(body, SECRETS.webhook);
    const forged = [
      undefined,
      "",
      "sha256=",
      "sha256=zz",
      signPayload(body, "not-the-secret"),
      good.slice(0, -1),
      good + "0",
      good.replace("sha256=", "sha1="),
      "sha256=" + "0".repeat(64),
      "sha256=" + "a".repeat(10_000),
    ];
    for (const signature of forged) expect((await post(h, body, signature)).status).toBe(401);
    await h.settle();
    expect(h.receiver.received).toHaveLength(0);
    expect(h.engine.member("paymenthub:mem_3")).toBeUndefined();
    // A tampered body under a valid signature is forged too.
    expect((await post(h, body.replace("mem_3", "mem_4"), good)).status).toBe(401);
  });

  it("answers 400 with a reason for invalid JSON and schema failures, and acknowledges unknown types", async () => {
    h = await startHarness();
    const bad = "{not json";
    const res = await post(h, bad, signPayload(bad, SECRETS.webhook));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/json/i);
    const noId = JSON.stringify({ type: "member.created", data: {} });
    expect((await post(h, noId, signPayload(noId, SECRETS.webhook))).status).toBe(400);
    const unknown = event("evt_unknown", "coupon.redeemed", {});
    const ack = await post(h, unknown, signPayload(unknown, SECRETS.webhook));
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ result: "ignored-type" });
  });

  it("applies the same event once, delivered many times sequentially, concurrently and after a restart", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_5"), { emit: false });
    const body = event("evt_dup", "member.created", { member: h.emulator.getMember("mem_5") });
    const sig = signPayload(body, SECRETS.webhook);
    const first = await post(h, body, sig);
    expect(first.status).toBe(202);
    for (let i = 0; i < 5; i++) expect((await post(h, body, sig)).body).toMatchObject({ result: "duplicate" });
    const concurrent = await Promise.all(Array.from({ length: 20 }, () => post(h as Harness, body, sig)));
    expect(concurrent.every((r) => r.status === 200 || r.status === 202)).toBe(true);
    await h.settle();
    await h.restart();
    expect((await post(h, body, sig)).body).toMatchObject({ result: "duplicate" });
    await h.settle();
    const grants = h.receiver.received.filter((e) => e.subject === "member:paymenthub:mem_5" && e.type === "grant");
    expect(grants).toHaveLength(1);
  });

  it("acknowledges and ignores events older than event_max_age or from the future", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_6"), { emit: false });
    const old = event("evt_old", "member.created", { member: h.emulator.getMember("mem_6") }, new Date(Date.now() - 73 * 3600_000));
    expect((await post(h, old, signPayload(old, SECRETS.webhook))).body).toMatchObject({ result: "stale" });
    const future = event("evt_future", "member.created", { member: h.emulator.getMember("mem_6") }, new Date(Date.now() + 3600_000));
    expect((await post(h, future, signPayload(future, SECRETS.webhook))).body).toMatchObject({ result: "future" });
    await h.settle();
    expect(h.receiver.received).toHaveLength(0);
    expect(h.logs.join("")).toMatch(/older than event_max_age/);
  });

  it("never lets a stale payload override newer state: every order converges", async () => {
    h = await startHarness();
    const wire = premiumMember("mem_7");
    const t0 = new Date(Date.now() - 60_000);
    const t1 = new Date(Date.now() - 30_000);
    h.emulator.addMember({ ...wire, status: "canceled" }, { emit: false });
    const active = event("evt_a", "member.updated", { member: { ...wire, status: "active" } }, t0);
    const canceled = event("evt_b", "member.updated", { member: { ...wire, status: "canceled" } }, t1);
    // Newer first, then the older one arrives late.
    await post(h, canceled, signPayload(canceled, SECRETS.webhook));
    await h.settle();
    await post(h, active, signPayload(active, SECRETS.webhook));
    await h.settle();
    expect(held(h, "mem_7")).toBe(false);
    expect(h.engine.member("paymenthub:mem_7")?.status).toBe("canceled");
  });

  it("converges to the newest state whatever order the payloads arrive in", async () => {
    h = await startHarness();
    const t = [90_000, 60_000, 30_000].map((ago) => new Date(Date.now() - ago));
    const states = [
      { status: "active", plan_id: "plan_premium" },
      { status: "canceled", plan_id: "plan_premium" },
      { status: "active", plan_id: "plan_basic" },
    ];
    const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    // Two finals: the newest state grants nothing (basic), or grants (premium, after a cancellation).
    const finals = { basic: { status: "active", plan_id: "plan_basic" }, premium: { status: "active", plan_id: "plan_premium" } } as const;
    for (const [variant, final] of Object.entries(finals)) {
      const chain = [states[0], states[1], final];
      for (const [n, order] of orders.entries()) {
        const id = `mem_o_${variant}_${n}`;
        h.emulator.addMember(premiumMember(id, final), { emit: false });
        for (const i of order) {
          const body = event(`evt_${id}_${i}`, "member.updated", { member: premiumMember(id, chain[i]) }, t[i]);
          expect((await post(h, body, signPayload(body, SECRETS.webhook))).status).toBe(202);
          await h.settle();
        }
        expect(h.engine.member(`paymenthub:${id}`), `${variant} order ${order.join("")}`).toMatchObject({ status: final.status, planId: final.plan_id });
        expect(held(h, id), `${variant} order ${order.join("")}`).toBe(variant === "premium");
      }
    }
  });

  it("revokes on member.deleted only once a direct lookup confirms the member is gone", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_8"));
    await h.settle();
    expect(held(h, "mem_8")).toBe(true);
    // A deletion event for a member who is still there (a hint, not truth) revokes nothing.
    const hint = event("evt_del_hint", "member.deleted", { member_id: "mem_8", reason: "test" });
    await post(h, hint, signPayload(hint, SECRETS.webhook));
    await h.settle();
    expect(held(h, "mem_8")).toBe(true);
    h.emulator.deleteMember("mem_8", "gdpr");
    await h.settle();
    expect(held(h, "mem_8")).toBe(false);
    expect(h.engine.member("paymenthub:mem_8")?.gone).toBe(true);
  });

  it("keeps perks when the API is down for a lookup, and converges once it is back", async () => {
    h = await startHarness();
    h.emulator.addMember(premiumMember("mem_9"));
    await h.settle();
    h.emulator.faults.failNext(20, 503);
    const hint = event("evt_lookup", "payment.failed", { payment: { id: "pay_1", member_id: "mem_9" } });
    await post(h, hint, signPayload(hint, SECRETS.webhook));
    await new Promise((r) => setTimeout(r, 200));
    expect(held(h, "mem_9")).toBe(true);
    h.emulator.faults.failNext(0, 503);
    h.emulator.cancelSubscription("mem_9", "payment failed", { emit: false });
    // The lookup is retried and then sees the cancellation.
    for (let i = 0; i < 100 && held(h, "mem_9"); i++) await new Promise((r) => setTimeout(r, 50));
    expect(held(h, "mem_9")).toBe(false);
  });

  it("retries an action whose target fails, and parks nothing that succeeds later", async () => {
    h = await startHarness();
    h.receiver.failNext(3, 503);
    h.emulator.addMember(premiumMember("mem_10"));
    for (let i = 0; i < 100 && !held(h, "mem_10"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(held(h, "mem_10")).toBe(true);
    await h.settle();
    const rec = [...h.engine.queue.all()].find((r) => r.action.subject === "member:paymenthub:mem_10");
    expect(rec?.state).toBe("done");
    expect(rec?.attempts).toBe(4);
  });

  it("holds revocations past the mass-revoke limit until an operator confirms", async () => {
    h = await startHarness({ policyYaml: "policy: { mass_revoke: { min: 2, share: 0.01 } }" });
    for (let i = 0; i < 5; i++) h.emulator.addMember(premiumMember(`mem_g${i}`));
    await h.settle();
    for (let i = 0; i < 5; i++) h.emulator.cancelSubscription(`mem_g${i}`);
    await h.settle();
    const stillHeld = [0, 1, 2, 3, 4].filter((i) => held(h as Harness, `mem_g${i}`));
    expect(stillHeld).toHaveLength(3);
    expect(h.engine.held()).toHaveLength(3);
    // Time alone releases nothing; a member entitled again drops its held revocation.
    const [first] = stillHeld;
    h.emulator.updateMember(`mem_g${first}`, { status: "active" });
    await h.settle();
    expect(h.engine.held()).toHaveLength(2);
    expect(await h.engine.confirm("all")).toBe(2);
    await h.settle();
    expect([0, 1, 2, 3, 4].filter((i) => held(h as Harness, `mem_g${i}`))).toEqual([first]);
  });
});
