import { describe, expect, it } from "vitest";
import type { Member } from "../../../src/core/member.js";
import { reconcileDigest } from "../../../src/daemon/member-digest.js";

const base: Member = {
  source: "paymenthub",
  id: "mem_1",
  email: "a@example.com",
  name: "A",
  planId: "plan_premium",
  status: "active",
  identities: { discord: "123", minecraft: { uuid: "u-1", name: "alex" } },
  metadata: { discord_id: "123", minecraft: { uuid: "u-1", name: "alex" } },
  statusSince: 1,
  observedAt: 2,
};

describe("reconcileDigest", () => {
  it("ignores what a reconcile does not read, and the order of keys", () => {
    const same: Member = {
      ...base,
      email: "other@example.com",
      name: "B",
      statusSince: 99,
      observedAt: 100,
      metadata: { minecraft: { name: "alex", uuid: "u-1" }, discord_id: "123" },
    };
    expect(reconcileDigest(same)).toBe(reconcileDigest(base));
  });

  it.each<[string, Record<string, unknown>]>([
    ["status", { status: "canceled" }],
    ["plan", { planId: "plan_basic" }],
    ["no plan", { planId: undefined }],
    ["trial end", { trialEndsAt: 5 }],
    ["paid until", { paidUntil: 5 }],
    ["identities", { identities: { discord: "124" } }],
    ["metadata", { metadata: { discord_id: "123", note: "x" } }],
    ["gone", { gone: true }],
  ])("changes with the %s", (_field, change) => {
    expect(reconcileDigest({ ...base, ...change } as unknown as Member)).not.toBe(reconcileDigest(base));
  });
});
