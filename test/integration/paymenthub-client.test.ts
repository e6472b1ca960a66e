import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { computeRetryDelay, parseRetryAfter } from "../../src/sources/paymenthub/compute-retry-delay.js";
import {
  createPaymentHubClient,
  type PaymentHubClientOptions,
  type RateObservation,
  type RequestGate,
  type RequestPriority,
} from "../../src/sources/paymenthub/create-paymenthub-client.js";
import { createPaymentHubMemberSource } from "../../src/sources/paymenthub/create-paymenthub-member-source.js";
import { PaymentHubError } from "../../src/sources/paymenthub/paymenthub-error.js";
import { memberListSchema } from "../../src/sources/paymenthub/paymenthub-schemas.js";

const API_KEY = "sk_live_SUPERSECRET_0123456789";

let now = Date.parse("2024-01-15T10:30:00Z");
const clock = { now: () => now };
let emulator: PaymentHubEmulator;

beforeEach(async () => {
  now = Date.parse("2024-01-15T10:30:00Z");
  emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: "whsec_test", clock });
  await emulator.start();
});

afterEach(async () => {
  await emulator.close();
});

/** A gate that admits everything and records what the client told it. */
function recordingGate(): RequestGate & { acquired: RequestPriority[]; observed: RateObservation[] } {
  const acquired: RequestPriority[] = [];
  const observed: RateObservation[] = [];
  return {
    acquired,
    observed,
    acquire(priority) {
      acquired.push(priority);
      return Promise.resolve();
    },
    observe(info) {
      observed.push(info);
    },
  };
}

function client(overrides: Partial<PaymentHubClientOptions> = {}) {
  return createPaymentHubClient({
    baseUrl: emulator.url,
    apiKey: API_KEY,
    timeoutMs: 2_000,
    retry: { limit: 2, baseDelayMs: 1, maxDelayMs: 5 },
    clock,
    ...overrides,
  });
}

async function caught(promise: Promise<unknown>): Promise<PaymentHubError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(PaymentHubError);
    return error as PaymentHubError;
  }
  throw new Error("expected a rejection");
}

function expectNoKey(error: unknown): void {
  expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain(API_KEY);
  expect(JSON.stringify(error)).not.toContain(API_KEY);
  expect(String(error)).not.toContain(API_KEY);
}

/** A server that is not PaymentHub: answers every request with `status` and `body`. */
async function startForeignServer(status: number, body: string, contentType = "text/html"): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(status, { "content-type": contentType });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
}

async function stop(server: Server): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await done;
}

function seed(count: number): void {
  for (let i = 1; i <= count; i++) {
    emulator.addMember({
      id: `mem_${String(i).padStart(3, "0")}`,
      email: `user${i}@example.com`,
      plan_id: i % 2 === 0 ? "plan_premium" : "plan_basic",
      status: i % 5 === 0 ? "canceled" : "active",
      metadata: { discord_id: String(100_000 + i) },
    });
  }
}

