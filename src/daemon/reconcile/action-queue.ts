import type { PerkAction, SyncResult } from "../../core/ports.js";
import { ledgerKey } from "../../core/ledger.js";

/**
 * Where an action stands. `queued` runs when due; `sending` is a `once` action
 * marked on disk just before it goes out; `waiting` needs something outside
 * (the member to join, a Minecraft name); `parked` needs the operator;
 * `done` and `superseded` are finished and pruned by age.
 */
export type ActionState = "queued" | "sending" | "waiting" | "parked" | "done" | "superseded";

/** One action as it sits in the durable queue (the `actions` collection). */
export interface QueuedAction {
  readonly action: PerkAction;
  /** `subject|perkKey`: at most one unfinished action per key, the newest wins. */
  readonly key: string;
  /** The lane (target name) that runs it. */
  readonly lane: string;
  readonly once: boolean;
  /** Why the reconcile that planned it ran: webhook, sweep, timer, join, drift, operator. */
  readonly cause: string;
  state: ActionState;
  attempts: number;
  /** Epoch ms before which it is not tried again. */
  notBefore: number;
  readonly createdAt: number;
  /** When the triggering event reached perkbridge, for the reconcile-latency metric. */
  readonly receivedAt: number;
  updatedAt: number;
  /**
   * A grant that replaced an open revoke of the same perk: if the target says
   * the perk was already there, that is our own unrevoked grant, not a
   * pre-existing one.
   */
  readonly afterRevoke?: boolean;
  /** The last result, kept for `status` and the operator. */
  last?: { kind: SyncResult["kind"]; reason?: string; fix?: string };
}

/** The part of a store collection the queue needs. */
export interface ActionCollection {
  get(id: string): QueuedAction | undefined;
  set(id: string, value: QueuedAction): void;
  delete(id: string): unknown;
  values(): IterableIterator<QueuedAction>;
}

/** Unfinished states: these hold the key against a newer action for the same subject and perk. */
const OPEN: ReadonlySet<ActionState> = new Set(["queued", "sending", "waiting", "parked"]);

export function isOpen(state: ActionState): boolean {
  return OPEN.has(state);
}


/**
 * The durable action queue: records live in a store collection; this keeps the
 * in-memory indexes (open action per key, due actions per lane) in step with it.
 * Callers commit the store; nothing here touches the disk.
 */
export class ActionQueue {
  readonly #records: ActionCollection;
  readonly #history: ActionCollection;
  readonly #openByKey = new Map<string, string>();
  readonly #ready = new Map<string, Set<string>>();

  /**
   * `records` holds unfinished actions and is small and hot: it is rewritten by
   * nearly every commit. Finished ones move to `history` (a sharded collection),
   * so a busy day never makes each commit rewrite a large file.
   */
  constructor(records: ActionCollection, history: ActionCollection = records) {
    this.#records = records;
    this.#history = history;
    for (const rec of [...records.values()]) {
      if (isOpen(rec.state) || history === records) this.#index(rec);
      else {
        records.delete(rec.action.id);
        history.set(rec.action.id, rec);
      }
    }
  }

  /**
   * Adds an action. An open action for the same subject and perk that has not
   * been sent is superseded: the newest plan is the truth (level-triggered), and
   * repeating an idempotent grant or revoke is harmless. A `once` action already
   * marked as sending is never superseded, so it can never be sent twice.
   */
  enqueue(
    action: PerkAction,
    opts: { lane: string; once: boolean; cause: string; now: number; receivedAt?: number },
  ): QueuedAction {
    const key = ledgerKey(action.subject, action.perk);
    const previousId = this.#openByKey.get(key);
    const previous = previousId === undefined ? undefined : this.#records.get(previousId);
    if (previous && previous.state !== "sending") this.#setState(previous, "superseded", opts.now);
    const afterRevoke = previous?.action.type === "revoke" && action.type === "grant";
    const rec: QueuedAction = {
      action,
      key,
      lane: opts.lane,
      once: opts.once,
      cause: opts.cause,
      state: "queued",
      attempts: 0,
      notBefore: opts.now,
      createdAt: opts.now,
      receivedAt: opts.receivedAt ?? opts.now,
      updatedAt: opts.now,
      ...(afterRevoke ? { afterRevoke } : {}),
    };
    this.#records.set(action.id, rec);
    this.#index(rec);
    return rec;
  }

  get(id: string): QueuedAction | undefined {
    return this.#records.get(id) ?? this.#history.get(id);
  }

  /** The open action for a subject and perk, if any. */
  openFor(key: string): QueuedAction | undefined {
    const id = this.#openByKey.get(key);
    return id === undefined ? undefined : this.#records.get(id);
  }

  /** Ids of queued actions in a lane, in no particular order. */
  ready(lane: string): ReadonlySet<string> {
    return this.#ready.get(lane) ?? new Set();
  }

  lanes(): string[] {
    return [...this.#ready.keys()];
  }

  /** Moves an action to a new state and records why. */
  update(
    rec: QueuedAction,
    state: ActionState,
    now: number,
    patch: { notBefore?: number; attempts?: number; last?: QueuedAction["last"] } = {},
  ): void {
    if (patch.notBefore !== undefined) rec.notBefore = patch.notBefore;
    if (patch.attempts !== undefined) rec.attempts = patch.attempts;
    if (patch.last !== undefined) rec.last = patch.last;
    this.#setState(rec, state, now);
  }

  /** Unfinished actions: what status, retry and the lanes care about. */
  open(): IterableIterator<QueuedAction> {
    return this.#records.values();
  }

  /** Every record kept, finished ones included (until pruned). */
  *all(): IterableIterator<QueuedAction> {
    yield* this.#records.values();
    if (this.#history !== this.#records) yield* this.#history.values();
  }

  /** Drops finished actions older than `maxAgeMs`; returns how many. */
  prune(now: number, maxAgeMs: number): number {
    let n = 0;
    for (const rec of [...this.#history.values()]) {
      if (!isOpen(rec.state) && now - rec.updatedAt > maxAgeMs) {
        this.#history.delete(rec.action.id);
        n++;
      }
    }
    return n;
  }

  #setState(rec: QueuedAction, state: ActionState, now: number): void {
    this.#unindex(rec);
    rec.state = state;
    rec.updatedAt = now;
    if (isOpen(state) || this.#history === this.#records) {
      this.#records.set(rec.action.id, rec);
    } else {
      this.#records.delete(rec.action.id);
      this.#history.set(rec.action.id, rec);
    }
    this.#index(rec);
  }

  #index(rec: QueuedAction): void {
    if (!isOpen(rec.state)) return;
    this.#openByKey.set(rec.key, rec.action.id);
    if (rec.state === "queued") {
      let set = this.#ready.get(rec.lane);
      if (!set) this.#ready.set(rec.lane, (set = new Set()));
      set.add(rec.action.id);
    }
  }

  #unindex(rec: QueuedAction): void {
    if (this.#openByKey.get(rec.key) === rec.action.id) this.#openByKey.delete(rec.key);
    this.#ready.get(rec.lane)?.delete(rec.action.id);
  }
}
