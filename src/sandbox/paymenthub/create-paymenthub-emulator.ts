import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "../../core/ports.js";
import type { WireMember } from "../../sources/paymenthub/paymenthub-schemas.js";
import { signPayload } from "../../sources/paymenthub/verify-signature.js";
import { applyMetadataPatch, type PatchMode } from "./apply-metadata-patch.js";
import { createRateWindows, type RateLimitOptions } from "./create-rate-windows.js";
import { postWebhook, type PostOutcome } from "./post-webhook.js";

/** Settings of {@link createPaymentHubEmulator}; every default follows docs/paymenthub-assumptions.md. */
export interface PaymentHubEmulatorOptions {
  readonly apiKey: string;
  readonly webhookSecret: string;
  /** Where signed events are POSTed; without it events are only recorded in `events`. */
  readonly webhookUrl?: string;
  /** Default: the doc's 1000 per hour and 100 per minute. */
  readonly rateLimit?: RateLimitOptions;
  /** Drives `created_at`, event `created` and the rate windows. */
  readonly clock?: Clock;
  /** Default `replace`: the reading under which a partial PATCH loses data. */
  readonly patchMode?: PatchMode;
  /** UTF-8 bytes of the stored metadata JSON. Default 16,384 (the doc's "16KB"). */
  readonly metadataLimitBytes?: number;
  /** Waits before redelivery attempts. Default 1 s, 5 s, 25 s, 125 s, 625 s (six attempts in all). */
  readonly webhookRetryDelaysMs?: readonly number[];
  /** Multiplies every redelivery wait, so tests run fast (e.g. 0.01). Default 1. */
  readonly webhookRetryScale?: number;
  /** Per delivery attempt. Default 10 s. */
  readonly webhookTimeoutMs?: number;
  /** Whether a PATCH over the API emits `member.updated`, as a platform may. Default true. */
  readonly emitOnPatch?: boolean;
}

/** One API request the emulator received. `status` 0: the connection was dropped or the server closed first. */
export interface EmulatorCall {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  status: number;
}

/** One webhook event and its delivery attempts. */
export interface WebhookDelivery {
  readonly event: { readonly id: string; readonly type: string; readonly created: string; readonly data: Record<string, unknown> };
  readonly attempts: PostOutcome[];
  delivered: boolean;
}

/** Fields a test may give {@link PaymentHubEmulator.addMember}; the rest is generated. */
export interface NewMember {
  readonly id?: string;
  readonly email: string;
  readonly name?: string;
  readonly plan_id?: string | null;
  readonly status?: string;
  readonly trial_ends_at?: string | null;
  readonly metadata?: Record<string, unknown>;
  readonly subscription?: { readonly id?: string; readonly status?: string; readonly next_payment?: string | null } | null;
  /** Any further fields, stored and returned as-is. */
  readonly [extra: string]: unknown;
}

/** Options of a store mutation. */
export interface EmitOptions {
  /** Default true: emit the matching webhook. */
  readonly emit?: boolean;
}

/** Scriptable faults, applied to API requests in this order: drop, delay, auth, 429, fail. */
export interface EmulatorFaults {
  /** The next `n` requests get `status` (default 500) with an `api_error` envelope. */
  failNext(n: number, status?: number): void;
  /** The next `n` requests have their socket destroyed without an answer. */
  dropNext(n: number): void;
  /** The next `n` requests get 429; `retryAfter` seconds (default "1"), `null` to send no Retry-After. */
  rateLimit429Next(n: number, retryAfter?: string | null): void;
  /** Wait this long before answering each request (a hung server when large). */
  delayMs: number;
}