describe("GET /members", () => {
  it("pages through all members with the pagination block", async () => {
    seed(25);
    const api = client();
    const first = await api.listMembers({ page: 1, limit: 10 });
    expect(first.members.map((m) => m.id)).toEqual(Array.from({ length: 10 }, (_, i) => `mem_${String(i + 1).padStart(3, "0")}`));
    expect(first.pagination).toEqual({ total: 25, page: 1, per_page: 10, total_pages: 3 });
    const last = await api.listMembers({ page: 3, limit: 10 });
    expect(last.members).toHaveLength(5);
    expect(emulator.calls.map((c) => c.query)).toEqual([
      { page: "1", limit: "10" },
      { page: "3", limit: "10" },
    ]);
    // Fixtures parse through the production schema.
    expect(memberListSchema.safeParse(first).success).toBe(true);
  });

  it("filters by status and plan_id", async () => {
    seed(20);
    const list = await client().listMembers({ page: 1, limit: 100, status: "canceled", planId: "plan_premium" });
    expect(list.members.map((m) => m.id)).toEqual(["mem_010", "mem_020"]);
    expect(emulator.calls[0]?.query).toEqual({ page: "1", limit: "100", status: "canceled", plan_id: "plan_premium" });
  });

  it("refuses a limit over 100 before sending anything", async () => {
    await expect(client().listMembers({ page: 1, limit: 101 })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    expect(emulator.calls).toHaveLength(0);
  });
});

describe("GET /members/{id}", () => {
  it("returns the wire member, unknown fields kept", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium", metadata: { discord: { user_id: "123456789012345678" } }, loyalty_tier: "gold" });
    const member = await client().getMember("mem_1");
    expect(member).toMatchObject({ id: "mem_1", status: "active", plan_id: "plan_premium", loyalty_tier: "gold" });
  });

  it("returns null for PaymentHub's 404", async () => {
    expect(await client().getMember("mem_missing")).toBeNull();
    expect(emulator.calls.map((c) => c.status)).toEqual([404]);
  });

  it("encodes the id into the path", async () => {
    expect(await client().getMember("../members?x=1")).toBeNull();
    expect(emulator.calls[0]?.path).toBe("/v1/members/..%2Fmembers%3Fx%3D1");
  });

  it("treats a 404 without the error envelope as an error, never as 'member gone'", async () => {
    const foreign = await startForeignServer(404, "<html>Not Found</html>");
    try {
      const error = await caught(client({ baseUrl: foreign.url }).getMember("mem_1"));
      expect(error.code).toBe("ERR_PAYMENTHUB_NOT_FOUND");
      expect(error.message).toContain("base URL");
    } finally {
      await stop(foreign.server);
    }
  });

  it("treats PaymentHub's route_not_found 404 (a wrong base URL path) as an error, never as 'member gone'", async () => {
    const wrongPath = emulator.url.replace(/\/v1$/, "/v2");
    const error = await caught(client({ baseUrl: wrongPath }).getMember("mem_1"));
    expect(error.code).toBe("ERR_PAYMENTHUB_NOT_FOUND");
  });

  it("rejects a 200 that is not a member", async () => {
    const foreign = await startForeignServer(200, JSON.stringify({ hello: "world" }), "application/json");
    try {
      const error = await caught(client({ baseUrl: foreign.url }).getMember("mem_1"));
      expect(error.code).toBe("ERR_PAYMENTHUB_INVALID_RESPONSE");
      expect(error.retryable).toBe(false);
    } finally {
      await stop(foreign.server);
    }
  });
});

describe("members the doc's format does not vouch for", () => {
  const base = { id: "mem_1", email: "a@example.com", status: "active" };
  it.each<[string, Record<string, unknown>, boolean]>([
    ["plan_id and metadata null: no plan, no identities", { ...base, plan_id: null, metadata: null }, true],
    ["no metadata key: refused, it would read as 'identities removed'", { ...base, plan_id: "p" }, false],
    ["no plan_id key: refused, it would read as 'plan removed'", { ...base, metadata: {} }, false],
    ["no status: refused", { id: "mem_1", plan_id: "p", metadata: {} }, false],
  ])("%s", async (_name, member, accepted) => {
    const foreign = await startForeignServer(200, JSON.stringify(member), "application/json");
    try {
      const promise = client({ baseUrl: foreign.url }).getMember("mem_1");
      if (accepted) await expect(promise).resolves.toMatchObject({ id: "mem_1" });
      else expect((await caught(promise)).code).toBe("ERR_PAYMENTHUB_INVALID_RESPONSE");
    } finally {
      await stop(foreign.server);
    }
  });

  it("one such member fails the whole page, so a poll never reads it as a revocation", async () => {
    const body = { members: [{ id: "mem_1", status: "active", plan_id: "p" }], pagination: { total: 1, page: 1, per_page: 10, total_pages: 1 } };
    const foreign = await startForeignServer(200, JSON.stringify(body), "application/json");
    try {
      const error = await caught(client({ baseUrl: foreign.url }).listMembers({ page: 1, limit: 10 }));
      expect(error.code).toBe("ERR_PAYMENTHUB_INVALID_RESPONSE");
      expect(error.message).toContain("members.0.metadata");
    } finally {
      await stop(foreign.server);
    }
  });
});

