import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCompleteWireMember, parseWebhookEvent } from "../../src/sources/paymenthub/parse-webhook-event.js";
import { PAYMENTHUB_EVENT_TYPES } from "../../src/sources/paymenthub/paymenthub-schemas.js";

const CREATED = "2024-01-15T10:30:00Z";
const CREATED_MS = Date.parse(CREATED);

const fullMember = {
  id: "mem_abc123",
  email: "user@example.com",
  name: "Max Mustermann",
  plan_id: "plan_premium",
  status: "active",
  created_at: "2024-01-15T10:30:00Z",
  metadata: { discord_id: "123456789" },
  future_field: { nested: true },
};
const subscription = { id: "sub_1", member_id: "mem_abc123", plan_id: "plan_premium", status: "active", next_payment: "2024-02-15T10:30:00Z" };
const payment = { id: "pay_1", member_id: "mem_abc123", amount: 999, currency: "eur", status: "succeeded" };

function raw(event: unknown): Buffer {
  return Buffer.from(JSON.stringify(event), "utf8");
}

function envelope(type: string, data: unknown, extra: Record<string, unknown> = {}): Buffer {
  return raw({ id: "evt_1", type, created: CREATED, data, ...extra });
}

describe("parseWebhookEvent: the eight documented event types (assumed payloads)", () => {
  it.each<[string, unknown, { member: boolean; reason?: string }]>([
    ["member.created", { member: fullMember }, { member: true }],
    ["member.updated", { member: fullMember, changes: { plan_id: "plan_basic" } }, { member: true }],
    ["member.deleted", { member_id: "mem_abc123", reason: "deleted_by_admin" }, { member: false, reason: "deleted_by_admin" }],
    ["subscription.created", { subscription }, { member: false }],
    ["subscription.renewed", { subscription }, { member: false }],
    ["subscription.canceled", { subscription: { ...subscription, status: "canceled" }, reason: "canceled_by_user" }, { member: false, reason: "canceled_by_user" }],
    ["payment.succeeded", { payment }, { member: false }],
    ["payment.failed", { payment: { ...payment, status: "failed" }, error: { code: "card_declined", message: "The card was declined." } }, { member: false, reason: "The card was declined." }],
  ])("%s", (type, data, expected) => {
    const result = parseWebhookEvent(envelope(type, data));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event).toMatchObject({ id: "evt_1", type, created: CREATED_MS, memberId: "mem_abc123", memberIds: ["mem_abc123"], known: true });
    expect(result.event.member !== undefined).toBe(expected.member);
    if (expected.member) expect(result.event.member).toMatchObject({ id: "mem_abc123", status: "active", future_field: { nested: true } });
    expect(result.event.reason).toBe(expected.reason);
  });

  it("covers every type in the doc's list", () => {
    expect(PAYMENTHUB_EVENT_TYPES).toHaveLength(8);
  });
});

describe("parseWebhookEvent: where the member id sits", () => {
  it.each<[string, unknown, string | undefined]>([
    ["data.member.id", { member: { id: "mem_1" } }, "mem_1"],
    ["data.member_id", { member_id: "mem_2" }, "mem_2"],
    ["data.subscription.member_id", { subscription: { member_id: "mem_3" } }, "mem_3"],
    ["data.subscription.member.id", { subscription: { member: { id: "mem_4" } } }, "mem_4"],
    ["data.subscription.member as a string", { subscription: { member: "mem_5" } }, "mem_5"],
    ["data.payment.member_id", { payment: { member_id: "mem_6" } }, "mem_6"],
    ["data.payment.member.id", { payment: { member: { id: "mem_7" } } }, "mem_7"],
    ["data.payment.member as a string", { payment: { member: "mem_8" } }, "mem_8"],
    ["nowhere: a sweep", { something: "else" }, undefined],
    ["empty string is no id", { member_id: "" }, undefined],
    ["a number is no id", { member_id: 42 }, undefined],
  ])("%s", (_where, data, expected) => {
    const result = parseWebhookEvent(envelope("member.updated", data));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.memberId).toBe(expected);
    if (expected === undefined) {
      expect("memberId" in result.event).toBe(false);
      expect(result.event.memberIds).toEqual([]);
    }
  });

  it("keeps every distinct id when the payload disagrees with itself, first path first", () => {
    const result = parseWebhookEvent(envelope("payment.failed", { member_id: "mem_a", payment: { member_id: "mem_b" }, member: { id: "mem_c" } }));
    expect(result.ok && result.event.memberIds).toEqual(["mem_c", "mem_a", "mem_b"]);
    expect(result.ok && result.event.memberId).toBe("mem_c");
  });
});

