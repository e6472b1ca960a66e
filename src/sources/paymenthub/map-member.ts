import { extractIdentities, type IdentityConflict } from "../../core/identities.js";
import type { Member } from "../../core/member.js";
import type { WireMember } from "./paymenthub-schemas.js";

/** What {@link mapMember} needs besides the wire member. */
export interface MapMemberContext {
  /** `paymenthub`, or the configured name of this source. */
  readonly source: string;
  /** When this state was true at PaymentHub: the event's `created`, else the fetch time. */
  readonly observedAt: number;
  /** Kept by the daemon per member; PaymentHub gives no time of a status change. */
  readonly statusSince: number;
}

/** A core member plus what an admin should hear about while reading it. */
export interface MappedMember {
  readonly member: Member;
  readonly conflicts: readonly IdentityConflict[];
  readonly problems: readonly string[];
}

function epochMs(value: string | null | undefined, field: string, problems: string[]): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const ms = Date.parse(value);
  if (Number.isFinite(ms)) return ms;
  problems.push(`${field}: expected an ISO date, got ${JSON.stringify(value).slice(0, 60)}`);
  return undefined;
}

/**
 * Maps a PaymentHub member to the core model. Identities come from metadata
 * (flat and nested forms, nested wins). A missing or null `metadata` maps to
 * `{}`; `paidUntil` comes from `subscription.next_payment`.
 */
export function mapMember(wire: WireMember, context: MapMemberContext): MappedMember {
  const metadata: Record<string, unknown> = wire.metadata ?? {};
  const extracted = extractIdentities(metadata);
  const problems = [...extracted.problems];
  const trialEndsAt = epochMs(wire.trial_ends_at, "trial_ends_at", problems);
  const paidUntil = epochMs(wire.subscription?.next_payment, "subscription.next_payment", problems);
  const member: Member = {
    source: context.source,
    id: wire.id,
    status: wire.status,
    identities: extracted.identities,
    metadata,
    statusSince: context.statusSince,
    observedAt: context.observedAt,
    ...(typeof wire.email === "string" ? { email: wire.email } : {}),
    ...(typeof wire.name === "string" ? { name: wire.name } : {}),
    ...(typeof wire.plan_id === "string" && wire.plan_id !== "" ? { planId: wire.plan_id } : {}),
    ...(trialEndsAt !== undefined ? { trialEndsAt } : {}),
    ...(paidUntil !== undefined ? { paidUntil } : {}),
  };
  return { member, conflicts: extracted.conflicts, problems };
}
