import { afterEach, describe, expect, it } from "vitest";
import { signPayload } from "../../src/sources/paymenthub/verify-signature.js";
import { premiumMember, SECRETS, startHarness, type Harness } from "./harness.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function post(harness: Harness, body: string, signature: string): Promise<number> {
  const res = await fetch(`${harness.daemon.url}/webhooks/paymenthub`, { method: "POST", headers: { "x-paymenthub-signature": signature }, body });
  await res.arrayBuffer();
  return res.status;
}

/** The samples of one metric family from Prometheus text: `{labels} value` per line, labels as written. */
async function samples(harness: Harness, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${harness.daemon.url}/metrics`)).text();
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match) found.set(match[1] ?? "", Number(match[2]));
  }
  return found;
}

describe("/metrics", () => {
  it("counts webhooks by result, actions by target and result, latency, queue depth, budget, sweeps and the state log", async () => {
    let swept!: () => void;
    const sweptOnce = new Promise<void>((resolve) => (swept = resolve));
    h = await startHarness({ overrides: { sweepOnStart: true, onSweepProgress: (p) => p.finished && swept() } });
    await sweptOnce; // the start-up sweep of an empty PaymentHub
    await h.settle();
    h.emulator.addMember(premiumMember("mem_1")); // a signed member.created, accepted, then a grant
    await h.settle();

    const event = JSON.stringify({ id: "evt_manual", type: "member.updated", created: new Date().toISOString(), data: { member: premiumMember("mem_1") } });
    const signed = signPayload(event, SECRETS.webhook);
    expect(await post(h, event, signed)).toBe(202);
    expect(await post(h, event, signed)).toBe(200);
    expect(await post(h, event, signPayload(event, "not-the-secret"))).toBe(401);
    const invalid = "{not json";
    expect(await post(h, invalid, signPayload(invalid, SECRETS.webhook))).toBe(400);
    await h.settle();

    const webhooks = await samples(h, "perkbridge_webhooks_total");
    expect(webhooks.get('{source="paymenthub",result="accepted"}')).toBe(2);
    expect(webhooks.get('{source="paymenthub",result="duplicate"}')).toBe(1);
    expect(webhooks.get('{source="paymenthub",result="forged"}')).toBe(1);
    expect(webhooks.get('{source="paymenthub",result="invalid"}')).toBe(1);

    expect((await samples(h, "perkbridge_actions_total")).get('{target="http",result="granted"}')).toBe(1);
    expect((await samples(h, "perkbridge_reconcile_latency_seconds_count")).get('{target="http"}')).toBe(1);
    // Nothing is left unfinished: the gauge is reset on each scrape, so it has no samples.
    expect([...(await samples(h, "perkbridge_queue_depth")).values()].reduce((a, b) => a + b, 0)).toBe(0);

    const budget = await samples(h, "perkbridge_api_budget_remaining");
    const minute = budget.get('{source="paymenthub",window="60s"}') ?? Number.NaN;
    // The sweep spent one request; the member.created carried the whole member and fetched nothing.
    expect(minute).toBeLessThan(100);
    expect(minute).toBeGreaterThanOrEqual(90);

    expect((await samples(h, "perkbridge_sweep_duration_seconds_count")).get('{source="paymenthub",complete="true"}')).toBe(1);
    expect((await samples(h, "perkbridge_sweep_members")).get('{source="paymenthub"}')).toBe(0);
    expect((await samples(h, "perkbridge_sweep_requests_total")).get('{source="paymenthub"}')).toBe(1);

    // A grant the receiver refuses for good is parked: the queue depth shows it, by target and state.
    h.receiver.failNext(1, 400);
    h.emulator.addMember(premiumMember("mem_2"));
    await h.settle();
    expect(await samples(h, "perkbridge_queue_depth")).toEqual(new Map([['{target="http",state="parked"}', 1]]));
    expect((await samples(h, "perkbridge_actions_total")).get('{target="http",result="failed"}')).toBe(1);

    expect(await samples(h, "perkbridge_state_log_segments")).toEqual(new Map([['{store="state"}', 1], ['{store="intake"}', 1]]));
    expect([...(await samples(h, "perkbridge_state_checkpoint_queue")).keys()].sort()).toEqual(['{store="intake"}', '{store="state"}']);
  });
});