describe("parseWebhookEvent: when the payload member is used", () => {
  it("the doc's own example (no status) is not complete: fetch the member", () => {
    const docExample = {
      id: "evt_1234567890",
      type: "member.created",
      created: "2024-01-15T10:30:00Z",
      data: { member: { id: "mem_abc123", email: "user@example.com", plan_id: "plan_premium", metadata: { discord_id: "123456789" } } },
    };
    const result = parseWebhookEvent(raw(docExample));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.memberId).toBe("mem_abc123");
    expect(result.event.member).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, boolean]>([
    ["complete", fullMember, true],
    ["plan_id null counts (no plan)", { ...fullMember, plan_id: null }, true],
    ["no plan_id key", { ...fullMember, plan_id: undefined }, false],
    ["no metadata", { ...fullMember, metadata: undefined }, false],
    ["metadata null", { ...fullMember, metadata: null }, false],
    ["no status", { ...fullMember, status: undefined }, false],
    ["status not a string", { ...fullMember, status: 1 }, false],
    ["no id", { ...fullMember, id: undefined }, false],
  ])("isCompleteWireMember: %s", (_name, member, expected) => {
    const json = JSON.parse(JSON.stringify(member)) as unknown;
    expect(isCompleteWireMember(json)).toBe(expected);
  });

  it("an undated event never offers its payload member (it cannot be ordered)", () => {
    const result = parseWebhookEvent(raw({ id: "evt_1", type: "member.updated", data: { member: fullMember } }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.created).toBeUndefined();
    expect(result.event.member).toBeUndefined();
    expect(result.event.memberId).toBe("mem_abc123");
  });

  it("member.deleted never offers a payload member, even a complete one", () => {
    const result = parseWebhookEvent(envelope("member.deleted", { member: fullMember, reason: "gone" }));
    expect(result.ok && result.event.member).toBeUndefined();
    expect(result.ok && result.event.memberId).toBe("mem_abc123");
  });
});

describe("parseWebhookEvent: envelope", () => {
  it.each<[string, unknown, number | undefined]>([
    ["ISO date", CREATED, CREATED_MS],
    ["Unix seconds", 1_705_314_600, 1_705_314_600_000],
    ["epoch milliseconds", 1_705_314_600_123, 1_705_314_600_123],
    ["unreadable string", "yesterday-ish", undefined],
    ["null", null, undefined],
    ["zero", 0, undefined],
  ])("created as %s", (_name, created, expected) => {
    const result = parseWebhookEvent(raw({ id: "evt_1", type: "member.updated", created, data: {} }));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.event.created).toBe(expected);
  });

  it("an unknown type parses with known: false and still names the member", () => {
    const result = parseWebhookEvent(envelope("member.merged", { member_id: "mem_9" }, { livemode: true }));
    expect(result).toMatchObject({ ok: true, event: { type: "member.merged", known: false, memberId: "mem_9" } });
  });

  it.each<[string, Buffer]>([
    ["not JSON", Buffer.from("{nope", "utf8")],
    ["empty body", Buffer.alloc(0)],
    ["JSON array", raw([1, 2])],
    ["JSON null", raw(null)],
    ["no id", raw({ type: "member.created", created: CREATED, data: {} })],
    ["empty id", raw({ id: "", type: "member.created", created: CREATED, data: {} })],
    ["no type", raw({ id: "evt_1", created: CREATED, data: {} })],
    ["no data", raw({ id: "evt_1", type: "member.created", created: CREATED })],
    ["data is a list", raw({ id: "evt_1", type: "member.created", created: CREATED, data: [] })],
    ["invalid UTF-8", Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
  ])("refuses %s with a reason", (_name, body) => {
    const result = parseWebhookEvent(body);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
  });

  it("never throws for arbitrary bytes or arbitrary JSON", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
          fc.jsonValue().map((value) => raw(value)),
          fc.record({ id: fc.string(), type: fc.string(), created: fc.jsonValue(), data: fc.jsonValue() }).map((value) => raw(value)),
        ),
        (body) => {
          const result = parseWebhookEvent(body);
          expect(typeof result.ok).toBe("boolean");
        },
      ),
      { numRuns: 300 },
    );
  });
});
