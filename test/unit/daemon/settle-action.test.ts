import { describe, expect, it } from "vitest";
import type { SyncResult } from "../../../src/core/ports.js";
import { settleAction, type RetryPolicy } from "../../../src/daemon/reconcile/settle-action.js";

const policy: RetryPolicy = { maxAttempts: 3, delay: (n) => 1000 * 2 ** (n - 1), downDelayMs: 30_000 };
const now = 1_000_000;

describe("settleAction", () => {
  it.each<[string, SyncResult, number, { state: string; attempts: number; notBefore: number }]>([
    ["granted → done", { kind: "granted" }, 0, { state: "done", attempts: 1, notBefore: now }],
    ["revoked → done", { kind: "revoked", wasAbsent: true }, 0, { state: "done", attempts: 1, notBefore: now }],
    ["unchanged → done", { kind: "unchanged" }, 1, { state: "done", attempts: 2, notBefore: now }],
    ["not-linked waits for the identity", { kind: "not-linked", reason: "no name" }, 0, { state: "waiting", attempts: 0, notBefore: now }],
    ["target-missing waits for the join", { kind: "target-missing", reason: "left" }, 0, { state: "waiting", attempts: 0, notBefore: now }],
    ["retryable → queued with backoff", { kind: "failed", retryable: true, reason: "5xx" }, 0, { state: "queued", attempts: 1, notBefore: now + 1000 }],
    ["second retry doubles", { kind: "failed", retryable: true, reason: "5xx" }, 1, { state: "queued", attempts: 2, notBefore: now + 2000 }],
    ["Retry-After longer than backoff wins", { kind: "failed", retryable: true, reason: "429", retryAfterMs: 9000 }, 0, { state: "queued", attempts: 1, notBefore: now + 9000 }],
    ["last attempt parks", { kind: "failed", retryable: true, reason: "5xx" }, 2, { state: "parked", attempts: 3, notBefore: now }],
    ["terminal parks at once", { kind: "failed", retryable: false, reason: "50013", fix: "move the role" }, 0, { state: "parked", attempts: 1, notBefore: now }],
    ["target down spends no attempt", { kind: "failed", retryable: true, reason: "down", targetDown: true }, 2, { state: "queued", attempts: 2, notBefore: now + 30_000 }],
    ["outcome unknown parks", { kind: "failed", retryable: true, reason: "lost", outcomeUnknown: true }, 0, { state: "parked", attempts: 1, notBefore: now }],
  ])("%s", (_name, result, attempts, expected) => {
    expect(settleAction({ attempts }, result, now, policy)).toMatchObject(expected);
  });

  it("keeps the fix for the operator and says when it gave up", () => {
    const parked = settleAction({ attempts: 2 }, { kind: "failed", retryable: true, reason: "HTTP 502", fix: "check the endpoint" }, now, policy);
    expect(parked.last).toEqual({ kind: "failed", reason: "gave up after 3 attempts: HTTP 502", fix: "check the endpoint" });
    const unknown = settleAction({ attempts: 0 }, { kind: "failed", retryable: false, reason: "connection dropped", outcomeUnknown: true }, now, policy);
    expect(unknown.last.reason).toBe("outcome unknown: connection dropped");
  });
});
