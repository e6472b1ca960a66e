import { createHmac } from "node:crypto";
import got, { RequestError, type Got } from "got";
import type { CheckResult, PerkAction, PerkTarget, SyncResult } from "../../core/ports.js";

/** One configured receiver of grant and revoke events. */
export interface HttpEndpoint {
  readonly url: string;
  /** Signs each body (HMAC-SHA256, hex) so the receiver can reject forgeries. */
  readonly secret: string;
  readonly timeoutMs: number;
}

export interface HttpTargetOptions {
  readonly endpoints: Readonly<Record<string, HttpEndpoint>>;
}

/** The JSON body each endpoint receives. */
export interface HttpPerkEvent {
  readonly id: string;
  readonly type: "grant" | "revoke";
  readonly subject: string;
  readonly perk: { readonly endpoint: string; readonly kind: string; readonly value: string };
  readonly members: readonly string[];
  readonly reason: string;
}

export const HTTP_SIGNATURE_HEADER = "x-perkbridge-signature";

export function signHttpBody(body: string | Buffer, secret: string): string {
  return "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
}

/**
 * A target for custom integrations: POSTs each grant and revoke as signed JSON.
 * The action id travels as `Idempotency-Key`, so a receiver can drop the repeats
 * that at-least-once delivery brings after a crash.
 */
export function createHttpTarget(options: HttpTargetOptions): PerkTarget {
  // Retries belong to the durable queue, which survives restarts; got must not add its own.
  const client: Got = got.extend({ retry: { limit: 0 }, throwHttpErrors: false, followRedirect: false });

  async function apply(action: PerkAction): Promise<SyncResult> {
    const name = action.perk.scope;
    const endpoint = options.endpoints[name];
    if (!endpoint) {
      return { kind: "failed", retryable: false, reason: `http endpoint "${name}" is not configured`, fix: `add targets.http.endpoints.${name} to the config` };
    }
    const event: HttpPerkEvent = {
      id: action.id,
      type: action.type,
      subject: action.subject,
      perk: { endpoint: name, kind: action.perk.kind, value: action.perk.value },
      members: action.members,
      reason: action.reason,
    };
    const body = JSON.stringify(event);
    try {
      const res = await client.post(endpoint.url, {
        body,
        headers: {
          "content-type": "application/json",
          "idempotency-key": action.id,
          [HTTP_SIGNATURE_HEADER]: signHttpBody(body, endpoint.secret),
        },
        timeout: { request: endpoint.timeoutMs },
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        return action.type === "grant" ? { kind: "granted" } : { kind: "revoked" };
      }
      const reason = `endpoint ${name} answered HTTP ${res.statusCode}`;
      if (res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500) {
        const retryAfter = Number(res.headers["retry-after"]);
        return { kind: "failed", retryable: true, reason, ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}) };
      }
      return { kind: "failed", retryable: false, reason, fix: `check that ${safeUrl(endpoint.url)} accepts perkbridge events` };
    } catch (error) {
      const code = error instanceof RequestError ? error.code : "ERR_UNKNOWN";
      const down = code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENOTFOUND";
      return { kind: "failed", retryable: true, reason: `endpoint ${name} unreachable (${code})`, ...(down ? { targetDown: true } : {}) };
    }
  }

  return {
    name: "http",
    async start() {},
    async stop() {},
    async preflight(): Promise<readonly CheckResult[]> {
      return Object.entries(options.endpoints).map(([name, e]) => ({ ok: true, name: `http endpoint ${name}`, detail: safeUrl(e.url) }));
    },
    apply,
  };
}

/** The URL without credentials, for messages. */
function safeUrl(raw: string): string {
  try {
    const url = new URL(raw);
    url.username = "";
    url.password = "";
    url.search = "";
    return url.toString();
  } catch {
    return "(invalid url)";
  }
}
