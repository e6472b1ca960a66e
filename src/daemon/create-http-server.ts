import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { PerkbridgeError } from "../core/errors.js";

/** What a route handler sees of a request: the body is already read, within the size limit. */
export interface HttpRequest {
  readonly method: string;
  /** The path without the query string: `/webhooks/paymenthub`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The raw bytes, as signatures are computed over them. */
  readonly body: Buffer;
}

/** What a route handler answers. A string body without a content type is sent as text/plain. */
export interface HttpResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

/** Handles one request. A thrown error becomes a generic 500 and is logged; it never crashes the daemon. */
export type RouteHandler = (request: HttpRequest) => HttpResponse | Promise<HttpResponse>;

/** Options of one route. */
export interface RouteOptions {
  /**
   * While the daemon stops, answer 503 with Retry-After instead of running the handler, so a
   * webhook is never accepted that the stopping daemon could not make durable; its sender retries.
   */
  readonly refuseWhileDraining?: boolean;
}

/** Whether the daemon can take webhooks; `reason` says why not, for `/readyz`. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/** Options of {@link createHttpServer}. */
export interface HttpServerOptions {
  readonly host: string;
  /** 0 picks a free port; read the result from `url`. */
  readonly port: number;
  readonly logger: Logger;
  /** Largest request body accepted; larger ones get 413. Defaults to 1 MiB. */
  readonly bodyLimitBytes?: number;
  /** Served on `GET /metrics`. */
  readonly registry: Registry;
  /** Asked on every `GET /readyz`; defaults to always ready. */
  readonly ready?: () => Readiness | Promise<Readiness>;
  /** Retry-After sent with 503 while draining. Defaults to 5. */
  readonly retryAfterSeconds?: number;
  /** How long `drain()` waits for requests in flight. Defaults to 10 s. */
  readonly drainTimeoutMs?: number;
}

/** The public HTTP listener: webhooks, health, readiness and metrics. */
export interface HttpServer {
  /** `http://host:port` once started, with the port actually bound. */
  readonly url: string;
  /** The node server, for a capability that needs its `upgrade` event (the bridge WebSocket). */
  readonly server: Server;
  /** Registers a handler for an exact path and method; may be called before or after start(). */
  route(method: string, path: string, handler: RouteHandler, options?: RouteOptions): void;
  start(): Promise<void>;
  /**
   * Refuses new requests to `refuseWhileDraining` routes, makes `/readyz` answer 503, and waits
   * (up to `drainTimeoutMs`) for requests in flight to finish. Call before stopping what handlers use.
   */
  drain(): Promise<void>;
  /** Closes the listener and every connection, keep-alive ones included. Idempotent. */
  stop(): Promise<void>;
}

/** A JSON response. */
export function jsonResponse(status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): HttpResponse {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: JSON.stringify(value),
  };
}

interface Route {
  readonly handler: RouteHandler;
  readonly refuseWhileDraining: boolean;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Creates the public listener with `/healthz`, `/readyz` and `/metrics` built in. */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const { logger, registry } = options;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const routes = new Map<string, Map<string, Route>>();
  let draining = false;
  let url: string | undefined;
  let stopping: Promise<void> | undefined;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  const server = createServer((req, res) => {
    inFlight += 1;
    res.on("close", () => {
      inFlight -= 1;
      if (inFlight === 0) onIdle?.();
    });
    void handle(req, res);
  });

