import type { Clock } from "../../core/ports.js";

/** An event as the source's parser hands it over: only what the intake and the worker need. */
export interface IntakeEvent {
  readonly id: string;
  readonly type: string;
  /** Epoch ms of the event's `created`; absent when the payload gives no readable time. */
  readonly created?: number;
  readonly known: boolean;
  readonly memberId?: string;
}

/** An accepted event waiting in the durable inbox until the worker has planned it. */
export interface InboxEntry<E extends IntakeEvent = IntakeEvent> {
  /** `source:eventId`. */
  readonly key: string;
  readonly source: string;
  /** The parsed event as the source's parser gave it, so a restart can process it again. */
  readonly event: E;
  readonly receivedAt: number;
}

/** A processed (or accepted) event id, kept for deduplication until pruned by age. */
export interface SeenEvent {
  readonly receivedAt: number;
}

interface Collection<T> {
  get(id: string): T | undefined;
  has(id: string): boolean;
  set(id: string, value: T): void;
}

export type IntakeResult =
  | "accepted"
  | "duplicate"
  | "stale"
  | "future"
  | "ignored-type"
  | "forged"
  | "invalid"
  | "too-large";

export interface IntakeResponse {
  readonly status: number;
  readonly body: { readonly result: IntakeResult; readonly reason?: string };
}

export interface WebhookIntakeOptions<E extends IntakeEvent> {
  readonly source: string;
  readonly verify: (raw: Buffer, signature: string | undefined) => boolean;
  readonly parse: (raw: Buffer) => { readonly ok: true; readonly event: E } | { readonly ok: false; readonly reason: string };
  readonly signatureHeader: string;
  readonly inbox: Collection<InboxEntry<E>>;
  readonly seen: Collection<SeenEvent>;
  readonly store: { commit(): Promise<void> };
  readonly clock: Clock;
  /** Events older than this are acknowledged and ignored (replay protection). */
  readonly maxAgeMs: number;
  /** Events further than this in the future are acknowledged and ignored. */
  readonly maxFutureMs: number;
  readonly logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Called once the event is durable; the worker takes it from there. */
  readonly onAccepted: (entry: InboxEntry<E>) => void;
  /** Counts each outcome, for metrics. */
  readonly onResult?: (result: IntakeResult) => void;
}

/**
 * Receives one webhook: verify, parse, deduplicate, persist, acknowledge.
 * Transport-agnostic (the HTTP route hands in the raw body and the signature
 * header), as octokit/webhooks does, so the rules are tested without sockets.
 * A 2xx is returned only once the event is on disk (DESIGN.md invariant 6).
 */
export function createWebhookIntake<E extends IntakeEvent>(o: WebhookIntakeOptions<E>): (raw: Buffer, headers: Readonly<Record<string, string | string[] | undefined>>) => Promise<IntakeResponse> {
  const done = (result: IntakeResult, status: number, reason?: string): IntakeResponse => {
    o.onResult?.(result);
    return { status, body: reason === undefined ? { result } : { result, reason } };
  };

  return async (raw, headers) => {
    const header = headers[o.signatureHeader];
    const signature = Array.isArray(header) ? header[0] : header;
    if (!o.verify(raw, signature)) {
      o.logger.warn({ source: o.source, bytes: raw.length, signature: signature === undefined ? "missing" : "mismatch" }, "webhook rejected: signature does not verify");
      return done("forged", 401, "signature does not verify");
    }
    const parsed = o.parse(raw);
    if (!parsed.ok) {
      o.logger.warn({ source: o.source, reason: parsed.reason }, "webhook rejected: invalid payload");
      return done("invalid", 400, parsed.reason);
    }
    const { event } = parsed;
    const key = `${o.source}:${event.id}`;
    const now = o.clock.now();
    // Pending in the inbox or already processed: either way, this copy changes nothing.
    if (o.seen.has(key) || o.inbox.has(key)) {
      // The first copy may still be on its way to disk: acknowledge only once it is there.
      await o.store.commit();
      o.logger.info({ source: o.source, event: event.id }, "webhook duplicate: already received, ignored");
      return done("duplicate", 200);
    }
    if (event.created !== undefined && now - event.created > o.maxAgeMs) {
      o.logger.warn({ source: o.source, event: event.id, created: new Date(event.created).toISOString() }, "webhook ignored: older than event_max_age (possible replay)");
      return done("stale", 200, "event is older than the accepted age");
    }
    if (event.created !== undefined && event.created - now > o.maxFutureMs) {
      o.logger.warn({ source: o.source, event: event.id, created: new Date(event.created).toISOString() }, "webhook ignored: created too far in the future (check both clocks)");
      return done("future", 200, "event is dated too far in the future");
    }
    if (!event.known) {
      o.seen.set(key, { receivedAt: now });
      await o.store.commit();
      o.logger.info({ source: o.source, event: event.id, type: event.type }, "webhook of an unknown type acknowledged and ignored");
      return done("ignored-type", 200, `unknown event type ${event.type}`);
    }
    const entry: InboxEntry<E> = { key, source: o.source, event, receivedAt: now };
    o.inbox.set(key, entry);
    await o.store.commit();
    o.onAccepted(entry);
    return done("accepted", 202);
  };
}

/**
 * Moves processed entries out of the inbox into the processed ids, in one commit of the intake
 * store. Only the inbox file is written when a webhook is acknowledged; its id joins the
 * (sharded, pruned) processed ids once the event has been planned, so the commit that answers a
 * sender stays one small file.
 */
export function createInboxSettler(
  inbox: Collection<InboxEntry<IntakeEvent>> & { delete(id: string): unknown },
  seen: Collection<SeenEvent>,
  store: { commit(): Promise<void> },
): (keys: Iterable<string>) => Promise<void> {
  return async (keys) => {
    let n = 0;
    for (const key of keys) {
      const entry = inbox.get(key);
      if (!entry) continue;
      seen.set(key, { receivedAt: entry.receivedAt });
      inbox.delete(key);
      n++;
    }
    if (n > 0) await store.commit();
  };
}
