import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { PatchMode } from "../../src/sandbox/paymenthub/apply-metadata-patch.js";
import {
  createPaymentHubEmulator,
  type PaymentHubEmulator,
  type PaymentHubEmulatorOptions,
} from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { parseWebhookEvent } from "../../src/sources/paymenthub/parse-webhook-event.js";
import { errorEnvelopeSchema, memberListSchema, PAYMENTHUB_EVENT_TYPES } from "../../src/sources/paymenthub/paymenthub-schemas.js";
import { verifySignature } from "../../src/sources/paymenthub/verify-signature.js";

const API_KEY = "sk_test_emulator_key";
const SECRET = "whsec_emulator";
const T0 = Date.parse("2024-01-15T10:30:00Z");

let now = T0;
const clock = { now: () => now };
const open: { close(): Promise<void> }[] = [];

afterEach(async () => {
  while (open.length > 0) await open.pop()?.close();
  now = T0;
});

async function emulatorWith(overrides: Partial<PaymentHubEmulatorOptions> = {}): Promise<PaymentHubEmulator> {
  const emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: SECRET, clock, webhookRetryScale: 0.001, ...overrides });
  await emulator.start();
  open.push(emulator);
  return emulator;
}

interface Received {
  readonly body: Buffer;
  readonly signature: string | undefined;
}

