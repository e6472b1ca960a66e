import { parse as parseCron, schedule as scheduleCron, type ScheduledTask } from "node-cron";
import type { Member } from "../../core/member.js";
import { checkCronCadence, planPollCadence, type CadencePlan, type CronCheck, type PollBudgetInput } from "../../core/poll-cadence.js";
import type { Clock } from "../../core/ports.js";
import type { RateWindow } from "../../core/rate-budget.js";
import type { PaymentHubClient } from "../../sources/paymenthub/create-paymenthub-client.js";
import { mapMember } from "../../sources/paymenthub/map-member.js";
import { reconcileDigest } from "../member-digest.js";
import type { ReconcileHint } from "../reconcile/reconcile-engine.js";
import type { RateLimitSection } from "./create-budget-gate.js";

/** What the sweeper needs of the reconcile engine. */
export interface SweepEngine {
  schedule(key: string, hint: ReconcileHint): void;
  member(key: string): Member | undefined;
}

/** The subset of a pino logger the sweeper uses. */
export interface SweeperLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SweeperOptions {
  /** Default `paymenthub`. */
  readonly source?: string;
  /** The gate-bound client; list requests go at priority `poll`. */
  readonly client: PaymentHubClient;
  readonly engine: SweepEngine;
  /**
   * The engine's members collection, only read: who is stored but was not listed, and (by
   * {@link reconcileDigest}) whose listed state differs from the stored one.
   */
  readonly members: { keys(): Iterable<string>; digestOf(key: string): string | undefined; get(key: string): Member | undefined };
  readonly clock: Clock;
  readonly logger: SweeperLogger;
  /** `sources.paymenthub.poll.cron`: `auto` or a cron expression. */
  readonly cron: string;
  /** `sources.paymenthub.rate_limit`, for the cadence. */
  readonly rateLimit: RateLimitSection;
  /** Default 100 (the API's maximum): the fewest requests per sweep. */
  readonly pageSize?: number;
  /** Default: {@link planPollCadence} of the core. */
  readonly planCadence?: (input: PollBudgetInput) => CadencePlan;
  /** After every sweep (metrics, status). */
  readonly onSweep?: (report: SweepReport) => void;
  /** While a sweep runs: after each page read, and once more when it ends (a terminal's progress line). */
  readonly onProgress?: (progress: SweepProgress) => void;
}

/** How far a running sweep has got. */
export interface SweepProgress {
  /** List pages read so far. */
  readonly pages: number;
  /** PaymentHub's `total_pages` on the latest page read; 0 before the first. */
  readonly totalPages: number;
  /** Distinct members listed so far. */
  readonly members: number;
  /** PaymentHub's `total` on the latest page read: the members expected; 0 before the first. */
  readonly total: number;
  /** The sweep has ended, complete or not: nothing more is reported for it. */
  readonly finished: boolean;
}

/** What one sweep did. */
export interface SweepReport {
  readonly startedAt: number;
  readonly finishedAt: number;
  /** List pages read. */
  readonly pages: number;
  /** List requests made (a failed one included). */
  readonly requests: number;
  /** Distinct members listed. */
  readonly members: number;
  /** PaymentHub's `total` on the last page read. */
  readonly total?: number;
  /** Members scheduled with their listed state because something relevant changed (or new). */
  readonly changed: number;
  /** Stored members, not gone, that a complete listing did not contain (0 for an incomplete sweep). */
  readonly missing: number;
  /** Of those, scheduled for a confirming lookup. */
  readonly confirmed: number;
  /** Every page up to `total_pages` was read without error. */
  readonly complete: boolean;
  readonly error?: string;
}

