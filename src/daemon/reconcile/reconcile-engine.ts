import { randomUUID } from "node:crypto";
import { desiredPerks, type Desired, type StatusPolicy } from "../../core/desired-perks.js";
import { KeyIndex } from "../../core/key-index.js";
import {
  applyLedgerChangesInPlace,
  indexByMember,
  ledgerKey,
  ledgerKeysOfMember,
  markPreExisting,
  type LedgerChange,
  type LedgerEntry,
} from "../../core/ledger.js";
import {
  admitRevocations,
  confirmHeld,
  dropHeldIfEntitled,
  emptyMassRevokeState,
  type MassRevokeConfig,
  type MassRevokeState,
} from "../../core/mass-revoke-guard.js";
import { memberKey, type Member } from "../../core/member.js";
import { perkKey, type PlanRules } from "../../core/perk.js";
import { planActions, type PendingPerk, type PlannedAction } from "../../core/plan-actions.js";
import type { Clock, PerkAction, PerkTarget, SyncResult } from "../../core/ports.js";
import type { RatePriority } from "../../core/rate-budget.js";
import type { Collection } from "../store/create-store.js";
import { ActionQueue, type QueuedAction } from "./action-queue.js";
import { LaneRunner, type LaneLogger } from "./lane-runner.js";
import type { RetryPolicy } from "./settle-action.js";

/** What a lookup at the billing platform found. */
export type FetchResult =
  | { readonly kind: "found"; readonly member: Member }
  | { readonly kind: "not-found" }
  | { readonly kind: "failed"; readonly reason: string; readonly retryAfterMs?: number };

/** A billing source as the engine sees it: a direct lookup, by priority. */
export interface SourceLookup {
  readonly name: string;
  fetchMember(id: string, priority: RatePriority): Promise<FetchResult>;
}

/** Why a member is reconciled, with what the trigger already knows. */
export interface ReconcileHint {
  /** webhook, sweep, timer, join, drift, operator, startup. */
  readonly cause: string;
  /** The complete member, when the trigger carried one (payload, sweep page). */
  readonly payload?: Member;
  /** Look the member up at the source even with a payload at hand. */
  readonly fetch?: boolean;
  /** A 404 from the lookup means the member is gone (after member.deleted or a sweep miss). */
  readonly confirmGone?: boolean;
  /** The event's `created`: when the status seen now was already true. */
  readonly eventCreated?: number;
  /** Inbox entries this reconcile settles. */
  readonly inboxKeys?: readonly string[];
  /** When the triggering event reached perkbridge (reconcile latency). */
  readonly receivedAt?: number;
}

/** A held revocation, as kept in state. */
export type HeldAction = PerkAction;

export interface EngineCollections {
  readonly members: Collection<Member>;
  readonly ledger: Collection<LedgerEntry>;
  readonly actions: Collection<QueuedAction>;
  /** Finished actions; defaults to `actions` itself. */
  readonly history?: Collection<QueuedAction>;
  readonly kv: Collection<unknown>;
  readonly inbox: Collection<{ readonly key: string }>;
}

export interface ReconcileEngineOptions {
  readonly collections: EngineCollections;
  readonly store: { commit(): Promise<void> };
  /**
   * Settles processed inbox entries when the inbox lives in another store; called only once what
   * they caused is on disk. Without it the engine deletes them and commits `store`.
   */
  readonly settleInbox?: (keys: Iterable<string>) => Promise<void>;
  readonly clock: Clock;
  readonly logger: LaneLogger & { debug?(obj: object, msg: string): void };
  readonly plans: ReadonlyMap<string, PlanRules>;
  readonly sources: ReadonlyMap<string, SourceLookup>;
  readonly targets: ReadonlyMap<string, PerkTarget>;
  readonly retry: RetryPolicy;
  readonly massRevoke: MassRevokeConfig;
  readonly adoptExisting: boolean;
  readonly statusPolicy?: StatusPolicy;
  /** Members reconciled at once (most of the time is spent waiting on lookups). */
  readonly concurrency?: number;
  /** Delay before a failed lookup is tried again. */
  readonly lookupRetryMs?: (attempt: number) => number;
  /** Metrics and other observers. */
  readonly onSettled?: (rec: QueuedAction, result: SyncResult) => void;
  readonly onReconciled?: (key: string, summary: ReconcileSummary) => void;
}

