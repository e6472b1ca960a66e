import { request as httpRequest, Agent } from "node:http";
import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpServer, jsonResponse, type HttpServer, type HttpServerOptions } from "../../src/daemon/create-http-server.js";
import { createLogger } from "../../src/daemon/create-logger.js";

const servers: HttpServer[] = [];
let logLines: string[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  logLines = [];
});

async function start(options: Partial<HttpServerOptions> = {}): Promise<HttpServer> {
  const server = createHttpServer({
    host: "127.0.0.1",
    port: 0,
    logger: createLogger({ level: "info", format: "json", destination: { write: (line: string) => void logLines.push(line) } }),
    registry: new Registry(),
    ...options,
  });
  servers.push(server);
  await server.start();
  return server;
}

/** A raw node:http request, so the test controls keep-alive and streaming. */
function send(
  url: string,
  options: { method?: string; path: string; body?: Buffer; chunks?: Buffer[]; agent?: Agent },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      `${url}${options.path}`,
      { method: options.method ?? "GET", ...(options.agent === undefined ? {} : { agent: options.agent }) },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    // Writing on after the server answered 413 and closed may fail; the answer is what counts.
    req.on("error", (error) => (answered ? undefined : reject(error)));
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end(options.body);
  });
}

describe("createHttpServer", () => {
  it("answers /healthz, and 404 or 405 with Allow for unknown paths and methods", async () => {
    const server = await start();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });

    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    const wrongMethod = await fetch(`${server.url}/healthz`, { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET");
  });

  it("hands a registered route its raw body, path and query, and sends its response", async () => {
    const server = await start();
    const seen: { body: string; query: string | null; signature: string | undefined }[] = [];
    server.route("POST", "/webhooks/test", (request) => {
      seen.push({
        body: request.body.toString(),
        query: request.query.get("x"),
        signature: request.headers["x-signature"] as string | undefined,
      });
      return jsonResponse(202, { result: "accepted" }, { "x-extra": "1" });
    });
    const res = await fetch(`${server.url}/webhooks/test?x=7`, {
      method: "POST",
      headers: { "x-signature": "sig" },
      body: '{"id":"evt_1"}',
    });
    expect(res.status).toBe(202);
    expect(res.headers.get("x-extra")).toBe("1");
    expect(await res.json()).toEqual({ result: "accepted" });
    expect(seen).toEqual([{ body: '{"id":"evt_1"}', query: "7", signature: "sig" }]);

    const get = await fetch(`${server.url}/webhooks/test`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(() => server.route("post", "/webhooks/test", () => jsonResponse(200, {}))).toThrow(/registered twice/);
  });

  it("answers 413 to a body over the limit without calling the handler", async () => {
    const server = await start({ bodyLimitBytes: 16 });
    let calls = 0;
    server.route("POST", "/in", (request) => {
      calls += 1;
      return { status: 200, body: `${request.body.length}` };
    });
    const exact = await send(server.url, { method: "POST", path: "/in", body: Buffer.alloc(16, 1) });
    expect(exact).toMatchObject({ status: 200, body: "16" });
    // Declared too large up front.
    const declared = await send(server.url, { method: "POST", path: "/in", body: Buffer.alloc(17, 1) });
    expect(declared.status).toBe(413);
    expect(declared.headers.connection).toBe("close");
    // Chunked, so the size is only known while reading.
    const streamed = await send(server.url, { method: "POST", path: "/in", chunks: [Buffer.alloc(10, 1), Buffer.alloc(10, 1)] });
    expect(streamed.status).toBe(413);
    expect(calls).toBe(1);
  });

  it("serves readiness from the callback", async () => {
    let readiness: { ready: true } | { ready: false; reason: string } = { ready: false, reason: "store loading" };
    const server = await start({ ready: () => readiness });
    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: "not ready", reason: "store loading" });
    readiness = { ready: true };
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("serves the registry's metrics in Prometheus text", async () => {
    const registry = new Registry();
    new Counter({ name: "perkbridge_test_total", help: "a test counter", registers: [registry] }).inc(3);
    const server = await start({ registry });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(registry.contentType);
    expect(await res.text()).toContain("perkbridge_test_total 3");
  });

  it("turns a throwing handler into a logged 500 and keeps serving", async () => {
    const server = await start();
    server.route("GET", "/boom", () => {
      throw new Error("handler exploded");
    });
    server.route("GET", "/boom-async", async () => Promise.reject(new Error("async exploded")));
    for (const path of ["/boom", "/boom-async"]) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).toBe('{"error":"internal error"}');
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const errors = logLines.map((line) => JSON.parse(line) as { msg: string; err?: { message: string } });
    expect(errors.map((entry) => entry.err?.message)).toEqual(["handler exploded", "async exploded"]);
  });

  it("stops promptly with an open keep-alive connection and a request that never finishes", async () => {
    const server = await start();
    let entered: () => void = () => undefined;
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    server.route("GET", "/hang", () => {
      entered();
      return new Promise(() => undefined);
    });
    const hung = send(server.url, { path: "/hang" }).then(
      () => "answered",
      (error: Error) => error.message,
    );
    await handlerEntered;
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    try {
      const res = await send(server.url, { path: "/healthz", agent });
      expect(res.status).toBe(200);
      expect(res.headers.connection).toBe("keep-alive");
      // The socket is now idle in the agent's pool; close() alone would wait for it.
      const idle = Object.values(agent.freeSockets).flat();
      expect(idle).toHaveLength(1);
      const closed = new Promise<void>((resolve) => idle[0]?.once("close", () => resolve()));
      await server.stop();
      await closed;
      expect(await hung).toBe("socket hang up");
      await server.stop();
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    } finally {
      agent.destroy();
    }
  });

  it("while draining refuses webhook routes with 503 and Retry-After, waits for requests in flight", async () => {
    const server = await start({ retryAfterSeconds: 7 });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let finished = 0;
    let entered: () => void = () => undefined;
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    server.route(
      "POST",
      "/webhooks/slow",
      async () => {
        entered();
        await held;
        finished += 1;
        return jsonResponse(200, { result: "accepted" });
      },
      { refuseWhileDraining: true },
    );
    const inFlight = fetch(`${server.url}/webhooks/slow`, { method: "POST", body: "{}" });
    await handlerEntered;
    let drained = false;
    const draining = server.drain().then(() => (drained = true));

    const refused = await fetch(`${server.url}/webhooks/slow`, { method: "POST", body: "{}" });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("7");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    expect(drained).toBe(false);

    release();
    expect((await inFlight).status).toBe(200);
    await draining;
    expect(finished).toBe(1);
  });

  it("reports a port in use with a clear error", async () => {
    const first = await start();
    const port = Number(new URL(first.url).port);
    await expect(start({ port })).rejects.toMatchObject({ code: "ERR_HTTP_LISTEN", message: expect.stringContaining("EADDRINUSE") });
  });
});