describe("PATCH /members/{id}", () => {
  it("sends the metadata and returns the updated member", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium", metadata: { discord_id: "1", custom: "keep" } });
    const metadata = { discord_id: "1", custom: "keep", minecraft: { playtime: 4320 } };
    const updated = await client().patchMember("mem_1", metadata);
    expect(updated?.metadata).toEqual(metadata);
    expect(emulator.getMember("mem_1")?.metadata).toEqual(metadata);
    expect(emulator.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual(["PATCH /v1/members/mem_1 200"]);
  });

  it("turns metadata over the limit into a typed error with the envelope's fields", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium" });
    const error = await caught(client().patchMember("mem_1", { blob: "x".repeat(17_000) }));
    expect(error).toMatchObject({
      code: "ERR_PAYMENTHUB_BAD_REQUEST",
      status: 400,
      type: "invalid_request_error",
      apiCode: "metadata_too_large",
      param: "metadata",
      method: "PATCH",
      retryable: false,
    });
    expect(error.requestId).toMatch(/^req_/);
    expect(error.message).toContain(error.requestId);
  });

  it("is not retried on a 5xx, and the metadata stays as it was", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium", metadata: { a: 1 } });
    emulator.faults.failNext(1, 502);
    const error = await caught(client().patchMember("mem_1", { a: 2 }));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_SERVER", status: 502, retryable: true, method: "PATCH" });
    expect(emulator.calls).toHaveLength(1);
    expect(emulator.getMember("mem_1")?.metadata).toEqual({ a: 1 });
  });

  it("is not retried on a dropped connection", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium" });
    emulator.faults.dropNext(1);
    const error = await caught(client().patchMember("mem_1", { a: 2 }));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_NETWORK", retryable: true });
    expect(emulator.calls).toHaveLength(1);
  });

  it("gives a typed 404 for an unknown member", async () => {
    const error = await caught(client().patchMember("mem_missing", {}));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_NOT_FOUND", status: 404, apiCode: "resource_missing" });
  });
});

describe("authentication and secrets", () => {
  it("a wrong key is a 401 whose message names the problem, not the key", async () => {
    const wrongKey = "sk_live_WRONG_KEY_987";
    const error = await caught(client({ apiKey: wrongKey }).listMembers({ page: 1, limit: 10 }));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_UNAUTHORIZED", status: 401, type: "authentication_error", retryable: false });
    expect(error.message).toMatch(/API key/);
    expect(error.requestId).toMatch(/^req_/);
    expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain(wrongKey);
    expectNoKey(error);
  });

  it("refuses an empty key at creation", () => {
    expect(() => client({ apiKey: "" })).toThrow(/API key is empty/);
  });

  it("keeps credentials of the base URL and the key out of network errors", async () => {
    const foreign = await startForeignServer(200, "{}");
    const port = (foreign.server.address() as AddressInfo).port;
    await stop(foreign.server);
    const error = await caught(
      client({ baseUrl: `http://admin:hunter2pw@127.0.0.1:${port}/v1` }).getMember("mem_1"),
    );
    expect(error.code).toBe("ERR_PAYMENTHUB_NETWORK");
    expect(error.url).toBe(`http://127.0.0.1:${port}/v1/members/mem_1`);
    expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain("hunter2pw");
    expectNoKey(error);
  });
});

describe("rate limits", () => {
  it("429 becomes a typed error with Retry-After, without a blind retry", async () => {
    emulator.faults.rateLimit429Next(1, "7");
    const gate = recordingGate();
    const error = await caught(client({ gate }).getMember("mem_1"));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_RATE_LIMITED", status: 429, retryAfter: "7", retryAfterMs: 7_000, retryable: true });
    expect(emulator.calls).toHaveLength(1);
    expect(gate.observed).toEqual([{ status: 429, remaining: 0, retryAfter: "7" }]);
  });

  it("429 without Retry-After still is a typed error", async () => {
    emulator.faults.rateLimit429Next(1, null);
    const error = await caught(client().getMember("mem_1"));
    expect(error.code).toBe("ERR_PAYMENTHUB_RATE_LIMITED");
    expect(error.retryAfter).toBeUndefined();
  });

  it("the gate is asked before every attempt with the call's priority and told every remaining count", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium" });
    const gate = recordingGate();
    const api = client({ gate });
    await api.listMembers({ page: 1, limit: 10 });
    await api.getMember("mem_1");
    emulator.faults.failNext(1, 500);
    await api.getMember("mem_1");
    await api.patchMember("mem_1", {});
    await api.getMember("mem_1", { priority: "poll" });
    expect(gate.acquired).toEqual(["poll", "webhook", "webhook", "webhook", "write", "poll"]);
    expect(gate.observed.map((o) => [o.status, o.remaining])).toEqual([
      [200, 99],
      [200, 98],
      [500, 97],
      [200, 96],
      [200, 95],
      [200, 94],
    ]);
  });

  it("a gate that refuses fails the request before anything is sent", async () => {
    const gate: RequestGate = { acquire: () => Promise.reject(new Error("budget closed")), observe: () => undefined };
    await expect(client({ gate }).getMember("mem_1")).rejects.toThrow("budget closed");
    expect(emulator.calls).toHaveLength(0);
  });
});

