import { afterEach, describe, expect, it } from "vitest";
import { premiumMember, startHarness, type Harness } from "./harness.js";
import { until } from "./support/test-daemon.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const held = (harness: Harness, id: string) => harness.receiver.held.has(`member:paymenthub:${id}|event:`);

const GRACE_PLANS = `
plans:
  plan_premium:
    grace: 1500ms
    perks:
      - http: { endpoint: shop }
`;

describe("engine timers", () => {
  it("revokes when a grace ends, with no webhook or sweep, also after a restart set the timer again", async () => {
    h = await startHarness({ plansYaml: GRACE_PLANS });
    h.emulator.addMember(premiumMember("mem_g"));
    await h.settle();
    expect(held(h, "mem_g")).toBe(true);

    h.emulator.cancelSubscription("mem_g", "requested");
    await h.settle();
    // Kept through the grace: the cancellation only set a timer.
    expect(held(h, "mem_g")).toBe(true);

    // A new daemon on the same state: its timers come from the stored members.
    await h.restart();
    await h.engine.timersArmed();
    const calls = h.emulator.calls.length;
    await until(() => !held(h as Harness, "mem_g"), "the revoke at the end of the grace", 5_000);
    expect(h.engine.grantsOf("paymenthub:mem_g")).toHaveLength(0);
    // Decided from what was stored: nothing was asked of PaymentHub.
    expect(h.emulator.calls.length).toBe(calls);
  });
});
