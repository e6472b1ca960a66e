import type { Identities, Member } from "./member.js";
import type { Perk } from "./perk.js";

/** Injected time, so tests never sleep. Epoch milliseconds. */
export interface Clock {
  now(): number;
}

/** One grant or revoke for one subject on one target, as it sits in the durable queue. */
export interface PerkAction {
  /** Unique, stable across restarts; used for idempotency and acknowledgement. */
  readonly id: string;
  readonly type: "grant" | "revoke";
  /** `discord:<user id>`, `minecraft:<uuid>`, `fivem:<identifier>` or `member:<member key>`. */
  readonly subject: string;
  readonly perk: Perk;
  /** Member keys that caused it (for audit-log reasons and reports). */
  readonly members: readonly string[];
  /** Plan and status that caused it, for human-readable reasons: `plan_premium active`. */
  readonly reason: string;
  /** Identities of the subject at planning time (the adapter needs e.g. the Minecraft name). */
  readonly identities: Identities;
}

/** Expected outcomes of applying an action: values, not exceptions. */
export type SyncResult =
  | { readonly kind: "granted"; readonly preExisting?: boolean }
  | { readonly kind: "revoked"; readonly wasAbsent?: boolean }
  | { readonly kind: "unchanged" }
  /** The subject lacks an identity the target needs (e.g. no Minecraft name yet); waits for it. */
  | { readonly kind: "not-linked"; readonly reason: string }
  /** The subject is not on the target right now (left the guild, offline); applied when it returns. */
  | { readonly kind: "target-missing"; readonly reason: string }
  | {
      readonly kind: "failed";
      /** Retryable failures are retried with backoff; others are parked for the operator. */
      readonly retryable: boolean;
      readonly reason: string;
      /** What an admin should do about it. */
      readonly fix?: string;
      readonly retryAfterMs?: number;
      /** The command may or may not have taken effect (a `once` command whose reply was lost). */
      readonly outcomeUnknown?: boolean;
      /**
       * The target as a whole is unreachable (server down, not connected): the action is
       * held and retried without counting against its attempts, so an outage of hours
       * never parks work that will succeed once the target is back.
       */
      readonly targetDown?: boolean;
    };

/** One line of a preflight check (`perkbridge check`). */
export interface CheckResult {
  readonly ok: boolean;
  /** What was checked: `discord guild 123: Manage Roles`. */
  readonly name: string;
  readonly detail?: string;
  /** How to fix it, when not ok. */
  readonly fix?: string;
}

/** A game-side target: applies grants and revokes idempotently. */
export interface PerkTarget {
  /** `discord`, `minecraft`, … — the lane name. */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  preflight(): Promise<readonly CheckResult[]>;
  apply(action: PerkAction): Promise<SyncResult>;
}

/** A page of a complete listing. */
export interface MemberPage {
  readonly members: readonly Member[];
  readonly page: number;
  readonly totalPages: number;
  readonly total: number;
}

/** A billing platform, read side. */
export interface MemberSource {
  readonly name: string;
  /** A direct lookup; `null` only when the platform answers that the member does not exist (404). */
  getMember(id: string): Promise<Member | null>;
  listMembers(page: number): Promise<MemberPage>;
}
