/** Platform identities of one member; each is optional until linked. */
export interface MinecraftIdentity {
  /** Dashed, lower-case UUID. */
  readonly uuid?: string;
  /** In-game name, needed by `whitelist add`; may be learned when the player is seen online. */
  readonly name?: string;
}

export interface Identities {
  /** Discord user id (snowflake). */
  readonly discord?: string;
  readonly minecraft?: MinecraftIdentity;
  /** FiveM identifiers with their prefix: `license:…`, `steam:…`, `discord:…`, `fivem:…`. */
  readonly fivem?: readonly string[];
}

/**
 * A member normalized from any billing source. Times are epoch milliseconds.
 * Wire formats (snake_case, ISO dates) are mapped to this by each source.
 */
export interface Member {
  readonly source: string;
  readonly id: string;
  readonly email?: string;
  readonly name?: string;
  /** The plan as the platform names it; absent when the member has none. */
  readonly planId?: string;
  /** The status exactly as read from the platform (`active`, `trial`, `canceled`, …). */
  readonly status: string;
  readonly identities: Identities;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** When a trial ends, where the platform says (`trial_ends_at`). */
  readonly trialEndsAt?: number;
  /** When the paid period ends, where the platform says (`subscription.next_payment`). */
  readonly paidUntil?: number;
  /**
   * When perkbridge first saw the current status (the event's `created`, else the
   * time it first read it). The platform gives no time of a status change.
   */
  readonly statusSince: number;
  /** Confirmed gone by a direct lookup (404). */
  readonly gone?: boolean;
  /** The instant this state was true at the platform (event `created` or fetch time); older state never overrides newer. */
  readonly observedAt: number;
}

/** Stable key of a member across sources: `paymenthub:mem_123`. */
export function memberKey(member: Pick<Member, "source" | "id">): string {
  return `${member.source}:${member.id}`;
}
