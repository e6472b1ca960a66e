import { z } from "zod";

/*
 * The PaymentHub wire format (shared/reference/paymenthub-api.txt). Every
 * object is loose: unknown fields are kept, never rejected, because the doc
 * is incomplete and platforms add fields without notice. Fields the doc shows
 * but that a reconcile can live without are optional, so one odd member never
 * fails a whole page.
 */

/** Free-form per-member JSON (the doc: "bis zu 16KB JSON Data pro Member"). */
export const metadataSchema = z.record(z.string(), z.unknown());

/** `subscription` inside a member object, as the POST /members response shows it. */
export const memberSubscriptionSchema = z.looseObject({
  id: z.string().optional(),
  status: z.string().optional(),
  next_payment: z.string().nullable().optional(),
});

/** A member as GET /members, GET /members/{id} and member.* webhooks carry it. */
export const wireMemberSchema = z.looseObject({
  id: z.string().min(1),
  email: z.string().nullable().optional(),
  name: z.string().nullable().optional(),
  plan_id: z.string().nullable().optional(),
  status: z.string(),
  created_at: z.string().nullable().optional(),
  trial_ends_at: z.string().nullable().optional(),
  metadata: metadataSchema.nullable().optional(),
  subscription: memberSubscriptionSchema.nullable().optional(),
});

/** A member on the wire (snake_case, ISO dates). */
export type WireMember = z.infer<typeof wireMemberSchema>;

/**
 * A member as the REST API returns it: `plan_id` and `metadata` must be
 * present (null allowed), as in every example of the doc. A member without
 * them would read as "no plan" or "no identities" and so as evidence for a
 * revocation; refusing the answer instead fails the request, which revokes nothing.
 */
export const apiMemberSchema = wireMemberSchema.extend({
  plan_id: z.string().nullable(),
  metadata: metadataSchema.nullable(),
});

export const paginationSchema = z.looseObject({
  total: z.number().int().nonnegative(),
  page: z.number().int().positive(),
  per_page: z.number().int().positive(),
  total_pages: z.number().int().nonnegative(),
});

/** The body of GET /members. */
export const memberListSchema = z.looseObject({
  members: z.array(apiMemberSchema),
  pagination: paginationSchema,
});

export type WireMemberList = z.infer<typeof memberListSchema>;

/** The documented error envelope; every field but the envelope itself is optional in practice. */
export const errorEnvelopeSchema = z.looseObject({
  error: z.looseObject({
    type: z.string().optional(),
    message: z.string().optional(),
    code: z.string().optional(),
    param: z.string().optional(),
    request_id: z.string().optional(),
  }),
});

export type WireErrorEnvelope = z.infer<typeof errorEnvelopeSchema>;

/**
 * A webhook event envelope. `created` is an ISO date in the doc's example;
 * a number (Unix seconds or milliseconds) is accepted too.
 */
export const webhookEventSchema = z.looseObject({
  id: z.string().min(1),
  type: z.string().min(1),
  created: z.union([z.string(), z.number()]).nullable().optional(),
  data: z.record(z.string(), z.unknown()),
});

export type WireWebhookEvent = z.infer<typeof webhookEventSchema>;

/** The eight event types the doc lists, in its order. */
export const PAYMENTHUB_EVENT_TYPES = [
  "member.created",
  "member.updated",
  "member.deleted",
  "subscription.created",
  "subscription.renewed",
  "subscription.canceled",
  "payment.succeeded",
  "payment.failed",
] as const;

export type PaymentHubEventType = (typeof PAYMENTHUB_EVENT_TYPES)[number];

/** Whether `type` is one of the doc's eight event types. */
export function isKnownEventType(type: string): type is PaymentHubEventType {
  return (PAYMENTHUB_EVENT_TYPES as readonly string[]).includes(type);
}