  function route(method: string, path: string, handler: RouteHandler, routeOptions: RouteOptions = {}): void {
    const byMethod = routes.get(path) ?? new Map<string, Route>();
    const key = method.toUpperCase();
    if (byMethod.has(key)) {
      throw new PerkbridgeError("ERR_HTTP_ROUTE", `route ${key} ${path} is registered twice`);
    }
    byMethod.set(key, { handler, refuseWhileDraining: routeOptions.refuseWhileDraining ?? false });
    routes.set(path, byMethod);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const target = req.url ?? "/";
    const queryAt = target.indexOf("?");
    const path = queryAt === -1 ? target : target.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? "" : target.slice(queryAt + 1));
    const byMethod = routes.get(path);
    const found = byMethod?.get(method);
    try {
      if (byMethod === undefined) {
        return send(res, jsonResponse(404, { error: "not found" }));
      }
      if (found === undefined) {
        return send(res, jsonResponse(405, { error: "method not allowed" }, { allow: [...byMethod.keys()].join(", ") }));
      }
      if (draining && found.refuseWhileDraining) {
        return send(
          res,
          jsonResponse(503, { error: "shutting down" }, { "retry-after": String(options.retryAfterSeconds ?? 5) }),
        );
      }
      const body = await readBody(req, bodyLimit);
      if (body === "too-large") {
        // Closing the connection is what stops the rest of the upload from being read.
        return send(res, jsonResponse(413, { error: `body over ${bodyLimit} bytes` }, { connection: "close" }));
      }
      if (body === "aborted") return;
      send(res, await found.handler({ method, path, query, headers: req.headers, body }));
    } catch (error) {
      logger.error({ err: error, method, path }, "request handler failed");
      if (!res.headersSent) send(res, jsonResponse(500, { error: "internal error" }));
      else res.destroy();
    }
  }

  function send(res: ServerResponse, response: HttpResponse): void {
    const body = response.body ?? "";
    const headers: Record<string, string> = { ...response.headers };
    if (body.length > 0 && !Object.keys(headers).some((name) => name.toLowerCase() === "content-type")) {
      headers["content-type"] = "text/plain; charset=utf-8";
    }
    res.writeHead(response.status, headers);
    res.end(body);
  }

  route("GET", "/healthz", () => jsonResponse(200, { status: "ok" }));
  route("GET", "/readyz", async () => {
    const readiness: Readiness = draining
      ? { ready: false, reason: "shutting down" }
      : ((await options.ready?.()) ?? { ready: true });
    return readiness.ready
      ? jsonResponse(200, { status: "ready" })
      : jsonResponse(503, { status: "not ready", reason: readiness.reason });
  });
  route("GET", "/metrics", async () => ({
    status: 200,
    headers: { "content-type": registry.contentType },
    body: await registry.metrics(),
  }));

  return {
    get url(): string {
      if (url === undefined) throw new PerkbridgeError("ERR_HTTP_NOT_STARTED", "the HTTP server is not listening");
      return url;
    },
    server,
    route,
    async start() {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => {
          reject(
            new PerkbridgeError(
              "ERR_HTTP_LISTEN",
              `cannot listen on ${options.host}:${options.port} (${error.code ?? error.message}); ` +
                "free the port or set another server port in the config",
              { cause: error },
            ),
          );
        };
        server.once("error", onError);
        server.listen(options.port, options.host, () => {
          server.off("error", onError);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      url = `http://${host}:${address.port}`;
    },
    async drain() {
      draining = true;
      if (inFlight === 0) return;
      const timeoutMs = options.drainTimeoutMs ?? 10_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ inFlight, timeoutMs }, "requests still in flight after the drain timeout");
          resolve();
        }, timeoutMs);
        timer.unref();
        onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      onIdle = undefined;
    },
    stop() {
      if (url === undefined) return Promise.resolve();
      stopping ??= new Promise<void>((resolve) => {
        draining = true;
        server.close(() => resolve());
        // close() alone waits for keep-alive connections to time out.
        server.closeAllConnections();
      });
      return stopping;
    },
  };
}

/** Reads the body up to `limit` bytes; beyond it stops collecting and reports "too-large". */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | "too-large" | "aborted"> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return Promise.resolve("too-large");
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Buffer | "too-large" | "aborted"): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish("too-large");
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = (): void => finish(Buffer.concat(chunks));
    const onClose = (): void => finish("aborted");
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    // An aborted request also emits "error"; "close" already settles it.
    req.on("error", () => undefined);
  });
}