export interface PaymentHubEmulator {
  /** `http://127.0.0.1:<port>/v1`; only after `start()`. */
  readonly url: string;
  start(): Promise<void>;
  /** Stops listening, closes open connections and abandons pending redeliveries. */
  close(): Promise<void>;
  readonly calls: readonly EmulatorCall[];
  readonly deliveries: readonly WebhookDelivery[];
  readonly faults: EmulatorFaults;
  setWebhookUrl(url: string | undefined): void;
  setPatchMode(mode: PatchMode): void;
  getMember(id: string): WireMember | undefined;
  listMembers(): WireMember[];
  /** Emits `member.created`. */
  addMember(input: NewMember, options?: EmitOptions): WireMember;
  /** Emits `member.updated` with `changes` (previous values of the changed fields). */
  updateMember(id: string, changes: Partial<Omit<NewMember, "id">>, options?: EmitOptions): WireMember;
  /** Emits `member.deleted` with `{ member_id, reason }`. */
  deleteMember(id: string, reason?: string, options?: EmitOptions): void;
  /** Gives the member an active subscription; emits `subscription.created`. */
  createSubscription(memberId: string, input: { readonly planId?: string; readonly nextPayment?: string }, options?: EmitOptions): WireMember;
  /** Moves `next_payment`; emits `subscription.renewed`. */
  renewSubscription(memberId: string, nextPayment: string, options?: EmitOptions): WireMember;
  /** Status `canceled`; emits `subscription.canceled` with `reason`. */
  cancelSubscription(memberId: string, reason?: string, options?: EmitOptions): WireMember;
  /** Emits `payment.succeeded` or `payment.failed` (with `error`); changes no member state. */
  recordPayment(memberId: string, input: { readonly succeeded: boolean; readonly amount?: number; readonly currency?: string; readonly error?: { code: string; message: string } }): void;
  /** Posts an arbitrary signed event (with redelivery). */
  sendEvent(type: string, data: Record<string, unknown>): Promise<WebhookDelivery>;
  /** Posts `body` once with exactly `headers` (nothing signed): for forged or malformed webhooks. */
  sendRaw(body: string | Buffer, headers: Readonly<Record<string, string>>): Promise<PostOutcome>;
  /** Resolves when every delivery started so far has finished or given up. */
  settled(): Promise<void>;
}

const DEFAULT_RETRY_DELAYS = [1_000, 5_000, 25_000, 125_000, 625_000];
const MAX_BODY_BYTES = 1_048_576;
const MEMBER_PATH = /^\/v1\/members\/([^/]+)$/;

/**
 * A loopback PaymentHub: the REST API of the doc (members list, get, patch)
 * with Bearer auth, error envelopes, sliding-window rate limits and
 * `X-RateLimit-Remaining`, plus signed webhooks with redelivery.
 */