export interface Sweeper {
  /** Schedules sweeps by the cron (or the planned cadence for `auto`). */
  start(): void;
  /** Stops the schedule; a sweep in progress schedules nothing more. */
  stop(): Promise<void>;
  /**
   * One full sweep now; a sweep already running is joined, not doubled. `onProgress` sees this
   * sweep's progress too (`perkbridge sync` shows it), besides {@link SweeperOptions.onProgress}.
   */
  sweep(onProgress?: (progress: SweepProgress) => void): Promise<SweepReport>;
  /** The cadence `auto` chose, or the check of the configured cron. */
  cadence(): { readonly cron: string; readonly plan?: CadencePlan; readonly check?: CronCheck };
  lastReport(): SweepReport | undefined;
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * The polling sweep of PaymentHub: lists every member, schedules a reconcile
 * only for those whose relevant state changed (a quiet sweep writes nothing),
 * and, only after a complete and successful listing, asks the engine to
 * confirm by direct lookup each stored member that was not listed
 * (DESIGN.md invariant 4: a failed, partial or rate-limited poll revokes
 * nothing). A sweep costs ceil(members / 100) list requests plus the
 * confirming lookups.
 */
export function createSweeper(options: SweeperOptions): Sweeper {
  const source = options.source ?? "paymenthub";
  const pageSize = options.pageSize ?? 100;
  const { client, engine, clock, logger } = options;
  const planCadence = options.planCadence ?? planPollCadence;
  const windows: RateWindow[] = [
    { limit: options.rateLimit.per_minute, windowMs: MINUTE },
    { limit: options.rateLimit.per_hour, windowMs: HOUR },
  ];

  let running: Promise<SweepReport> | undefined;
  let last: SweepReport | undefined;
  let estimate: number | undefined;
  let task: ScheduledTask | undefined;
  let stopped = false;
  let current: { cron: string; plan?: CadencePlan; check?: CronCheck } = { cron: options.cron };
  let lastWarning: string | undefined;

  /** Listeners of the running sweep only, from {@link Sweeper.sweep} calls. */
  const sweepListeners = new Set<(progress: SweepProgress) => void>();

  function reportProgress(progress: SweepProgress): void {
    for (const listener of [options.onProgress, ...sweepListeners]) {
      try {
        listener?.(progress);
      } catch (error) {
        // Progress is for show: a failing display must not abort the listing.
        logger.warn({ err: error instanceof Error ? error.message : String(error) }, "sweep progress listener failed");
      }
    }
  }

  /** Keys are `<source>:<id>`: the source's stored members, without reading a record. */
  function* storedKeys(): Generator<string> {
    const prefix = `${source}:`;
    for (const key of options.members.keys()) if (key.startsWith(prefix)) yield key;
  }

  function estimateMembers(): number {
    if (estimate !== undefined) return estimate;
    // Members marked gone count too: an estimate for planning the cadence, read from keys alone.
    let n = 0;
    for (const _key of storedKeys()) n++;
    return n;
  }

  /** Re-plans `auto`, or checks a fixed cron against the member count; warns once per new finding. */
  function plan(): void {
    const members = estimateMembers();
    if (options.cron === "auto") {
      const p = planCadence({ members, windows, pageSize });
      current = { cron: p.cron, plan: p };
      if (p.warning !== undefined && p.warning !== lastWarning) logger.warn({ members }, p.warning);
      lastWarning = p.warning;
    } else {
      const f = parseCron(options.cron);
      const check = checkCronCadence({ members, windows, pageSize, expression: options.cron, fields: { second: f.second, minute: f.minute, hour: f.hour } });
      current = { cron: options.cron, check };
      if (check.warning !== undefined && check.warning !== lastWarning) logger.warn({ members }, check.warning);
      lastWarning = check.warning;
    }
  }

  /** After a sweep: the member count may have moved the cadence (or a fixed cron's fit). */
  function replan(): void {
    if (stopped) return;
    const before = current.cron;
    plan();
    if (task === undefined || current.cron === before) return;
    void task.destroy();
    task = createTask(current.cron);
    logger.info({ cron: current.cron, everyMinutes: current.plan?.everyMinutes }, "PaymentHub poll cadence changed with the member count");
  }

  function createTask(cron: string): ScheduledTask {
    return scheduleCron(
      cron,
      async () => {
        await sweep();
      },
      { name: `${source}-sweep`, noOverlap: true },
    );
  }

  async function run(): Promise<SweepReport> {
    const startedAt = clock.now();
    const seen = new Set<string>();
    let pages = 0;
    let requests = 0;
    let changed = 0;
    let total: number | undefined;
    let totalPages = 1;
    let error: string | undefined;

    for (let page = 1; page <= totalPages; page++) {
      if (stopped) {
        error = "the sweeper was stopped";
        break;
      }
      requests++;
      let list;
      try {
        list = await client.listMembers({ page, limit: pageSize }, { priority: "poll" });
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
        break;
      }
      if (stopped) {
        error = "the sweeper was stopped";
        break;
      }
      pages++;
      const observedAt = clock.now();
      // The latest page knows best how many there are now; members may come and go while we list.
      totalPages = list.pagination.total_pages;
      total = list.pagination.total;
      for (const wire of list.members) {
        // A member shifted onto a later page by a deletion is listed twice: once is enough.
        if (seen.has(wire.id)) continue;
        seen.add(wire.id);
        const key = `${source}:${wire.id}`;
        const mapped = mapMember(wire, { source, observedAt, statusSince: observedAt });
        // The digest needs no stored record: most members have not changed, and their records stay on disk.
        const storedDigest = options.members.digestOf(key);
        if (storedDigest !== undefined && storedDigest === reconcileDigest(mapped.member)) continue;
        if (mapped.conflicts.length > 0 || mapped.problems.length > 0) {
          logger.warn({ member: key, conflicts: mapped.conflicts, problems: mapped.problems }, "PaymentHub member metadata needs attention");
        }
        // PaymentHub gives no time of a status change: a stored member keeps the one perkbridge saw.
        const stored = engine.member(key);
        const payload = stored === undefined ? mapped.member : { ...mapped.member, statusSince: stored.statusSince };
        engine.schedule(key, { cause: "sweep", payload });
        changed++;
      }
      reportProgress({ pages, totalPages, members: seen.size, total, finished: false });
    }

    // Before the log lines below: a terminal's progress line is gone by the time they are written.
    reportProgress({ pages, totalPages: pages === 0 ? 0 : totalPages, members: seen.size, total: total ?? 0, finished: true });
    const complete = error === undefined;
    let missing = 0;
    if (complete) {
      const absent: string[] = [];
      for (const key of storedKeys()) {
        if (seen.has(key.slice(source.length + 1))) continue;
        if (options.members.get(key)?.gone !== true) absent.push(key);
      }
      missing = absent.length;
      // Only a direct 404 confirms a member gone; the engine does the lookup.
      for (const key of absent) engine.schedule(key, { cause: "sweep", confirmGone: true });
      if (missing > 0) logger.info({ missing }, "members missing from a complete PaymentHub listing; confirming each by direct lookup");
    } else {
      logger.warn({ pages, requests, error }, "PaymentHub sweep aborted: nothing is confirmed gone or revoked because of it");
    }
    const report: SweepReport = {
      startedAt,
      finishedAt: clock.now(),
      pages,
      requests,
      members: seen.size,
      ...(total !== undefined ? { total } : {}),
      changed,
      missing,
      confirmed: missing,
      complete,
      ...(error !== undefined ? { error } : {}),
    };
    if (complete) logger.info({ pages, requests, members: seen.size, changed, missing }, "PaymentHub sweep complete");
    return report;
  }

  function sweep(onProgress?: (progress: SweepProgress) => void): Promise<SweepReport> {
    if (onProgress !== undefined) sweepListeners.add(onProgress);
    const joined = running ?? startSweep();
    if (onProgress !== undefined) joined.finally(() => sweepListeners.delete(onProgress)).catch(() => undefined);
    return joined;
  }

  function startSweep(): Promise<SweepReport> {
    const started = run().then((report) => {
      last = report;
      // Only a complete listing's total is a member count to plan by.
      if (report.complete && report.total !== undefined) estimate = report.total;
      options.onSweep?.(report);
      replan();
      return report;
    });
    running = started.finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    start() {
      if (task !== undefined || stopped) return;
      plan();
      task = createTask(current.cron);
      logger.info({ cron: current.cron, everyMinutes: current.plan?.everyMinutes }, "PaymentHub sweeps scheduled");
    },
    async stop() {
      stopped = true;
      const t = task;
      task = undefined;
      if (t !== undefined) await t.destroy();
    },
    sweep,
    cadence() {
      if (current.plan === undefined && current.check === undefined) plan();
      return current;
    },
    lastReport() {
      return last;
    },
  };
}
