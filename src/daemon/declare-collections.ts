import type { LedgerEntry } from "../core/ledger.js";
import type { Member } from "../core/member.js";
import { reconcileDigest } from "./member-digest.js";
import type { PaymentHubEvent } from "../sources/paymenthub/parse-webhook-event.js";
import type { InboxEntry, IntakeEvent, SeenEvent } from "./intake/webhook-intake.js";
import type { QueuedAction } from "./reconcile/action-queue.js";
import { LARGE_COLLECTION_SHARDS, type Collection, type Store } from "./store/create-store.js";

/** A PaymentHub webhook as it waits in the inbox. */
export type PaymentHubInboxEntry = InboxEntry<PaymentHubEvent & IntakeEvent>;

/** The collections of a perkbridge state directory. */
export interface PerkbridgeCollections {
  readonly members: Collection<Member>;
  readonly ledger: Collection<LedgerEntry>;
  /** Unfinished actions: small and hot. */
  readonly actions: Collection<QueuedAction>;
  /** Finished actions, kept for `state.retention` and pruned. */
  readonly history: Collection<QueuedAction>;
  readonly inbox: Collection<PaymentHubInboxEntry>;
  /** Processed webhook ids (the `events` file), for deduplication. */
  readonly seen: Collection<SeenEvent>;
  readonly kv: Collection<unknown>;
}

/**
 * Declares every collection of the state directory on its two stores, neither open yet: `store`
 * (the state directory) and `intake` (its `intake/` subdirectory, see {@link INTAKE_DIR}).
  The daemon and
 * the offline operator commands both call this, so both open the directory with the same layout: a
 * collection declared in one and not the other would stop the open with ERR_STATE_LAYOUT, or leave
 * a file unread.
 */
export function declareCollections(store: Store, intake: Store): PerkbridgeCollections {
  // Large cold collections sharded (a change rewrites 1/256 of them), small hot ones single files.
  return {
    // Read on demand: at 100k members they were the largest part of the daemon's memory, and a
    // reconcile reads one member at a time. The ledger stays in memory: planning reads it for
    // every member, and the mass-revoke guard counts it.
    members: store.collection<Member>("members", { shards: LARGE_COLLECTION_SHARDS, cacheShards: MEMBER_SHARDS_CACHED, digest: reconcileDigest }),
    ledger: store.collection<LedgerEntry>("ledger", { shards: LARGE_COLLECTION_SHARDS }),
    // Sharded too: a burst leaves thousands of actions open, and each commit must not rewrite them all.
    actions: store.collection<QueuedAction>("actions", { shards: HISTORY_SHARDS }),
    // Finished actions and processed event ids grow with traffic until pruned: sharded, so the
    // commit that acknowledges a webhook rewrites a small file, not a week of history.
    history: store.collection<QueuedAction>("history", { shards: HISTORY_SHARDS }),
    // Sharded: under a backlog the inbox grows, and an acknowledgement must still write one small file.
    inbox: intake.collection<PaymentHubInboxEntry>("inbox", { shards: INBOX_SHARDS }),
    seen: intake.collection<SeenEvent>("events", { shards: HISTORY_SHARDS }),
    kv: store.collection<unknown>("kv"),
  };
}

const HISTORY_SHARDS = 64;
/** Member shards whose values stay in memory: 8 of 256, some 3 % of the members. */
const MEMBER_SHARDS_CACHED = 8;
const INBOX_SHARDS = 16;

/**
 * The webhook inbox and processed event ids live in a store of their own (a subdirectory with its
 * own lock and journal): a webhook is acknowledged once that store has committed, without waiting
 * for the member and ledger shards that concurrent reconciles are writing. Measured at 100k members,
 * one shared store made every acknowledgement wait for a pass over dozens of 135 KB shards.
 */
export const INTAKE_DIR = "intake";

/**
 * The `kv` key under which the reconcile engine keeps the mass-revoke guard's state (its GUARD_KEY),
 * read by `sync --dry-run` to tell which revocations the guard would hold.
 */
export const MASS_REVOKE_GUARD_KEY = "mass-revoke-guard";