export interface ReconcileSummary {
  readonly desired: Desired["kind"];
  readonly reason: string;
  readonly grants: number;
  readonly revokes: number;
  readonly held: number;
  readonly pending: readonly PendingPerk[];
}

interface Scheduled {
  hint: MutableHint;
  attempts: number;
}

interface MutableHint {
  causes: Set<string>;
  payload?: Member;
  fetch: boolean;
  confirmGone: boolean;
  eventCreated?: number;
  inboxKeys: Set<string>;
  receivedAt?: number;
}

const GUARD_KEY = "mass-revoke-guard";

/**
 * The reconcile engine: members are scheduled by webhooks, sweeps, timers and
 * joins; each is looked up where needed, planned by the core, and its actions
 * are queued durably before any runs. One member is never reconciled twice at
 * once: triggers that arrive meanwhile merge into one more run.
 */
export class ReconcileEngine {
  readonly #o: ReconcileEngineOptions;
  readonly queue: ActionQueue;
  readonly runner: LaneRunner;
  readonly #index: KeyIndex;
  /** Subject → ledger keys, for rejoin restore and drift repair. */
  readonly #bySubject = new KeyIndex();
  readonly #ledger: Map<string, LedgerEntry>;
  readonly #pending = new Map<string, Scheduled>();
  readonly #active = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  readonly #idle = new Set<() => void>();
  #guard: MassRevokeState<HeldAction>;
  #stopped = false;
  #timersArmed: Promise<void> = Promise.resolve();

  constructor(options: ReconcileEngineOptions) {
    this.#o = options;
    const { collections } = options;
    this.queue = new ActionQueue(collections.actions, collections.history);
    // The ledger collection is the map the core applies changes to, through this adapter.
    this.#ledger = collectionAsMap(collections.ledger);
    this.#index = indexByMember(collections.ledger.entries());
    for (const key of collections.ledger.keys()) this.#indexSubject(key, true);
    this.#guard = (collections.kv.get(GUARD_KEY) as MassRevokeState<HeldAction> | undefined) ?? emptyMassRevokeState;
    this.runner = new LaneRunner({
      queue: this.queue,
      targets: options.targets,
      store: options.store,
      clock: options.clock,
      logger: options.logger,
      retry: options.retry,
      onSettled: (rec, result) => this.#settled(rec, result),
    });
  }

  /**
   * After a restart: `once` actions caught between "sending" and a reply are
   * parked as outcome unknown (never resent), the inbox is replayed, timers are
   * set again from every member's state, and the lanes are started.
   */
  async start(inboxReplay: readonly { key: string; hint: ReconcileHint; member: string }[] = []): Promise<void> {
    const now = this.#o.clock.now();
    let unknown = 0;
    for (const rec of [...this.queue.open()]) {
      if (rec.state === "sending") {
        this.queue.update(rec, "parked", now, {
          last: { kind: "failed", reason: "outcome unknown: perkbridge stopped after sending this once-only command and before its reply", fix: "check on the server whether it took effect, then `perkbridge retry` or leave it" },
        });
        unknown++;
      }
    }
    if (unknown > 0) {
      this.#o.logger.warn({ actions: unknown }, "once-only actions with unknown outcome parked after a restart");
      await this.#o.store.commit();
    }
    // In the background: member records are read from disk on demand, and at 100k members the walk
    // takes about half a second that start-up (and the webhooks waiting on it) need not wait for.
    // A reconcile meanwhile arms its member's timer itself; the walk reads the current records.
    this.#timersArmed = this.#armAllTimers();
    for (const { member, hint } of inboxReplay) this.schedule(member, hint);
    this.runner.kickAll();
  }

