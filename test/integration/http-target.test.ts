import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { PerkAction } from "../../src/core/ports.js";
import { createHttpTarget, HTTP_SIGNATURE_HEADER, signHttpBody, type HttpPerkEvent } from "../../src/adapters/http/create-http-target.js";

const SECRET = "receiver-secret";

interface Received {
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** A receiver on 127.0.0.1 that records each request and answers with `respond`. */
async function receiver(respond: (res: ServerResponse, n: number) => void): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      respond(res, received.length);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/perks`, received };
}

function action(type: "grant" | "revoke", id = "act_1"): PerkAction {
  return {
    id,
    type,
    subject: "member:paymenthub:mem_1",
    perk: { target: "http", scope: "shop", kind: "event", value: "vip" },
    members: ["paymenthub:mem_1"],
    reason: "plan_premium active",
    identities: {},
  };
}

function target(url: string, timeoutMs = 5_000) {
  return createHttpTarget({ endpoints: { shop: { url, secret: SECRET, timeoutMs } } });
}

describe("http target", () => {
  it("POSTs a signed event with the action id as idempotency key, and maps 2xx to done", async () => {
    const r = await receiver((res) => res.writeHead(204).end());
    const t = target(r.url);
    expect(await t.apply(action("grant"))).toEqual({ kind: "granted" });
    expect(await t.apply(action("revoke", "act_2"))).toEqual({ kind: "revoked" });
    await t.stop();
    const [first] = r.received;
    const event = JSON.parse(first?.body ?? "") as HttpPerkEvent;
    expect(event).toEqual({
      id: "act_1",
      type: "grant",
      subject: "member:paymenthub:mem_1",
      perk: { endpoint: "shop", kind: "event", value: "vip" },
      members: ["paymenthub:mem_1"],
      reason: "plan_premium active",
    });
    expect(first?.headers[HTTP_SIGNATURE_HEADER]).toBe(signHttpBody(first?.body ?? "", SECRET));
    expect(first?.headers["idempotency-key"]).toBe("act_1");
    expect(first?.headers["content-type"]).toBe("application/json");
    expect(r.received[1]?.headers["idempotency-key"]).toBe("act_2");
  });

  it.each([
    [503, { "retry-after": "7" }, { kind: "failed", retryable: true, reason: "endpoint shop answered HTTP 503", retryAfterMs: 7000 }],
    [429, {}, { kind: "failed", retryable: true, reason: "endpoint shop answered HTTP 429" }],
    [408, {}, { kind: "failed", retryable: true, reason: "endpoint shop answered HTTP 408" }],
    [400, {}, { kind: "failed", retryable: false, reason: "endpoint shop answered HTTP 400" }],
    [302, { location: "http://127.0.0.1:1/elsewhere" }, { kind: "failed", retryable: false, reason: "endpoint shop answered HTTP 302" }],
  ] as const)("classifies HTTP %i", async (status, headers, expected) => {
    const r = await receiver((res) => res.writeHead(status, headers).end("a body that is not read"));
    const t = target(r.url);
    expect(await t.apply(action("grant"))).toMatchObject(expected);
    await t.stop();
    expect(r.received).toHaveLength(1); // no retry of its own, no redirect followed
  });

  it("says how to fix a terminal answer without the URL's credentials or query", async () => {
    const r = await receiver((res) => res.writeHead(404).end());
    const t = target(r.url.replace("http://", "http://user:pw@") + "?token=abc");
    const result = await t.apply(action("grant"));
    await t.stop();
    expect(result).toMatchObject({ kind: "failed", retryable: false });
    expect(JSON.stringify(result)).not.toMatch(/pw|abc/);
  });

  it("reports a refused connection as the target being down", async () => {
    const r = await receiver((res) => res.writeHead(204).end());
    const url = r.url;
    const server = servers.pop() as Server;
    await new Promise((resolve) => server.close(resolve));
    const t = target(url);
    expect(await t.apply(action("grant"))).toEqual({ kind: "failed", retryable: true, reason: "endpoint shop unreachable (ECONNREFUSED)", targetDown: true });
    await t.stop();
  });

  it("gives up on an endpoint that does not answer within its timeout, and retries later", async () => {
    const r = await receiver(() => undefined); // never answers
    const t = target(r.url, 100);
    expect(await t.apply(action("grant"))).toEqual({ kind: "failed", retryable: true, reason: "endpoint shop unreachable (ETIMEDOUT)" });
    await t.stop();
  });

  it("refuses an action for an endpoint that is not configured, naming the config key", async () => {
    const t = target("http://127.0.0.1:1/");
    const result = await t.apply({ ...action("grant"), perk: { target: "http", scope: "other", kind: "event", value: "" } });
    expect(result).toEqual({ kind: "failed", retryable: false, reason: 'http endpoint "other" is not configured', fix: "add targets.http.endpoints.other to the config" });
  });
});