describe("retries of GET", () => {
  it("retries 5xx and then succeeds", async () => {
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium" });
    emulator.faults.failNext(2, 503);
    expect(await client().getMember("mem_1")).toMatchObject({ id: "mem_1" });
    expect(emulator.calls.map((c) => c.status)).toEqual([503, 503, 200]);
  });

  it("gives up after the retry limit with a typed, retryable error", async () => {
    emulator.faults.failNext(10, 500);
    const error = await caught(client({ retry: { limit: 1, baseDelayMs: 1, maxDelayMs: 5 } }).listMembers({ page: 1, limit: 10 }));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_SERVER", status: 500, type: "api_error", retryable: true, method: "GET" });
    expect(emulator.calls).toHaveLength(2);
  });

  it("retries a dropped connection", async () => {
    seed(3);
    emulator.faults.dropNext(1);
    const list = await client().listMembers({ page: 1, limit: 10 });
    expect(list.members).toHaveLength(3);
    expect(emulator.calls.map((c) => c.status)).toEqual([0, 200]);
  });

  it("a hung server fails within the timeout, per attempt", async () => {
    emulator.faults.delayMs = 10_000;
    const started = Date.now();
    const error = await caught(client({ timeoutMs: 100, retry: { limit: 1, baseDelayMs: 1, maxDelayMs: 5 } }).getMember("mem_1"));
    expect(error).toMatchObject({ code: "ERR_PAYMENTHUB_TIMEOUT", retryable: true });
    expect(error.message).toContain("100 ms");
    // Two attempts of 100 ms each; far below the server's 10 s.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(emulator.calls).toHaveLength(2);
    expectNoKey(error);
  });
});

describe("the MemberSource adapter", () => {
  it("maps wire members to core members with identities, and 404 to null", async () => {
    emulator.addMember({
      id: "mem_1",
      email: "a@example.com",
      name: "Max",
      plan_id: "plan_premium",
      status: "trial",
      trial_ends_at: "2024-01-22T10:30:00Z",
      metadata: { discord_id: "123456789012345678", minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", name: "Notch" } },
      subscription: { id: "sub_1", status: "trialing", next_payment: "2024-01-22T10:30:00Z" },
    });
    const source = createPaymentHubMemberSource({ client: client(), clock });
    const member = await source.getMember("mem_1");
    expect(member).toEqual({
      source: "paymenthub",
      id: "mem_1",
      email: "a@example.com",
      name: "Max",
      planId: "plan_premium",
      status: "trial",
      identities: { discord: "123456789012345678", minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", name: "Notch" } },
      metadata: { discord_id: "123456789012345678", minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", name: "Notch" } },
      trialEndsAt: Date.parse("2024-01-22T10:30:00Z"),
      paidUntil: Date.parse("2024-01-22T10:30:00Z"),
      statusSince: now,
      observedAt: now,
    });
    expect(await source.getMember("mem_2")).toBeNull();
    const page = await source.listMembers(1);
    expect(page).toMatchObject({ page: 1, totalPages: 1, total: 1 });
    expect(page.members[0]?.id).toBe("mem_1");
    expect(emulator.calls.at(-1)?.query).toEqual({ page: "1", limit: "100" });
  });
});

describe("computeRetryDelay and parseRetryAfter", () => {
  const options = { baseDelayMs: 100, maxDelayMs: 1_000 };
  it.each<[number, number | undefined, number, number]>([
    [1, undefined, 0, 50],
    [1, undefined, 1, 100],
    [3, undefined, 1, 400],
    [10, undefined, 1, 1_000],
    [1, 300, 0.5, 300],
    [1, 60_000, 0.5, 1_000],
  ])("attempt %d, Retry-After %s ms, random %d → %d ms", (attempt, retryAfterMs, random, expected) => {
    expect(computeRetryDelay(attempt, options, retryAfterMs, () => random)).toBe(expected);
  });

  it.each<[string | undefined, number | undefined]>([
    [undefined, undefined],
    ["7", 7_000],
    ["1.5", 1_500],
    ["Mon, 15 Jan 2024 10:30:10 GMT", 10_000],
    ["Mon, 15 Jan 2024 10:29:00 GMT", 0],
    ["soon", undefined],
  ])("Retry-After %s → %s ms", (header, expected) => {
    expect(parseRetryAfter(header, Date.parse("2024-01-15T10:30:00Z"))).toBe(expected);
  });
});