/** A webhook receiver on loopback that answers with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: readonly number[] | ((req: IncomingMessage, body: Buffer) => number)): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const signature = req.headers["x-paymenthub-signature"];
      received.push({ body, signature: typeof signature === "string" ? signature : undefined });
      const status =
        typeof statuses === "function" ? statuses(req, body) : (statuses[Math.min(received.length, statuses.length) - 1] as number);
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  open.push({
    close: () => {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return done;
    },
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

function api(emulator: PaymentHubEmulator, path: string, init: { method?: string; body?: unknown; key?: string | null } = {}): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (init.key !== null) headers["authorization"] = `Bearer ${init.key ?? API_KEY}`;
  return fetch(emulator.url + path, {
    method: init.method ?? "GET",
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

describe("REST", () => {
  it("answers without or with a wrong key with 401 envelopes that never echo the key", async () => {
    const emulator = await emulatorWith();
    for (const key of [null, "sk_wrong_key"]) {
      const res = await api(emulator, "/members", { key });
      expect(res.status).toBe(401);
      const text = await res.text();
      expect(text).not.toContain("sk_wrong_key");
      expect(errorEnvelopeSchema.parse(JSON.parse(text)).error).toMatchObject({ type: "authentication_error", request_id: expect.stringMatching(/^req_/) });
    }
  });

  it.each<[string, string]>([
    ["limit=101", "limit"],
    ["limit=0", "limit"],
    ["limit=ten", "limit"],
    ["page=0", "page"],
    ["page=-1", "page"],
  ])("GET /members?%s is a 400 naming %s", async (query, param) => {
    const emulator = await emulatorWith();
    const res = await api(emulator, `/members?${query}`);
    expect(res.status).toBe(400);
    expect((await res.json()) as unknown).toMatchObject({ error: { type: "invalid_request_error", code: "parameter_invalid", param } });
  });

  it("lists 20 per page by default with a pagination block the schema accepts", async () => {
    const emulator = await emulatorWith();
    for (let i = 0; i < 45; i++) emulator.addMember({ email: `u${i}@example.com`, plan_id: "plan_premium" });
    const res = await api(emulator, "/members?page=3");
    const list = memberListSchema.parse(await res.json());
    expect(list.members).toHaveLength(5);
    expect(list.pagination).toEqual({ total: 45, page: 3, per_page: 20, total_pages: 3 });
  });

  it("answers unknown routes with a 404 envelope", async () => {
    const emulator = await emulatorWith();
    const res = await api(emulator, "/plans");
    expect(res.status).toBe(404);
    expect((await res.json()) as unknown).toMatchObject({ error: { code: "route_not_found" } });
  });

  it.each<[PatchMode, Record<string, unknown>]>([
    ["replace", { minecraft: { playtime: 10 } }],
    ["shallow-merge", { discord_id: "1", minecraft: { playtime: 10 }, custom: [1, 2] }],
    ["deep-merge", { discord_id: "1", minecraft: { uuid: "u", playtime: 10 }, custom: [1, 2] }],
  ])("PATCH in %s mode", async (patchMode, expected) => {
    const emulator = await emulatorWith({ patchMode });
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "p", metadata: { discord_id: "1", minecraft: { uuid: "u", playtime: 1 }, custom: [1, 2] } });
    const res = await api(emulator, "/members/mem_1", { method: "PATCH", body: { metadata: { minecraft: { playtime: 10 } } } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { metadata: unknown }).metadata).toEqual(expected);
    expect(emulator.getMember("mem_1")?.metadata).toEqual(expected);
  });

  it.each<[string, unknown, string]>([
    ["no metadata", {}, "parameter_missing"],
    ["metadata a list", { metadata: [] }, "parameter_invalid"],
    ["metadata a string", { metadata: "x" }, "parameter_invalid"],
  ])("PATCH with %s is a 400", async (_name, body, code) => {
    const emulator = await emulatorWith();
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "p" });
    const res = await api(emulator, "/members/mem_1", { method: "PATCH", body });
    expect(res.status).toBe(400);
    expect((await res.json()) as unknown).toMatchObject({ error: { code, param: "metadata" } });
  });

  it("counts metadata in UTF-8 bytes: 16,384 pass, 16,385 are metadata_too_large", async () => {
    const emulator = await emulatorWith();
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "p" });
    // {"k":"…"} is 8 bytes of JSON around the value; "ä" is 2 bytes of UTF-8.
    const exact = { k: "ä".repeat(8_188) };
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(16_384);
    expect((await api(emulator, "/members/mem_1", { method: "PATCH", body: { metadata: exact } })).status).toBe(200);
    const over = { k: "ä".repeat(8_188) + "x" };
    const res = await api(emulator, "/members/mem_1", { method: "PATCH", body: { metadata: over } });
    expect(res.status).toBe(400);
    expect((await res.json()) as unknown).toMatchObject({ error: { code: "metadata_too_large", param: "metadata" } });
    expect(emulator.getMember("mem_1")?.metadata).toEqual(exact);
  });
});

describe("rate limits", () => {
  it("reports the smaller remaining count of the hour and minute windows and refuses with Retry-After", async () => {
    const emulator = await emulatorWith({ rateLimit: { perHour: 4, perMinute: 3 } });
    const remaining = async (): Promise<[number, string | null, string | null]> => {
      const res = await api(emulator, "/members");
      await res.arrayBuffer();
      return [res.status, res.headers.get("x-ratelimit-remaining"), res.headers.get("retry-after")];
    };
    expect(await remaining()).toEqual([200, "2", null]); // hour 3 left, minute 2 left
    now += 1_000;
    expect(await remaining()).toEqual([200, "1", null]);
    now += 1_000;
    expect(await remaining()).toEqual([200, "0", null]);
    expect(await remaining()).toEqual([429, "0", "58"]); // the first request leaves the minute in 58 s
    now = T0 + 61_000;
    expect(await remaining()).toEqual([200, "0", null]); // hour: 4 used
    expect(await remaining()).toEqual([429, "0", String(3_600 - 61)]);
    now = T0 + 3_602_000; // the first three requests have left the hour
    expect(await remaining()).toEqual([200, "2", null]);
  });

  it("does not count refused requests or requests without a valid key", async () => {
    const emulator = await emulatorWith({ rateLimit: { perHour: 100, perMinute: 2 } });
    await (await api(emulator, "/members", { key: "wrong" })).arrayBuffer();
    emulator.faults.rateLimit429Next(1);
    const forced = await api(emulator, "/members");
    expect([forced.status, forced.headers.get("retry-after")]).toEqual([429, "1"]);
    const res = await api(emulator, "/members");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("1");
  });
});

describe("faults and lifecycle", () => {
  it("logs every call with its status, 0 for a dropped one", async () => {
    const emulator = await emulatorWith();
    emulator.faults.dropNext(1);
    await expect(api(emulator, "/members?limit=5")).rejects.toThrow();
    emulator.faults.failNext(1, 503);
    expect((await api(emulator, "/members")).status).toBe(503);
    expect((await api(emulator, "/members/mem_x")).status).toBe(404);
    expect(emulator.calls).toEqual([
      { method: "GET", path: "/v1/members", query: { limit: "5" }, status: 0 },
      { method: "GET", path: "/v1/members", query: {}, status: 503 },
      { method: "GET", path: "/v1/members/mem_x", query: {}, status: 404 },
    ]);
  });

  it("close() ends a hung request instead of waiting for it", async () => {
    const emulator = await emulatorWith();
    emulator.faults.delayMs = 60_000;
    const pending = api(emulator, "/members");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await emulator.close();
    await expect(pending).rejects.toThrow();
  });
});

describe("webhooks", () => {
  it("redelivers the same signed body until the receiver answers 2xx", async () => {
    const hook = await receiver([500, 503, 204]);
    const emulator = await emulatorWith({ webhookUrl: hook.url });
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_premium", metadata: { discord_id: "1" } });
    await emulator.settled();
    expect(hook.received).toHaveLength(3);
    expect(new Set(hook.received.map((r) => r.body.toString("utf8"))).size).toBe(1);
    for (const r of hook.received) expect(verifySignature(r.body, r.signature, [SECRET])).toBe(true);
    expect(emulator.deliveries[0]?.attempts.map((a) => ("status" in a ? a.status : a.error))).toEqual([500, 503, 204]);
    expect(emulator.deliveries[0]?.delivered).toBe(true);
  });

  it("gives up after the last retry", async () => {
    const hook = await receiver([500]);
    const emulator = await emulatorWith({ webhookUrl: hook.url, webhookRetryDelaysMs: [1, 1], webhookRetryScale: 1 });
    const delivery = await emulator.sendEvent("member.updated", { member_id: "mem_1" });
    expect(delivery.delivered).toBe(false);
    expect(delivery.attempts).toHaveLength(3);
    expect(hook.received).toHaveLength(3);
  });

  it("retries when nobody listens, and delivers once the receiver is there", async () => {
    const hook = await receiver([200]);
    const emulator = await emulatorWith({ webhookUrl: "http://127.0.0.1:1/nothing", webhookRetryDelaysMs: [1, 1], webhookRetryScale: 1 });
    const failed = await emulator.sendEvent("member.updated", { member_id: "mem_1" });
    expect(failed.attempts.every((a) => "error" in a)).toBe(true);
    emulator.setWebhookUrl(hook.url);
    expect((await emulator.sendEvent("member.updated", { member_id: "mem_1" })).delivered).toBe(true);
  });

  it("emits all eight event types with payloads our parser reads", async () => {
    const hook = await receiver([200]);
    const emulator = await emulatorWith({ webhookUrl: hook.url });
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "plan_basic", metadata: { discord_id: "1" } });
    emulator.updateMember("mem_1", { name: "Max" });
    emulator.createSubscription("mem_1", { planId: "plan_premium", nextPayment: "2024-02-15T10:30:00Z" });
    emulator.renewSubscription("mem_1", "2024-03-15T10:30:00Z");
    emulator.recordPayment("mem_1", { succeeded: true });
    emulator.recordPayment("mem_1", { succeeded: false });
    emulator.cancelSubscription("mem_1", "too_expensive");
    emulator.deleteMember("mem_1", "deleted_by_admin");
    await emulator.settled();

    const events = hook.received.map((r) => {
      expect(verifySignature(r.body, r.signature, [SECRET])).toBe(true);
      const parsed = parseWebhookEvent(r.body);
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.event;
    });
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(PAYMENTHUB_EVENT_TYPES));
    for (const event of events) expect(event).toMatchObject({ memberId: "mem_1", known: true, created: T0 });
    const byType = new Map(events.map((e) => [e.type, e]));
    expect(byType.get("member.created")?.member).toMatchObject({ id: "mem_1", status: "active", plan_id: "plan_basic" });
    expect(byType.get("member.updated")?.member).toMatchObject({ name: "Max" });
    expect(byType.get("subscription.canceled")?.reason).toBe("too_expensive");
    expect(byType.get("member.deleted")?.reason).toBe("deleted_by_admin");
    expect(byType.get("payment.failed")?.reason).toBe("The card was declined.");

    const updated = emulator.deliveries.find((d) => d.event.type === "member.updated")?.event.data;
    expect(updated?.["changes"]).toEqual({ name: null });
    const canceled = emulator.deliveries.find((d) => d.event.type === "subscription.canceled")?.event.data;
    expect(canceled?.["subscription"]).toMatchObject({ member_id: "mem_1", plan_id: "plan_premium", status: "canceled", next_payment: "2024-03-15T10:30:00Z" });
  });

  it("a PATCH over the API emits member.updated with the previous metadata", async () => {
    const hook = await receiver([200]);
    const emulator = await emulatorWith({ webhookUrl: hook.url });
    emulator.addMember({ id: "mem_1", email: "a@example.com", plan_id: "p", metadata: { a: 1 } }, { emit: false });
    await (await api(emulator, "/members/mem_1", { method: "PATCH", body: { metadata: { a: 2 } } })).arrayBuffer();
    await emulator.settled();
    expect(hook.received).toHaveLength(1);
    const event = JSON.parse(hook.received[0]?.body.toString("utf8") ?? "") as { type: string; data: { member: { metadata: unknown }; changes: unknown } };
    expect(event.type).toBe("member.updated");
    expect(event.data.member.metadata).toEqual({ a: 2 });
    expect(event.data.changes).toEqual({ metadata: { a: 1 } });
  });

  it("sendRaw posts forged bodies as given, for receivers to refuse", async () => {
    const hook = await receiver((req, body) =>
      verifySignature(body, req.headers["x-paymenthub-signature"] as string | undefined, [SECRET]) ? 200 : 401,
    );
    const emulator = await emulatorWith({ webhookUrl: hook.url });
    const body = JSON.stringify({ id: "evt_x", type: "member.deleted", created: "2024-01-15T10:30:00Z", data: { member_id: "mem_1" } });
    expect(await emulator.sendRaw(body, { "x-paymenthub-signature": "sha256=" + "0".repeat(64) })).toMatchObject({ status: 401 });
    expect(await emulator.sendRaw(body, { "x-paymenthub-signature": "sha256=abc" })).toMatchObject({ status: 401 });
    expect(await emulator.sendRaw(body, {})).toMatchObject({ status: 401 });
    expect(emulator.deliveries).toHaveLength(0);
  });
});
