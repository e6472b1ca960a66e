import type { Clock, PerkTarget, SyncResult } from "../../core/ports.js";
import type { ActionQueue, QueuedAction } from "./action-queue.js";
import { settleAction, type RetryPolicy } from "./settle-action.js";

/** What the runner needs from the store: a durable commit. */
export interface Committer {
  commit(): Promise<void>;
}

export interface LaneLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LaneRunnerOptions {
  readonly queue: ActionQueue;
  readonly targets: ReadonlyMap<string, PerkTarget>;
  readonly store: Committer;
  readonly clock: Clock;
  readonly logger: LaneLogger;
  readonly retry: RetryPolicy;
  /** Actions in flight at once per lane. */
  readonly concurrency?: number | ((lane: string) => number);
  /** Called once an action is settled and committed (ledger updates, metrics). */
  readonly onSettled?: (rec: QueuedAction, result: SyncResult) => void;
}

/**
 * Runs queued actions, one lane per target, so a target that is down or slow
 * never delays another. Only actions already on disk are offered to it: the
 * caller commits the queue first (DESIGN.md invariant 6).
 */
export class LaneRunner {
  readonly #o: LaneRunnerOptions;
  readonly #inFlight = new Map<string, Set<string>>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #running = new Set<Promise<void>>();
  #stopped = false;

  constructor(options: LaneRunnerOptions) {
    this.#o = options;
  }

  /** Looks for due work in every lane (after start-up, after a commit of new actions). */
  kickAll(): void {
    for (const lane of this.#o.queue.lanes()) this.kick(lane);
  }

  kick(lane: string): void {
    if (this.#stopped) return;
    const target = this.#o.targets.get(lane);
    if (!target) return;
    const inFlight = this.#inFlightOf(lane);
    const limit = this.#concurrency(lane);
    const now = this.#o.clock.now();
    let nextAt = Number.POSITIVE_INFINITY;
    for (const id of this.#o.queue.ready(lane)) {
      if (inFlight.size >= limit) break;
      if (inFlight.has(id)) continue;
      const rec = this.#o.queue.get(id);
      if (!rec) continue;
      if (rec.notBefore > now) {
        nextAt = Math.min(nextAt, rec.notBefore);
        continue;
      }
      inFlight.add(id);
      const run = this.#run(lane, target, rec).finally(() => {
        inFlight.delete(id);
        this.#running.delete(run);
        this.kick(lane);
      });
      this.#running.add(run);
    }
    if (Number.isFinite(nextAt)) this.#wakeAt(lane, nextAt);
  }

  /** Stops taking new work and waits for what is in flight; queued work stays on disk. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#running]);
  }

  /** Actions in flight per lane, for status and tests. */
  inFlight(lane: string): number {
    return this.#inFlight.get(lane)?.size ?? 0;
  }

  async #run(lane: string, target: PerkTarget, rec: QueuedAction): Promise<void> {
    const { queue, store, clock, logger } = this.#o;
    // A once-only action is marked sending before it goes out: after a crash it is reported, never resent.
    if (rec.once) queue.update(rec, "sending", clock.now());
    // kick() also sees actions whose reconcile has not committed yet (another member's kick can
    // come first): nothing is sent before it is on disk (DESIGN.md invariant 6).
    await store.commit();
    let result: SyncResult;
    try {
      result = await target.apply(rec.action);
    } catch (error) {
      // A target must return values; a throw is a bug, so the action is held, not lost.
      logger.error({ err: error, action: rec.action.id, lane }, "target threw instead of returning a result");
      result = {
        kind: "failed",
        retryable: true,
        reason: error instanceof Error ? error.message : String(error),
        ...(rec.once ? { outcomeUnknown: true } : {}),
      };
    }
    const settled = settleAction(rec, result, clock.now(), this.#o.retry);
    queue.update(rec, settled.state, clock.now(), settled);
    const log = { action: rec.action.id, lane, type: rec.action.type, subject: rec.action.subject, result: result.kind, state: settled.state, ...settled.last };
    if (settled.state === "parked") logger.warn(log, "action parked: needs the operator");
    else if (result.kind === "failed") logger.warn(log, "action failed, will retry");
    // A first sweep settles thousands of actions: success is counted in /metrics, not logged at info.
    else logger.debug(log, "action settled");
    await store.commit();
    this.#o.onSettled?.(rec, result);
  }

  #wakeAt(lane: string, at: number): void {
    const existing = this.#timers.get(lane);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const delay = Math.min(Math.max(0, at - this.#o.clock.now()), 2_147_483_647);
    const timer = setTimeout(() => {
      this.#timers.delete(lane);
      this.kick(lane);
    }, delay);
    timer.unref();
    this.#timers.set(lane, { at, timer });
  }

  #inFlightOf(lane: string): Set<string> {
    let set = this.#inFlight.get(lane);
    if (!set) this.#inFlight.set(lane, (set = new Set()));
    return set;
  }

  #concurrency(lane: string): number {
    const c = this.#o.concurrency;
    if (typeof c === "function") return c(lane);
    return c ?? 8;
  }
}