  /** Resolves once start() has set every member's timer (tests, admin commands). */
  timersArmed(): Promise<void> {
    return this.#timersArmed;
  }

  async #armAllTimers(): Promise<void> {
    try {
      for await (const [, member] of this.#o.collections.members.scan()) {
        if (this.#stopped) return;
        this.#armTimer(member, this.#o.clock.now());
      }
    } catch (error) {
      this.#o.logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        "could not read every member record to set its timers: grace and trial ends of the others wait for a webhook or a sweep",
      );
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#timersArmed;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#timers.clear();
    await this.idle();
    await this.runner.stop();
  }

  /** Schedules a reconcile of a member (`source:id`); triggers for the same member merge. */
  schedule(key: string, hint: ReconcileHint): void {
    if (this.#stopped) return;
    const existing = this.#pending.get(key);
    const merged = mergeHint(existing?.hint, hint);
    this.#pending.set(key, { hint: merged, attempts: existing?.attempts ?? 0 });
    this.#pump();
  }

  /** Resolves when nothing is scheduled or running (tests, graceful stop, sync). */
  idle(): Promise<void> {
    if (this.#pending.size === 0 && this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  /** The ledger, read-only, for status, `/perks` and tests. */
  ledger(): ReadonlyMap<string, LedgerEntry> {
    return this.#ledger;
  }

  /** Ledger entries a member justifies. */
  grantsOf(member: string): LedgerEntry[] {
    return ledgerKeysOfMember(this.#index, member).flatMap((k) => this.#ledger.get(k) ?? []);
  }

  member(key: string): Member | undefined {
    return this.#o.collections.members.get(key);
  }

  held(): readonly { action: HeldAction; heldAt: number; reason: string }[] {
    return this.#guard.held;
  }

  /** What the member should have now, and what waits, without changing anything. */
  explain(key: string): { desired: Desired; pending: readonly PendingPerk[]; plan: readonly PlannedAction[] } | undefined {
    const member = this.member(key);
    if (!member) return undefined;
    const now = this.#o.clock.now();
    const desired = desiredPerks(member, this.#o.plans, now, this.#o.statusPolicy);
    const plan = planActions({ member, desired, justified: ledgerKeysOfMember(this.#index, key), ledger: this.#ledger, now, adoptExisting: this.#o.adoptExisting });
    return { desired, pending: plan.pending, plan: [...plan.grants, ...plan.revokes] };
  }

  /** What perkbridge granted a subject (`discord:<id>`), optionally on one target and scope. */
  entriesOf(subject: string, filter: { target?: string; scope?: string } = {}): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (const key of this.#bySubject.get(subject)) {
      const entry = this.#ledger.get(key);
      if (!entry) continue;
      if (filter.target !== undefined && entry.perk.target !== filter.target) continue;
      if (filter.scope !== undefined && entry.perk.scope !== filter.scope) continue;
      out.push(entry);
    }
    return out;
  }

  /** Member keys whose identities name this subject, for `/perks` and link flows. */
  membersOf(subject: string): string[] {
    const keys = new Set<string>();
    for (const entry of this.entriesOf(subject)) for (const m of entry.members) keys.add(m);
    return [...keys];
  }

  /**
   * The subject is back where its perks live (rejoined a guild, came online):
   * actions waiting for it run now, and with `restore` every perk the ledger
   * holds for it on that target is granted again (idempotent where it is still there).
   */
  async subjectReturned(subject: string, opts: { target: string; scope?: string; restore: boolean; cause: string }): Promise<number> {
    const now = this.#o.clock.now();
    let n = 0;
    for (const rec of [...this.queue.open()]) {
      if (rec.state !== "waiting" || rec.action.subject !== subject || rec.lane !== opts.target) continue;
      if (opts.scope !== undefined && rec.action.perk.scope !== opts.scope) continue;
      this.queue.update(rec, "queued", now, { notBefore: now });
      n++;
    }
    if (opts.restore) {
      const filter = opts.scope === undefined ? { target: opts.target } : { target: opts.target, scope: opts.scope };
      for (const entry of this.entriesOf(subject, filter)) {
        if (this.queue.openFor(ledgerKey(entry.subject, entry.perk))) continue;
        const identities = this.#identitiesOf(entry.members);
        this.#enqueue({ id: randomUUID(), type: "grant", subject, perk: entry.perk, members: entry.members, reason: `restore after ${opts.cause}`, identities }, opts.cause, now, now);
        n++;
      }
    }
    if (n > 0) {
      await this.#o.store.commit();
      this.runner.kickAll();
    }
    return n;
  }

  /** Queues repairs decided outside planning (Discord drift repair); each is logged by the caller. */
  async enqueueRepairs(repairs: readonly { type: "grant" | "revoke"; subject: string; perk: PerkAction["perk"]; reason: string; members?: readonly string[] }[], cause: string): Promise<void> {
    if (repairs.length === 0) return;
    const now = this.#o.clock.now();
    for (const r of repairs) {
      const members = r.members ?? this.entriesOf(r.subject).find((e) => perkKey(e.perk) === perkKey(r.perk))?.members ?? [];
      this.#enqueue({ id: randomUUID(), type: r.type, subject: r.subject, perk: r.perk, members, reason: r.reason, identities: this.#identitiesOf(members) }, cause, now, now);
    }
    await this.#o.store.commit();
    this.runner.kickAll();
  }

  #identitiesOf(members: readonly string[]): Member["identities"] {
    for (const key of members) {
      const member = this.#o.collections.members.get(key);
      if (member) return member.identities;
    }
    return {};
  }

  /** Releases held revocations an operator confirmed. */
  async confirm(ids: readonly string[] | "all"): Promise<number> {
    const { admitted, state } = confirmHeld(this.#guard, ids);
    this.#setGuard(state);
    const now = this.#o.clock.now();
    for (const action of admitted) this.#enqueue(action, "operator", now, now);
    await this.#o.store.commit();
    this.runner.kickAll();
    return admitted.length;
  }

  /** Puts parked (and waiting) actions back in the queue. */
  async retry(filter: { target?: string; member?: string; subject?: string; states?: readonly string[] }): Promise<number> {
    const states = new Set(filter.states ?? ["parked"]);
    const now = this.#o.clock.now();
    let n = 0;
    for (const rec of [...this.queue.open()]) {
      if (!states.has(rec.state)) continue;
      if (filter.target !== undefined && rec.lane !== filter.target) continue;
      if (filter.member !== undefined && !rec.action.members.includes(filter.member)) continue;
      if (filter.subject !== undefined && rec.action.subject !== filter.subject) continue;
      this.queue.update(rec, "queued", now, { attempts: 0, notBefore: now });
      n++;
    }
    if (n > 0) {
      await this.#o.store.commit();
      this.runner.kickAll();
    }
    return n;
  }

  #pump(): void {
    const limit = this.#o.concurrency ?? 16;
    for (const [key, scheduled] of this.#pending) {
      if (this.#active.size >= limit) break;
      if (this.#active.has(key)) continue;
      this.#pending.delete(key);
      this.#active.add(key);
      void this.#reconcile(key, scheduled)
        .catch((error: unknown) => {
          this.#o.logger.error({ err: error, member: key }, "reconcile failed unexpectedly; scheduled again");
          this.#retryLater(key, scheduled);
        })
        .finally(() => {
          this.#active.delete(key);
          this.#pump();
          if (this.#pending.size === 0 && this.#active.size === 0) {
            for (const resolve of this.#idle) resolve();
            this.#idle.clear();
          }
        });
    }
  }

  #retryLater(key: string, scheduled: Scheduled, minDelayMs = 0): void {
    if (this.#stopped) return;
    const attempts = scheduled.attempts + 1;
    const delay = Math.max(minDelayMs, this.#o.lookupRetryMs?.(attempts) ?? Math.min(300_000, 1000 * 2 ** attempts));
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      if (this.#stopped) return;
      const existing = this.#pending.get(key);
      this.#pending.set(key, { hint: existing ? mergeMutable(scheduled.hint, existing.hint) : scheduled.hint, attempts });
      this.#pump();
    }, delay);
    timer.unref();
    this.#retryTimers.add(timer);
  }

  async #reconcile(key: string, scheduled: Scheduled): Promise<void> {
    const { hint } = scheduled;
    const { collections, clock, logger } = this.#o;
    const now = clock.now();
    const stored = collections.members.get(key);
    const [sourceName, id] = splitKey(key);
    const cause = [...hint.causes].join("+");

    let fresh: Member | undefined = hint.payload;
    const needLookup = hint.fetch || hint.confirmGone || (fresh === undefined && stored === undefined) || (fresh === undefined && hint.causes.has("webhook"));
    if (needLookup) {
      const source = this.#o.sources.get(sourceName);
      if (!source) {
        logger.warn({ member: key }, "member of a source that is not configured: left alone");
        return this.#finish(hint);
      }
      const priority: RatePriority = hint.causes.has("webhook") || hint.causes.has("operator") || hint.causes.has("timer") ? "webhook" : "poll";
      const result = await source.fetchMember(id, priority);
      if (result.kind === "failed") {
        // A failed lookup is no evidence of anything: keep every perk, try again later.
        logger.warn({ member: key, reason: result.reason }, "member lookup failed; will try again");
        this.#retryLater(key, scheduled, result.retryAfterMs ?? 0);
        return;
      }
      if (result.kind === "found") {
        fresh = result.member;
      } else if (hint.confirmGone && stored !== undefined) {
        fresh = { ...stored, gone: true, observedAt: now };
      } else {
        logger.info({ member: key, cause }, "member not found at the source; nothing revoked without a member.deleted event or a complete sweep");
        fresh = undefined;
      }
    }

    let member = stored;
    if (fresh !== undefined) {
      if (stored !== undefined && fresh.observedAt < stored.observedAt) {
        logger.info({ member: key, cause }, "stale member state ignored: newer state already known");
      } else {
        member = withStatusSince(fresh, stored, hint.eventCreated ?? now);
        // Newer evidence is kept even when nothing else changed: a late, older payload must still
        // be recognized as stale against it.
        if (stored === undefined || member.observedAt > stored.observedAt || !sameMember(stored, member)) collections.members.set(key, member);
      }
    }
    if (member === undefined) return this.#finish(hint);

    const desired = desiredPerks(member, this.#o.plans, now, this.#o.statusPolicy);
    if (desired.kind === "frozen") logger.warn({ member: key, reason: desired.reason }, "member neither granted nor revoked");
    const plan = planActions({
      member,
      desired,
      justified: ledgerKeysOfMember(this.#index, key),
      ledger: this.#ledger,
      now,
      adoptExisting: this.#o.adoptExisting,
    });

    const receivedAt = hint.receivedAt ?? now;
    let grants = 0;
    for (const grant of plan.grants) {
      const lk = ledgerKey(grant.subject, grant.perk);
      const held = dropHeldIfEntitled(this.#guard, lk);
      if (held.dropped.length > 0) {
        // Its revoke never ran: the perk is still there, so nothing to grant.
        this.#setGuard(held.state);
        logger.info({ member: key, subject: grant.subject, perk: perkKey(grant.perk) }, "held revocation dropped: the member is entitled again");
        continue;
      }
      this.#enqueue(toAction(grant, member.identities), cause, now, receivedAt);
      grants++;
    }
    const candidates = plan.revokes.map((r) => toAction(r, member.identities));
    const guarded = admitRevocations(this.#guard, candidates, this.#ledger.size, now, this.#o.massRevoke);
    if (guarded.held.length > 0 || guarded.admitted.length > 0) this.#setGuard(guarded.state);
    for (const h of guarded.held) logger.warn({ member: key, subject: h.action.subject, perk: perkKey(h.action.perk), reason: h.reason }, "revocation held");
    for (const revoke of guarded.admitted) this.#enqueue(revoke, cause, now, receivedAt);
    this.#applyLedger(plan.ledger);
    this.#refreshWaiting(key, member, cause, now);

    this.#armTimer(member, now, desired);
    await this.#finish(hint);
    this.runner.kickAll();
    this.#o.onReconciled?.(key, {
      desired: desired.kind,
      reason: desired.reason,
      grants,
      revokes: guarded.admitted.length,
      held: guarded.held.length,
      pending: plan.pending,
    });
  }

  /**
   * An action waiting for something the member record can supply (a Minecraft
   * name for a whitelist entry) carries the identities it was planned with. When
   * the record changes, a copy with the new identities supersedes it, so adding
   * the name to the metadata is enough; nobody has to wait for the player.
   */
  #refreshWaiting(key: string, member: Member, cause: string, now: number): void {
    const identities = JSON.stringify(member.identities);
    for (const lk of ledgerKeysOfMember(this.#index, key)) {
      const rec = this.queue.openFor(lk);
      if (rec?.state !== "waiting" || JSON.stringify(rec.action.identities) === identities) continue;
      this.#enqueue({ ...rec.action, id: randomUUID(), identities: member.identities }, cause, now, now);
    }
  }

  /** Settles the inbox entries and makes everything planned durable before any action runs. */
  async #finish(hint: MutableHint): Promise<void> {
    const settle = this.#o.settleInbox;
    if (settle === undefined) {
      for (const key of hint.inboxKeys) this.#o.collections.inbox.delete(key);
      await this.#o.store.commit();
      return;
    }
    // The inbox lives in another store: its entries may go only once what they caused is on disk,
    // or a crash in between would lose the event.
    await this.#o.store.commit();
    if (hint.inboxKeys.size > 0) await settle(hint.inboxKeys);
  }

  #enqueue(action: PerkAction, cause: string, now: number, receivedAt: number): void {
    const once = action.perk.params?.["once"] === true;
    this.queue.enqueue(action, { lane: action.perk.target, once, cause, now, receivedAt });
  }

  #settled(rec: QueuedAction, result: SyncResult): void {
    if (rec.action.type === "grant" && result.kind === "granted" && result.preExisting === true && !rec.afterRevoke) {
      const change = markPreExisting(this.#ledger, ledgerKey(rec.action.subject, rec.action.perk));
      if (change) {
        this.#applyLedger([change]);
        this.#o.logger.info({ subject: rec.action.subject, perk: perkKey(rec.action.perk) }, "perk was already present: recorded as pre-existing, never revoked by perkbridge");
        void this.#o.store.commit();
      }
    }
    this.#o.onSettled?.(rec, result);
  }

  #applyLedger(changes: readonly LedgerChange[]): void {
    applyLedgerChangesInPlace(this.#ledger, changes, this.#index);
    for (const change of changes) this.#indexSubject(change.key, change.op === "upsert");
  }

  #indexSubject(key: string, present: boolean): void {
    const subject = key.slice(0, key.indexOf("|"));
    if (present) this.#bySubject.add(subject, key);
    else this.#bySubject.delete(subject, key);
  }

  #setGuard(state: MassRevokeState<HeldAction>): void {
    this.#guard = state;
    this.#o.collections.kv.set(GUARD_KEY, state);
  }

  #armTimer(member: Member, now: number, desired = desiredPerks(member, this.#o.plans, now, this.#o.statusPolicy)): void {
    const key = memberKey(member);
    const existing = this.#timers.get(key);
    const next = desired.kind === "entitled" ? desired.next : undefined;
    if (existing && existing.at === next?.at) return;
    if (existing) {
      clearTimeout(existing.timer);
      this.#timers.delete(key);
    }
    if (next === undefined || this.#stopped) return;
    const delay = Math.min(Math.max(0, next.at - now), 2_147_483_647);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      // A trial's end only makes us look again; a grace's end is decided from what we know.
      this.schedule(key, next.cause === "trial-ends" ? { cause: "timer", fetch: true } : { cause: "timer" });
    }, delay);
    timer.unref();
    this.#timers.set(key, { at: next.at, timer });
  }
}

/** Gives a planned action its id; the member's identities travel along (a whitelist needs the name). */
function toAction(planned: PlannedAction, identities: Member["identities"]): PerkAction {
  return { id: randomUUID(), type: planned.type, subject: planned.subject, perk: planned.perk, members: planned.members, reason: planned.reason, identities };
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf(":");
  return [key.slice(0, i), key.slice(i + 1)];
}

/**
 * The platform gives no time of a status change, so perkbridge keeps its own:
 * the event's `created` (or now) when the status differs from what it knew.
 */
function withStatusSince(fresh: Member, stored: Member | undefined, since: number): Member {
  const changed = stored === undefined || stored.status !== fresh.status || (stored.gone === true) !== (fresh.gone === true);
  return { ...fresh, statusSince: changed ? Math.min(since, fresh.observedAt) : stored.statusSince };
}

function sameMember(a: Member, b: Member): boolean {
  const { observedAt: _a, ...restA } = a;
  const { observedAt: _b, ...restB } = b;
  return JSON.stringify(restA) === JSON.stringify(restB);
}

function mergeHint(into: MutableHint | undefined, hint: ReconcileHint): MutableHint {
  const next: MutableHint = into ?? { causes: new Set(), fetch: false, confirmGone: false, inboxKeys: new Set() };
  next.causes.add(hint.cause);
  if (hint.payload && (!next.payload || hint.payload.observedAt >= next.payload.observedAt)) next.payload = hint.payload;
  next.fetch ||= hint.fetch === true;
  next.confirmGone ||= hint.confirmGone === true;
  if (hint.eventCreated !== undefined) next.eventCreated = Math.min(next.eventCreated ?? hint.eventCreated, hint.eventCreated);
  for (const k of hint.inboxKeys ?? []) next.inboxKeys.add(k);
  if (hint.receivedAt !== undefined) next.receivedAt = Math.min(next.receivedAt ?? hint.receivedAt, hint.receivedAt);
  return next;
}

function mergeMutable(a: MutableHint, b: MutableHint): MutableHint {
  const merged = mergeHint(mergeHint(undefined, hintOf(a)), hintOf(b));
  for (const c of [...a.causes, ...b.causes]) merged.causes.add(c);
  return merged;
}

function hintOf(m: MutableHint): ReconcileHint {
  return {
    cause: [...m.causes][0] ?? "retry",
    ...(m.payload ? { payload: m.payload } : {}),
    fetch: m.fetch,
    confirmGone: m.confirmGone,
    ...(m.eventCreated === undefined ? {} : { eventCreated: m.eventCreated }),
    inboxKeys: [...m.inboxKeys],
    ...(m.receivedAt === undefined ? {} : { receivedAt: m.receivedAt }),
  };
}

/** A store collection seen as the Map the core's ledger functions change in place. */
function collectionAsMap<T>(c: Collection<T>): Map<string, T> {
  const map = {
    get: (k: string) => c.get(k),
    has: (k: string) => c.has(k),
    set(k: string, v: T) {
      c.set(k, v);
      return map;
    },
    delete: (k: string) => c.delete(k),
    get size() {
      return c.size;
    },
    keys: () => c.keys(),
    values: () => c.values(),
    entries: () => c.entries(),
    [Symbol.iterator]: () => c.entries(),
  };
  return map as unknown as Map<string, T>;
}

