import { setTimeout as sleep } from "node:timers/promises";
import got, { RequestError, TimeoutError } from "got";
import type { z } from "zod";
import { PerkbridgeError } from "../../core/errors.js";
import type { Clock } from "../../core/ports.js";
import { computeRetryDelay, parseRetryAfter } from "./compute-retry-delay.js";
import { PaymentHubError, type PaymentHubErrorCode } from "./paymenthub-error.js";
import {
  apiMemberSchema,
  errorEnvelopeSchema,
  memberListSchema,
  type WireMember,
  type WireMemberList,
} from "./paymenthub-schemas.js";

/** Who is asking, so a rate budget can serve webhook lookups before writes before polling. */
export type RequestPriority = "webhook" | "write" | "poll";

/** What the client saw in one response, for the rate budget. */
export interface RateObservation {
  readonly status: number;
  /** `X-RateLimit-Remaining`, when present and a number. */
  readonly remaining?: number;
  /** The raw `Retry-After` header, when present. */
  readonly retryAfter?: string;
}

/**
 * The client-side rate budget, plugged in by the daemon. The client calls
 * `acquire` before every attempt (retries included) and `observe` after every
 * response (429 included). A rejected `acquire` fails the request with that rejection.
 */
export interface RequestGate {
  acquire(priority: RequestPriority): Promise<void>;
  observe(info: RateObservation): void;
}

/** The subset of a pino logger the client uses. It never logs the API key. */
export interface PaymentHubLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PaymentHubClientOptions {
  /** e.g. `https://api.paymenthub.com/v1`; overridable to point at an emulator or staging. */
  readonly baseUrl: string;
  readonly apiKey: string;
  /** Upper bound of one attempt, from connect to the last byte; a hung server fails after this. */
  readonly timeoutMs: number;
  readonly gate?: RequestGate;
  /**
   * Retries of GET on 5xx, connection resets and timeouts (default limit 2,
   * base 250 ms, max 10 s). PATCH is never retried here: the caller's durable queue does it.
   */
  readonly retry?: { readonly limit?: number; readonly baseDelayMs?: number; readonly maxDelayMs?: number };
  readonly logger?: PaymentHubLogger;
  /** For `Retry-After` given as a date. */
  readonly clock?: Clock;
}

export interface ListMembersQuery {
  /** 1-based. */
  readonly page: number;
  /** 1 to 100 (the doc's maximum). */
  readonly limit: number;
  readonly status?: string;
  readonly planId?: string;
}

export interface RequestOptions {
  readonly priority?: RequestPriority;
}

/** PaymentHub REST, wire format in and out. Failures are {@link PaymentHubError}s. */
export interface PaymentHubClient {
  /** GET /members (priority `poll` by default). */
  listMembers(query: ListMembersQuery, options?: RequestOptions): Promise<WireMemberList>;
  /**
   * GET /members/{id} (priority `webhook` by default). `null` only for a 404
   * that carries PaymentHub's error envelope: a bare 404 (wrong base URL, a
   * proxy) is an error, never "member gone".
   */
  getMember(id: string, options?: RequestOptions): Promise<WireMember | null>;
  /**
   * PATCH /members/{id} with `{ metadata }` (priority `write` by default).
   * Sends the whole document: whether PaymentHub merges or replaces is
   * undocumented, so callers read, merge and write the full metadata. Resolves
   * to the member when the response body is one, else `undefined`.
   */
  patchMember(id: string, metadata: Readonly<Record<string, unknown>>, options?: RequestOptions): Promise<WireMember | undefined>;
}

interface RawResponse {
  readonly status: number;
  readonly text: string;
  readonly retryAfter?: string;
}

