import {
  isKnownEventType,
  webhookEventSchema,
  wireMemberSchema,
  type WireMember,
} from "./paymenthub-schemas.js";

/** A webhook event reduced to what a reconcile needs. Events are hints, not truth. */
export interface PaymentHubEvent {
  /** `evt_…`, for de-duplication. */
  readonly id: string;
  readonly type: string;
  /** When the event happened at PaymentHub, epoch ms; absent when the payload gives no readable time. */
  readonly created?: number;
  /** The member to reconcile: the first id found (see {@link MEMBER_ID_PATHS}); absent → schedule a sweep. */
  readonly memberId?: string;
  /** Every distinct member id found, first one first; more than one means the payload disagrees with itself. */
  readonly memberIds: readonly string[];
  /**
   * The member as the payload carries it, only when it is complete (see
   * {@link isCompleteWireMember}), the event has a `created` time, and the
   * event is not `member.deleted`; otherwise the member must be fetched.
   */
  readonly member?: WireMember;
  /** `data.reason` of member.deleted / subscription.canceled, `data.error` of payment.failed, as text. */
  readonly reason?: string;
  /** Whether `type` is one of the eight the doc lists. Unknown types still schedule a reconcile. */
  readonly known: boolean;
}

export type ParseWebhookResult =
  | { readonly ok: true; readonly event: PaymentHubEvent }
  /** `reason` is for the 400 answer and the log. */
  | { readonly ok: false; readonly reason: string };

/**
 * Where a member id may sit in `data`, tried in this order. The doc shows only
 * `data.member.id`; the rest are assumptions about the seven undocumented payloads.
 */
export const MEMBER_ID_PATHS: readonly (readonly string[])[] = [
  ["member", "id"],
  ["member_id"],
  ["subscription", "member_id"],
  ["subscription", "member", "id"],
  ["subscription", "member"],
  ["payment", "member_id"],
  ["payment", "member", "id"],
  ["payment", "member"],
];

const MAX_ID_LENGTH = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function at(root: unknown, path: readonly string[]): unknown {
  let value = root;
  for (const key of path) {
    if (!isRecord(value)) return undefined;
    value = value[key];
  }
  return value;
}

/**
 * A member payload is complete when it has `id`, `status`, a `plan_id` key
 * (null allowed: no plan) and a `metadata` object. Without `status` the
 * payload cannot grant or revoke; without `metadata` its identities would
 * look removed. The doc's own webhook example lacks `status`, so it is not
 * complete and the member is fetched.
 */
export function isCompleteWireMember(value: unknown): value is WireMember {
  if (!isRecord(value)) return false;
  if (!("plan_id" in value) || !isRecord(value["metadata"])) return false;
  return wireMemberSchema.safeParse(value).success;
}

/** Unix seconds or milliseconds, or an ISO date, to epoch ms. */
function parseCreated(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) {
    // Below 1e11 a number is seconds (1e11 s is the year 5138; 1e11 ms is 1973).
    return value < 1e11 ? Math.round(value * 1000) : Math.round(value);
  }
  if (typeof value === "string" && value.trim() !== "") {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

function reasonText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (isRecord(value) && typeof value["message"] === "string") return value["message"];
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/**
 * Parses a webhook body (already signature-checked). Never throws. Unknown
 * event types and unknown fields parse fine; only a body that is not a JSON
 * event envelope (`id`, `type`, `data` object) is refused.
 */
export function parseWebhookEvent(rawBody: Buffer): ParseWebhookResult {
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString("utf8"));
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
  const parsed = webhookEventSchema.safeParse(json);
  if (!parsed.success) {
    const where = parsed.error.issues.map((issue) => issue.path.join(".") || "(root)").join(", ");
    return { ok: false, reason: `not a PaymentHub event envelope (id, type, created, data): check ${where}` };
  }
  const { id, type, data } = parsed.data;
  const created = parseCreated(parsed.data.created);

  const memberIds: string[] = [];
  for (const path of MEMBER_ID_PATHS) {
    const value = at(data, path);
    if (typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH && !memberIds.includes(value)) {
      memberIds.push(value);
    }
  }

  const payloadMember = data["member"];
  // An undated payload cannot be ordered against what we already know, and a
  // deleted member's payload is its state before deletion: fetch instead.
  const member =
    created !== undefined && type !== "member.deleted" && isCompleteWireMember(payloadMember) ? payloadMember : undefined;

  const reason = reasonText(data["reason"] ?? data["error"]);
  const memberId = memberIds[0];
  const event: PaymentHubEvent = {
    id,
    type,
    memberIds,
    known: isKnownEventType(type),
    ...(created !== undefined ? { created } : {}),
    ...(memberId !== undefined ? { memberId } : {}),
    ...(member !== undefined ? { member } : {}),
    ...(reason !== undefined ? { reason } : {}),
  };
  return { ok: true, event };
}