export function createPaymentHubEmulator(options: PaymentHubEmulatorOptions): PaymentHubEmulator {
  const clock: Clock = options.clock ?? { now: () => Date.now() };
  const limits = options.rateLimit ?? { perHour: 1000, perMinute: 100 };
  const metadataLimit = options.metadataLimitBytes ?? 16_384;
  const retryDelays = (options.webhookRetryDelaysMs ?? DEFAULT_RETRY_DELAYS).map((ms) => ms * (options.webhookRetryScale ?? 1));
  const webhookTimeoutMs = options.webhookTimeoutMs ?? 10_000;
  const emitOnPatch = options.emitOnPatch ?? true;
  let webhookUrl = options.webhookUrl;
  let patchMode: PatchMode = options.patchMode ?? "replace";

  const windows = createRateWindows(limits, clock);
  const members = new Map<string, WireMember>();
  const calls: EmulatorCall[] = [];
  const deliveries: WebhookDelivery[] = [];
  const pending = new Set<Promise<unknown>>();
  const waits = new Map<NodeJS.Timeout, () => void>();
  let server: Server | undefined;
  let url: string | undefined;
  let closed = false;
  let counter = 0;
  let failCount = 0;
  let failStatus = 500;
  let dropCount = 0;
  let limitedCount = 0;
  let limitedRetryAfter: string | null = "1";

  const faults: EmulatorFaults = {
    failNext(n, status = 500) {
      failCount = n;
      failStatus = status;
    },
    dropNext(n) {
      dropCount = n;
    },
    rateLimit429Next(n, retryAfter = "1") {
      limitedCount = n;
      limitedRetryAfter = retryAfter;
    },
    delayMs: 0,
  };

  const nextId = (prefix: string): string => `${prefix}_${String(++counter).padStart(10, "0")}`;
  const iso = (): string => new Date(clock.now()).toISOString();

  /** A wait that `close()` cuts short. */
  function wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waits.delete(timer);
        resolve();
      }, ms);
      waits.set(timer, resolve);
    });
  }

  function track<T>(promise: Promise<T>): Promise<T> {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise));
    return promise;
  }

  async function deliver(delivery: WebhookDelivery, target: string): Promise<void> {
    const body = Buffer.from(JSON.stringify(delivery.event), "utf8");
    const headers = {
      "content-type": "application/json",
      "x-paymenthub-signature": signPayload(body, options.webhookSecret),
    };
    for (let attempt = 0; attempt <= retryDelays.length && !closed; attempt++) {
      if (attempt > 0) await wait(retryDelays[attempt - 1] as number);
      if (closed) return;
      const outcome = await postWebhook(target, body, headers, webhookTimeoutMs);
      delivery.attempts.push(outcome);
      if ("status" in outcome && outcome.status >= 200 && outcome.status <= 299) {
        delivery.delivered = true;
        return;
      }
    }
  }

  function sendEvent(type: string, data: Record<string, unknown>): Promise<WebhookDelivery> {
    const delivery: WebhookDelivery = {
      event: { id: nextId("evt"), type, created: iso(), data: structuredClone(data) },
      attempts: [],
      delivered: false,
    };
    deliveries.push(delivery);
    const target = webhookUrl;
    if (target === undefined || closed) return Promise.resolve(delivery);
    return track(deliver(delivery, target).then(() => delivery));
  }

  function emit(emitOptions: EmitOptions | undefined, type: string, data: Record<string, unknown>): void {
    if (emitOptions?.emit ?? true) void sendEvent(type, data);
  }

  function mustGet(id: string): WireMember {
    const member = members.get(id);
    if (!member) throw new Error(`emulator has no member ${id}`);
    return member;
  }

  function subscriptionPayload(member: WireMember): Record<string, unknown> {
    return {
      id: member.subscription?.id ?? null,
      member_id: member.id,
      plan_id: member.plan_id ?? null,
      status: member.subscription?.status ?? member.status,
      next_payment: member.subscription?.next_payment ?? null,
    };
  }

  // ---- HTTP ----

  function send(res: ServerResponse, call: EmulatorCall, status: number, body: unknown, headers: Record<string, string> = {}): void {
    call.status = status;
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  function envelope(type: string, message: string, code?: string, param?: string): { error: Record<string, string> } {
    return {
      error: {
        type,
        message,
        ...(code !== undefined ? { code } : {}),
        ...(param !== undefined ? { param } : {}),
        request_id: nextId("req"),
      },
    };
  }

  function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on("end", () => resolve(size <= MAX_BODY_BYTES ? Buffer.concat(chunks) : undefined));
      req.on("error", () => resolve(undefined));
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsedUrl = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = req.method ?? "GET";
    const call: EmulatorCall = { method, path: parsedUrl.pathname, query: Object.fromEntries(parsedUrl.searchParams), status: 0 };
    calls.push(call);
    const body = await readBody(req);

    if (dropCount > 0) {
      dropCount--;
      req.socket.destroy();
      return;
    }
    if (faults.delayMs > 0) {
      await wait(faults.delayMs);
      if (closed || res.destroyed) return;
    }

    const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!auth) {
      send(res, call, 401, envelope("authentication_error", "No API key provided. Send 'Authorization: Bearer <API key>'.", "api_key_missing"));
      return;
    }
    if (auth[1] !== options.apiKey) {
      // Never echo the key back.
      send(res, call, 401, envelope("authentication_error", "Invalid API key provided.", "api_key_invalid"));
      return;
    }

    if (limitedCount > 0) {
      limitedCount--;
      const headers: Record<string, string> = { "x-ratelimit-remaining": "0" };
      if (limitedRetryAfter !== null) headers["retry-after"] = limitedRetryAfter;
      send(res, call, 429, envelope("rate_limit_error", "Too many requests.", "rate_limit_exceeded"), headers);
      return;
    }
    const decision = windows.take();
    if (!decision.allowed) {
      send(res, call, 429, envelope("rate_limit_error", "Too many requests.", "rate_limit_exceeded"), {
        "x-ratelimit-remaining": "0",
        "retry-after": String(decision.retryAfterSeconds ?? 1),
      });
      return;
    }
    const rate = { "x-ratelimit-remaining": String(decision.remaining) };

    if (failCount > 0) {
      failCount--;
      send(res, call, failStatus, envelope("api_error", "An internal error occurred (emulated)."), rate);
      return;
    }
    if (body === undefined) {
      send(res, call, 413, envelope("invalid_request_error", "Request body too large.", "body_too_large"), rate);
      return;
    }

    const path = parsedUrl.pathname.replace(/\/+$/, "");
    const memberMatch = MEMBER_PATH.exec(path);
    if (path === "/v1/members" && method === "GET") {
      listRoute(res, call, parsedUrl.searchParams, rate);
    } else if (memberMatch && method === "GET") {
      const member = members.get(decodeURIComponent(memberMatch[1] as string));
      if (member) send(res, call, 200, member, rate);
      else send(res, call, 404, envelope("invalid_request_error", "No such member.", "resource_missing", "member_id"), rate);
    } else if (memberMatch && method === "PATCH") {
      patchRoute(res, call, decodeURIComponent(memberMatch[1] as string), body, rate);
    } else {
      send(res, call, 404, envelope("invalid_request_error", `Unrecognized request URL (${method} ${parsedUrl.pathname}).`, "route_not_found"), rate);
    }
  }

  function listRoute(res: ServerResponse, call: EmulatorCall, query: URLSearchParams, rate: Record<string, string>): void {
    const intParam = (name: string, fallback: number, max: number): number | undefined => {
      const raw = query.get(name);
      if (raw === null) return fallback;
      if (!/^\d+$/.test(raw)) return undefined;
      const value = Number(raw);
      return value >= 1 && value <= max ? value : undefined;
    };
    const page = intParam("page", 1, Number.MAX_SAFE_INTEGER);
    if (page === undefined) {
      send(res, call, 400, envelope("invalid_request_error", "page must be an integer of at least 1.", "parameter_invalid", "page"), rate);
      return;
    }
    const limit = intParam("limit", 20, 100);
    if (limit === undefined) {
      send(res, call, 400, envelope("invalid_request_error", "limit must be an integer from 1 to 100.", "parameter_invalid", "limit"), rate);
      return;
    }
    const status = query.get("status");
    const planId = query.get("plan_id");
    const matching = [...members.values()].filter(
      (m) => (status === null || m.status === status) && (planId === null || m.plan_id === planId),
    );
    send(
      res,
      call,
      200,
      {
        members: matching.slice((page - 1) * limit, page * limit),
        pagination: { total: matching.length, page, per_page: limit, total_pages: Math.ceil(matching.length / limit) },
      },
      rate,
    );
  }

  function patchRoute(res: ServerResponse, call: EmulatorCall, id: string, body: Buffer, rate: Record<string, string>): void {
    const member = members.get(id);
    if (!member) {
      send(res, call, 404, envelope("invalid_request_error", "No such member.", "resource_missing", "member_id"), rate);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {
      send(res, call, 400, envelope("invalid_request_error", "Request body is not valid JSON.", "parameter_invalid"), rate);
      return;
    }
    const metadata = typeof json === "object" && json !== null ? (json as Record<string, unknown>)["metadata"] : undefined;
    if (metadata === undefined) {
      send(res, call, 400, envelope("invalid_request_error", "The metadata field is required.", "parameter_missing", "metadata"), rate);
      return;
    }
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
      send(res, call, 400, envelope("invalid_request_error", "metadata must be an object.", "parameter_invalid", "metadata"), rate);
      return;
    }
    const next = applyMetadataPatch(member.metadata ?? {}, metadata as Record<string, unknown>, patchMode);
    const size = Buffer.byteLength(JSON.stringify(next), "utf8");
    if (size > metadataLimit) {
      send(
        res,
        call,
        400,
        envelope("invalid_request_error", `metadata is ${size} bytes; at most ${metadataLimit} are allowed.`, "metadata_too_large", "metadata"),
        rate,
      );
      return;
    }
    const previous = member.metadata ?? {};
    const updated: WireMember = { ...member, metadata: next };
    members.set(id, updated);
    send(res, call, 200, updated, rate);
    if (emitOnPatch) emit(undefined, "member.updated", { member: structuredClone(updated), changes: { metadata: previous } });
  }

  return {
    get url() {
      if (url === undefined) throw new Error("PaymentHub emulator: call start() first");
      return url;
    },
    async start() {
      const created = createServer((req, res) => {
        handle(req, res).catch(() => {
          if (!res.headersSent && !res.destroyed) {
            res.writeHead(500);
            res.end();
          }
        });
      });
      server = created;
      await new Promise<void>((resolve, reject) => {
        created.once("error", reject);
        created.listen(0, "127.0.0.1", () => resolve());
      });
      url = `http://127.0.0.1:${(created.address() as AddressInfo).port}/v1`;
    },
    async close() {
      closed = true;
      for (const [timer, resolve] of waits) {
        clearTimeout(timer);
        resolve();
      }
      waits.clear();
      const current = server;
      server = undefined;
      if (current) {
        const done = new Promise<void>((resolve) => current.close(() => resolve()));
        current.closeAllConnections();
        await done;
      }
      await Promise.allSettled([...pending]);
    },
    get calls() {
      return calls;
    },
    get deliveries() {
      return deliveries;
    },
    faults,
    setWebhookUrl(next) {
      webhookUrl = next;
    },
    setPatchMode(mode) {
      patchMode = mode;
    },
    getMember(id) {
      const member = members.get(id);
      return member ? structuredClone(member) : undefined;
    },
    listMembers() {
      return [...members.values()].map((m) => structuredClone(m));
    },
    addMember(input, emitOptions) {
      const id = input.id ?? nextId("mem");
      if (members.has(id)) throw new Error(`emulator already has member ${id}`);
      const member: WireMember = {
        ...structuredClone(input),
        id,
        email: input.email,
        name: input.name ?? null,
        plan_id: input.plan_id ?? null,
        status: input.status ?? "active",
        created_at: iso(),
        metadata: structuredClone(input.metadata ?? {}),
      };
      members.set(id, member);
      emit(emitOptions, "member.created", { member: structuredClone(member) });
      return structuredClone(member);
    },
    updateMember(id, changes, emitOptions) {
      const member = mustGet(id);
      const previous: Record<string, unknown> = {};
      for (const key of Object.keys(changes)) previous[key] = member[key] ?? null;
      const updated: WireMember = { ...member, ...structuredClone(changes), id } as WireMember;
      members.set(id, updated);
      emit(emitOptions, "member.updated", { member: structuredClone(updated), changes: previous });
      return structuredClone(updated);
    },
    deleteMember(id, reason = "deleted", emitOptions) {
      mustGet(id);
      members.delete(id);
      emit(emitOptions, "member.deleted", { member_id: id, reason });
    },
    createSubscription(memberId, input, emitOptions) {
      const member = mustGet(memberId);
      const updated: WireMember = {
        ...member,
        plan_id: input.planId ?? member.plan_id ?? null,
        status: "active",
        subscription: { id: nextId("sub"), status: "active", next_payment: input.nextPayment ?? null },
      };
      members.set(memberId, updated);
      emit(emitOptions, "subscription.created", { subscription: subscriptionPayload(updated) });
      return structuredClone(updated);
    },
    renewSubscription(memberId, nextPayment, emitOptions) {
      const member = mustGet(memberId);
      const updated: WireMember = {
        ...member,
        status: "active",
        subscription: { ...(member.subscription ?? { id: nextId("sub") }), status: "active", next_payment: nextPayment },
      };
      members.set(memberId, updated);
      emit(emitOptions, "subscription.renewed", { subscription: subscriptionPayload(updated) });
      return structuredClone(updated);
    },
    cancelSubscription(memberId, reason = "canceled_by_user", emitOptions) {
      const member = mustGet(memberId);
      const updated: WireMember = {
        ...member,
        status: "canceled",
        subscription: { ...(member.subscription ?? { id: nextId("sub") }), status: "canceled" },
      };
      members.set(memberId, updated);
      emit(emitOptions, "subscription.canceled", { subscription: subscriptionPayload(updated), reason });
      return structuredClone(updated);
    },
    recordPayment(memberId, input) {
      mustGet(memberId);
      const payment = {
        id: nextId("pay"),
        member_id: memberId,
        amount: input.amount ?? 999,
        currency: input.currency ?? "eur",
        status: input.succeeded ? "succeeded" : "failed",
      };
      if (input.succeeded) emit(undefined, "payment.succeeded", { payment });
      else emit(undefined, "payment.failed", { payment, error: input.error ?? { code: "card_declined", message: "The card was declined." } });
    },
    sendEvent,
    sendRaw(body, headers) {
      const target = webhookUrl;
      if (target === undefined) return Promise.reject(new Error("PaymentHub emulator: no webhookUrl set"));
      return track(postWebhook(target, typeof body === "string" ? Buffer.from(body, "utf8") : body, headers, webhookTimeoutMs));
    },
    async settled() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