const RETRYABLE_NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "EAI_AGAIN",
  "ECONNABORTED",
]);

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function issuesOf(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`)
    .join("; ");
}

/** Creates a PaymentHub REST client. Throws a PerkbridgeError for an unusable base URL. */
export function createPaymentHubClient(options: PaymentHubClientOptions): PaymentHubClient {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new PerkbridgeError("ERR_PAYMENTHUB_CONFIG", "The PaymentHub base URL is not a URL. Set it to e.g. https://api.paymenthub.com/v1.");
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new PerkbridgeError("ERR_PAYMENTHUB_CONFIG", "The PaymentHub base URL must start with http:// or https://.");
  }
  if (options.apiKey.length === 0) {
    throw new PerkbridgeError("ERR_PAYMENTHUB_CONFIG", "The PaymentHub API key is empty. Set the API key of the paymenthub source.");
  }
  if (!(options.timeoutMs > 0)) {
    throw new PerkbridgeError("ERR_PAYMENTHUB_CONFIG", "The PaymentHub request timeout must be a positive number of milliseconds.");
  }
  const basePath = base.pathname.replace(/\/+$/, "");
  const retryLimit = Math.max(0, options.retry?.limit ?? 2);
  const delays = { baseDelayMs: options.retry?.baseDelayMs ?? 250, maxDelayMs: options.retry?.maxDelayMs ?? 10_000 };
  const now = (): number => (options.clock ? options.clock.now() : Date.now());
  const apiKey = options.apiKey;

  /** Removes the key wherever a server or library might echo it. */
  const redact = (text: string): string => text.split(apiKey).join("[redacted]");

  function urlFor(path: string, query?: URLSearchParams): { url: URL; shown: string } {
    const url = new URL(base.href);
    url.pathname = basePath + path;
    url.search = query ? query.toString() : "";
    url.hash = "";
    const shown = new URL(url.href);
    shown.username = "";
    shown.password = "";
    return { url, shown: redact(shown.href) };
  }

  function networkError(method: string, shown: string, error: unknown): PaymentHubError {
    const isTimeout = error instanceof TimeoutError;
    const code = error instanceof RequestError ? error.code : undefined;
    const text = error instanceof Error ? redact(error.message) : "unknown error";
    // A fresh cause: got's own error holds the request options, Authorization header included.
    const cause = Object.assign(new Error(text), code !== undefined ? { code } : {});
    if (isTimeout) {
      return new PaymentHubError(
        "ERR_PAYMENTHUB_TIMEOUT",
        `PaymentHub did not answer ${method} ${shown} within ${options.timeoutMs} ms. Check that PaymentHub is reachable, or raise the timeout.`,
        { method, url: shown, retryable: true },
        { cause },
      );
    }
    return new PaymentHubError(
      "ERR_PAYMENTHUB_NETWORK",
      `Could not reach PaymentHub for ${method} ${shown}: ${text}${code ? ` (${code})` : ""}. Check the base URL and the network.`,
      { method, url: shown, retryable: true },
      { cause },
    );
  }

  function isRetryableNetwork(error: unknown): boolean {
    if (error instanceof TimeoutError) return true;
    return error instanceof RequestError && RETRYABLE_NETWORK_CODES.has(error.code);
  }

  async function send(
    method: "GET" | "PATCH",
    path: string,
    priority: RequestPriority,
    query?: URLSearchParams,
    body?: unknown,
  ): Promise<RawResponse & { shown: string }> {
    const { url, shown } = urlFor(path, query);
    const maxAttempts = method === "GET" ? retryLimit + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      if (options.gate) await options.gate.acquire(priority);
      const started = now();
      let response;
      try {
        response = await got(url, {
          method,
          headers: { authorization: `Bearer ${apiKey}`, accept: "application/json" },
          ...(body !== undefined ? { json: body } : {}),
          timeout: { request: options.timeoutMs },
          // Retries are ours (below) so that every attempt passes the gate.
          retry: { limit: 0 },
          throwHttpErrors: false,
          followRedirect: false,
          responseType: "text",
        });
      } catch (error) {
        if (attempt < maxAttempts && isRetryableNetwork(error)) {
          const delay = computeRetryDelay(attempt, delays);
          options.logger?.warn({ method, url: shown, attempt, delayMs: delay }, "PaymentHub request failed, retrying");
          await sleep(delay);
          continue;
        }
        throw networkError(method, shown, error);
      }
      const status = response.statusCode;
      const remainingText = headerValue(response.headers["x-ratelimit-remaining"]);
      const remaining = remainingText !== undefined && /^\d+$/.test(remainingText.trim()) ? Number(remainingText) : undefined;
      const retryAfter = headerValue(response.headers["retry-after"]);
      options.gate?.observe({
        status,
        ...(remaining !== undefined ? { remaining } : {}),
        ...(retryAfter !== undefined ? { retryAfter } : {}),
      });
      options.logger?.debug({ method, url: shown, status, ms: now() - started, remaining }, "PaymentHub response");
      if (status >= 500 && attempt < maxAttempts) {
        const delay = computeRetryDelay(attempt, delays, parseRetryAfter(retryAfter, now()));
        options.logger?.warn({ method, url: shown, status, attempt, delayMs: delay }, "PaymentHub server error, retrying");
        await sleep(delay);
        continue;
      }
      return { status, text: response.body, shown, ...(retryAfter !== undefined ? { retryAfter } : {}) };
    }
  }

  function httpError(method: string, response: RawResponse & { shown: string }): PaymentHubError {
    const { status, shown } = response;
    const envelope = errorEnvelopeSchema.safeParse(parseJson(response.text));
    const error = envelope.success ? envelope.data.error : undefined;
    const serverMessage = error?.message !== undefined ? redact(error.message) : undefined;
    const retryAfterMs = parseRetryAfter(response.retryAfter, now());
    const details = {
      method,
      url: shown,
      status,
      retryable: status === 429 || status >= 500,
      ...(error?.type !== undefined ? { type: error.type } : {}),
      ...(error?.code !== undefined ? { apiCode: error.code } : {}),
      ...(error?.param !== undefined ? { param: error.param } : {}),
      ...(error?.request_id !== undefined ? { requestId: error.request_id } : {}),
      ...(response.retryAfter !== undefined ? { retryAfter: response.retryAfter } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
    const said = serverMessage !== undefined ? `: ${serverMessage}` : "";
    const ref = error?.request_id !== undefined ? ` (request_id ${error.request_id})` : "";
    let code: PaymentHubErrorCode;
    let advice: string;
    if (status === 429) {
      code = "ERR_PAYMENTHUB_RATE_LIMITED";
      advice = response.retryAfter !== undefined ? `Retry after ${response.retryAfter} s.` : "No Retry-After given; back off.";
    } else if (status === 401) {
      code = "ERR_PAYMENTHUB_UNAUTHORIZED";
      advice = "The API key is missing, wrong or revoked: check the API key of the paymenthub source (the key is not shown here).";
    } else if (status === 403) {
      code = "ERR_PAYMENTHUB_FORBIDDEN";
      advice = "The API key lacks permission for this request: check its scopes in the PaymentHub dashboard.";
    } else if (status === 404) {
      code = "ERR_PAYMENTHUB_NOT_FOUND";
      advice = envelope.success ? "The resource does not exist." : "No PaymentHub error envelope: check the base URL (it should end in /v1).";
    } else if (status === 400) {
      code = "ERR_PAYMENTHUB_BAD_REQUEST";
      advice = "PaymentHub refused the request.";
    } else if (status >= 500) {
      code = "ERR_PAYMENTHUB_SERVER";
      advice = "PaymentHub had an internal error; it is retried later.";
    } else {
      code = "ERR_PAYMENTHUB_HTTP";
      advice = "Unexpected status: check the base URL.";
    }
    return new PaymentHubError(code, `PaymentHub answered ${status} to ${method} ${shown}${said}${ref}. ${advice}`, details);
  }

  function invalidResponse(method: string, shown: string, why: string): PaymentHubError {
    return new PaymentHubError(
      "ERR_PAYMENTHUB_INVALID_RESPONSE",
      `PaymentHub's answer to ${method} ${shown} is not in the documented format (${why}). Check the base URL.`,
      { method, url: shown, retryable: false },
    );
  }

  function memberPath(id: string): string {
    if (id.length === 0) throw new PerkbridgeError("ERR_INVALID_ARGUMENT", "A PaymentHub member id must not be empty.");
    return `/members/${encodeURIComponent(id)}`;
  }

  return {
    async listMembers(query, requestOptions) {
      if (!Number.isInteger(query.page) || query.page < 1) {
        throw new PerkbridgeError("ERR_INVALID_ARGUMENT", `page must be an integer from 1, got ${query.page}.`);
      }
      if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) {
        throw new PerkbridgeError("ERR_INVALID_ARGUMENT", `limit must be an integer from 1 to 100 (the PaymentHub maximum), got ${query.limit}.`);
      }
      const search = new URLSearchParams({ page: String(query.page), limit: String(query.limit) });
      if (query.status !== undefined) search.set("status", query.status);
      if (query.planId !== undefined) search.set("plan_id", query.planId);
      const response = await send("GET", "/members", requestOptions?.priority ?? "poll", search);
      if (response.status !== 200) throw httpError("GET", response);
      const parsed = memberListSchema.safeParse(parseJson(response.text));
      if (!parsed.success) throw invalidResponse("GET", response.shown, issuesOf(parsed.error));
      return parsed.data;
    },

    async getMember(id, requestOptions) {
      const response = await send("GET", memberPath(id), requestOptions?.priority ?? "webhook");
      if (response.status === 404 && isMemberMissing(parseJson(response.text))) return null;
      if (response.status !== 200) throw httpError("GET", response);
      const parsed = apiMemberSchema.safeParse(parseJson(response.text));
      if (!parsed.success) throw invalidResponse("GET", response.shown, issuesOf(parsed.error));
      return parsed.data;
    },

    async patchMember(id, metadata, requestOptions) {
      const response = await send("PATCH", memberPath(id), requestOptions?.priority ?? "write", undefined, { metadata });
      if (response.status < 200 || response.status > 299) throw httpError("PATCH", response);
      const parsed = apiMemberSchema.safeParse(parseJson(response.text));
      return parsed.success ? parsed.data : undefined;
    },
  };
}

/**
 * A 404 confirms a member gone only with PaymentHub's envelope and a code that
 * speaks of a missing resource (or none): `route_not_found` means the base URL
 * is wrong, and must never count as evidence for a revocation.
 */
function isMemberMissing(body: unknown): boolean {
  const parsed = errorEnvelopeSchema.safeParse(body);
  if (!parsed.success) return false;
  const code = parsed.data.error.code;
  return code === undefined || code === null || code === "resource_missing";
}
