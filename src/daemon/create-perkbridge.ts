import { join } from "node:path";
import { Counter, Gauge, Histogram } from "prom-client";
import { backoffDelay } from "../core/backoff.js";
import { PerkbridgeError } from "../core/errors.js";
import type { MassRevokeState } from "../core/mass-revoke-guard.js";
import type { PerkTarget } from "../core/ports.js";
import { createPaymentHubClient, type PaymentHubClient } from "../sources/paymenthub/create-paymenthub-client.js";
import { mapMember } from "../sources/paymenthub/map-member.js";
import { parseWebhookEvent, type PaymentHubEvent } from "../sources/paymenthub/parse-webhook-event.js";
import { verifySignature } from "../sources/paymenthub/verify-signature.js";
import { createAdminServer, type AdminServer } from "./admin/create-admin-server.js";
import { createEngineAdminApi } from "./admin/create-engine-admin-api.js";
import type { Config } from "./config/config-schema.js";
import type { LoadedConfig } from "./config/load-config.js";
import type { Component, ComponentFactory, DaemonContext } from "./create-daemon.js";
import { declareCollections, INTAKE_DIR, MASS_REVOKE_GUARD_KEY, type PaymentHubInboxEntry, type PerkbridgeCollections } from "./declare-collections.js";
import { createInboxSettler, createWebhookIntake, type IntakeEvent } from "./intake/webhook-intake.js";
import type { QueuedAction } from "./reconcile/action-queue.js";
import { createBudgetGate, type BudgetGate } from "./paymenthub/create-budget-gate.js";
import { createPaymentHubLookup } from "./paymenthub/create-paymenthub-lookup.js";
import { createSweeper, type Sweeper, type SweepProgress, type SweepReport } from "./paymenthub/create-sweeper.js";
import { createStore } from "./store/create-store.js";
import { ReconcileEngine, type ReconcileEngineOptions, type ReconcileHint, type SourceLookup } from "./reconcile/reconcile-engine.js";
import { createDiscordLane } from "./lanes/discord-lane.js";
import { createHttpLane } from "./lanes/http-lane.js";
import { createMinecraftLane } from "./lanes/minecraft-lane.js";

/** Replaceable parts and observers, for tests, the demo and `perkbridge start`. */
export interface PerkbridgeOverrides {
  /** Targets to use instead of those built from the config (by lane name). */
  readonly targets?: ReadonlyMap<string, PerkTarget>;
  /** Sees the engine once it is built (tests, the admin channel, the demo). */
  readonly onEngine?: (engine: ReconcileEngine) => void;
  /** Delay of the n-th retry of an action; default: the core backoff (1 s, doubling, 5 min cap). */
  readonly retryDelay?: (attempt: number) => number;
  /**
   * Sweep the billing source once at start-up, catching what happened while the daemon was
   * down; default true. Tests that script the emulator turn it off to keep their calls exact.
   */
  readonly sweepOnStart?: boolean;
  /** Sees every sweep of the billing source as it runs (`perkbridge start` draws it on a terminal). */
  readonly onSweepProgress?: (progress: SweepProgress) => void;
}

/** What the perkbridge component built, for the admin channel started after it. */
interface BuiltPerkbridge {
  readonly component: Component;
  readonly collections: PerkbridgeCollections;
  readonly targets: ReadonlyMap<string, PerkTarget>;
  readonly sources: ReadonlyMap<string, SourceLookup>;
  /** Set once the component started. */
  engine(): ReconcileEngine | undefined;
  gate(): BudgetGate | undefined;
  sweeper(): Sweeper | undefined;
}

/**
 * The capabilities the config asks for: sources, targets, the reconcile
 * engine and the webhook routes as one component, then the operator's admin
 * channel (started after the engine, stopped before it). `createDaemon` is
 * the composition root; this is the part of it that reads the full config.
 */
export function perkbridgeComponents(loaded: LoadedConfig, overrides: PerkbridgeOverrides = {}): ComponentFactory[] {
  let built: BuiltPerkbridge | undefined;
  return [
    async (context) => {
      built = await createPerkbridgeComponent(loaded, context, overrides);
      return built.component;
    },
    (context) => createAdminComponent(loaded, context, () => built),
  ];
}

/**
 * The engine settings the config decides, shared by the daemon and the offline operator commands
 * (`retryDelay` replaces the core backoff, for tests).
 */
export function engineSettingsOf(
  config: Config,
  retryDelay?: (attempt: number) => number,
): Pick<ReconcileEngineOptions, "retry" | "massRevoke" | "adoptExisting" | "statusPolicy"> {
  return {
    retry: { maxAttempts: 10, delay: retryDelay ?? ((n) => backoffDelay(n)), downDelayMs: 5_000 },
    massRevoke: { windowMs: config.policy.mass_revoke.window, share: config.policy.mass_revoke.share, min: config.policy.mass_revoke.min },
    adoptExisting: config.policy.adopt_existing,
    ...(config.policy.statuses ? { statusPolicy: statusPolicyOf(config.policy.statuses) } : {}),
  };
}

/** Revocations the mass-revoke guard admitted lately, as the engine keeps them in `kv`. */
export function recentRevocationsOf(kv: PerkbridgeCollections["kv"]): readonly number[] {
  return (kv.get(MASS_REVOKE_GUARD_KEY) as MassRevokeState | undefined)?.recent ?? [];
}

async function createPerkbridgeComponent(loaded: LoadedConfig, context: DaemonContext, overrides: PerkbridgeOverrides): Promise<BuiltPerkbridge> {
  const { config, plans } = loaded;
  const { store, logger, clock, http, metrics } = context;

  // The inbox has a store of its own, so acknowledgements never wait for cold shards (INTAKE_DIR).
  const intakeStore = createStore({ dir: join(config.state.dir, INTAKE_DIR), clock, ...(config.state.retention === undefined ? {} : { retentionMs: config.state.retention }) });
  let intakeOpen = false;
  // Declared before the stores open.
  const collections = declareCollections(store, intakeStore);

  let engine: ReconcileEngine | undefined;
  const m = createEngineMetrics(metrics.registry, () => engine?.queue.open() ?? []);

  const targets = overrides.targets ?? (await buildTargets(loaded, context, () => engine));
  const sources = new Map<string, SourceLookup>();
  let paymenthub: PaymentHubClient | undefined;
  // The gate reads its saved pause from the store, so it exists only once the store is open;
  // no request is made before that.
  let gate: BudgetGate | undefined;
  let sweeper: Sweeper | undefined;
  const ph = config.sources.paymenthub;
  if (ph) {
    paymenthub = createPaymentHubClient({
      baseUrl: context.baseUrls["paymenthub"] ?? ph.base_url,
      apiKey: ph.api_key,
      timeoutMs: ph.request_timeout,
      clock,
      logger,
      gate: {
        acquire: (priority) => gate?.acquire(priority) ?? Promise.resolve(),
        observe: (info) => gate?.observe(info),
      },
    });
    sources.set("paymenthub", createPaymentHubLookup({ client: paymenthub, clock, logger }));
  }

  if (ph) {
    const intake = createWebhookIntake<PaymentHubEvent & IntakeEvent>({
      source: "paymenthub",
      verify: (raw, signature) => verifySignature(raw, signature, ph.webhook_secrets),
      parse: (raw) => parseWebhookEvent(raw),
      signatureHeader: "x-paymenthub-signature",
      inbox: collections.inbox,
      seen: collections.seen,
      store: intakeStore,
      clock,
      maxAgeMs: ph.event_max_age,
      maxFutureMs: ph.event_max_future,
      logger,
      onAccepted: (entry) => accept(entry),
      onResult: (result) => m.webhooks.inc({ source: "paymenthub", result }),
    });
    http.route(
      "POST",
      "/webhooks/paymenthub",
      async (req) => {
        // Until the inbox is loaded nothing can be made durable: the sender retries.
        if (!intakeOpen) return { status: 503, headers: { "retry-after": "5", "content-type": "application/json" }, body: JSON.stringify({ result: "starting" }) };
        const res = await intake(req.body, req.headers);
        return { status: res.status, headers: { "content-type": "application/json" }, body: JSON.stringify(res.body) };
      },
      { refuseWhileDraining: true },
    );
  }

  /** An event that names no member can only be answered by a sweep. */
  function accept(entry: PaymentHubInboxEntry): void {
    if (entry.event.memberId !== undefined) {
      engine?.schedule(...hintOf(entry));
      return;
    }
    logger.info({ event: entry.event.id, type: entry.event.type }, "webhook names no member: sweeping instead");
    collections.inbox.delete(entry.key);
    void intakeStore.commit();
    void sweeper?.sweep();
  }

  function hintOf(entry: PaymentHubInboxEntry): [string, ReconcileHint] {
    const { event } = entry;
    const key = `paymenthub:${event.memberId ?? ""}`;
    const base = {
      cause: "webhook",
      inboxKeys: [entry.key],
      receivedAt: entry.receivedAt,
      ...(event.created === undefined ? {} : { eventCreated: event.created }),
    };
    if (event.type === "member.deleted") return [key, { ...base, fetch: true, confirmGone: true }];
    if (event.member !== undefined && event.created !== undefined) {
      const mapped = mapMember(event.member, { source: "paymenthub", observedAt: event.created, statusSince: event.created });
      return [key, { ...base, payload: mapped.member }];
    }
    return [key, { ...base, fetch: true }];
  }

  let pruneTimer: NodeJS.Timeout | undefined;
  /** Processed event ids and finished actions older than `state.retention` go, so state stays bounded. */
  async function prune(): Promise<void> {
    const retention = config.state.retention;
    const actions = engine?.queue.prune(clock.now(), retention) ?? 0;
    // An id must outlive the age at which its event is refused anyway, or a replay would pass.
    const events = intakeStore.pruneByAge(collections.seen, (e) => e.receivedAt, Math.max(retention, ph?.event_max_age ?? 0));
    if (actions + events === 0) return;
    await Promise.all([store.commit(), intakeStore.commit()]);
    logger.info({ actions, events }, "pruned finished actions and processed event ids past the retention");
  }

  async function startEngine(): Promise<void> {
    engine = new ReconcileEngine({
      collections,
      store,
      settleInbox: createInboxSettler(collections.inbox, collections.seen, intakeStore),
      clock,
      logger,
      plans,
      sources,
      targets,
      ...engineSettingsOf(config, overrides.retryDelay),
      onSettled: (rec, result) => {
        m.actions.inc({ target: rec.lane, result: result.kind });
        if (rec.state === "done") m.latency.observe({ target: rec.lane }, (clock.now() - rec.receivedAt) / 1000);
      },
    });
    overrides.onEngine?.(engine);
    const missing = new Set([...plans.values()].flatMap((p) => [...p.perks, ...(p.trialPerks ?? [])]).map((p) => p.target).filter((t) => !targets.has(t)));
    for (const lane of missing) {
      logger.warn({ target: lane }, `plans grant ${lane} perks but no ${lane} target is configured: those actions stay queued until it is`);
    }
    for (const target of targets.values()) {
      // A target that cannot start is reported and its lane waits; it never stops the daemon.
      await target.start().catch((error: unknown) => logger.error({ err: error, target: target.name }, "target failed to start; its actions wait"));
    }
    const replay = [...collections.inbox.values()].filter((e) => e.event.memberId !== undefined).map((e) => {
      const [member, hint] = hintOf(e);
      return { key: e.key, member, hint };
    });
    await engine.start(replay);
    if (ph && paymenthub) {
      gate = createBudgetGate({ rateLimit: ph.rate_limit, clock, kv: collections.kv, store, logger });
      const live = engine;
      sweeper = createSweeper({
        client: paymenthub,
        engine: { schedule: (key, hint) => live.schedule(key, hint), member: (key) => live.member(key) },
        members: collections.members,
        clock,
        logger,
        cron: ph.poll.cron,
        rateLimit: ph.rate_limit,
        onSweep: (report) => observeSweep(m, report),
        ...(overrides.onSweepProgress === undefined ? {} : { onProgress: overrides.onSweepProgress }),
      });
      sweeper.start();
      if (overrides.sweepOnStart ?? true) sweeper.sweep().catch((error: unknown) => logger.error({ err: error }, "PaymentHub sweep failed"));
    }
    await prune();
    pruneTimer = setInterval(() => void prune(), PRUNE_INTERVAL_MS);
    pruneTimer.unref();
  }

  const component: Component = {
    name: "perkbridge",
    async start() {
      logger.info({ dir: intakeStore.dir, ...(await intakeStore.open()) }, "inbox loaded");
      intakeOpen = true;
      try {
        await startEngine();
      } catch (error) {
        // A component that failed to start is not stopped by the daemon: release the inbox here.
        intakeOpen = false;
        await intakeStore.close();
        throw error;
      }
    },
    async stop() {
      if (pruneTimer) clearInterval(pruneTimer);
      await sweeper?.stop();
      await engine?.stop();
      await gate?.stop();
      for (const target of [...targets.values()].reverse()) await target.stop().catch((error: unknown) => logger.error({ err: error, target: target.name }, "target failed to stop"));
      if (intakeOpen) {
        intakeOpen = false;
        await intakeStore.close();
      }
    },
  };
  if (ph) {
    new Gauge({
      name: "perkbridge_api_budget_remaining",
      help: "Requests left in each window of the billing source's client-side budget.",
      labelNames: ["source", "window"],
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const w of gate?.snapshot().windows ?? []) this.set({ source: "paymenthub", window: `${w.windowMs / 1000}s` }, w.remaining);
      },
    });
  }
  // The files catch up with the log in the background: a queue that only grows means they do not.
  const stores = { state: store, intake: intakeStore };
  const storeGauges = [
    ["perkbridge_state_checkpoint_queue", "State files waiting to be rewritten from the write-ahead log, by store (state, intake).", "checkpointQueue"],
    ["perkbridge_state_log_segments", "Write-ahead log segments on disk, by store: 1, more while older ones are being checkpointed.", "logSegments"],
  ] as const;
  for (const [name, help, stat] of storeGauges) {
    new Gauge({
      name,
      help,
      labelNames: ["store"],
      registers: [metrics.registry],
      collect() {
        for (const [label, s] of Object.entries(stores)) this.set({ store: label }, s.stats()[stat]);
      },
    });
  }
  return { component, collections, targets, sources, engine: () => engine, gate: () => gate, sweeper: () => sweeper };
}

/**
 * The operator's admin channel on the running engine. A channel that cannot open is logged and the
 * daemon runs on: webhooks and targets matter more than `perkbridge status`, which then says the
 * daemon holds the state but does not answer.
 */
function createAdminComponent(loaded: LoadedConfig, context: DaemonContext, perkbridge: () => BuiltPerkbridge | undefined): Component {
  const path = loaded.config.admin.socket;
  let server: AdminServer | undefined;
  return {
    name: "admin",
    async start() {
      const built = perkbridge();
      const engine = built?.engine();
      if (built === undefined || engine === undefined) {
        throw new PerkbridgeError("ERR_ADMIN_STATE", "the admin channel starts after the reconcile engine");
      }
      const api = createEngineAdminApi({
        engine,
        clock: context.clock,
        memberKeys: () => built.collections.members.keys(),
        targets: built.targets,
        minecraftServers: Object.keys(loaded.config.targets.minecraft?.servers ?? {}),
        sources: [...built.sources.keys()],
        massRevoke: { config: engineSettingsOf(loaded.config).massRevoke, recent: () => recentRevocationsOf(built.collections.kv) },
        budget: () => {
          const snapshot = built.gate()?.snapshot();
          if (!snapshot) return [];
          return [{
            source: "paymenthub",
            windows: snapshot.windows.map((w) => ({ limit: w.limit, remaining: w.remaining, windowMs: w.windowMs })),
            ...(snapshot.blockedUntil === undefined ? {} : { blockedUntil: snapshot.blockedUntil }),
          }];
        },
        lastSweep: () => {
          const r = built.sweeper()?.lastReport();
          if (!r) return undefined;
          return { source: "paymenthub", startedAt: r.startedAt, finishedAt: r.finishedAt, members: r.members, requests: r.requests, complete: r.complete, ...(r.error === undefined ? {} : { error: r.error }) };
        },
        ...(built.sweeper()
          ? {
              runSweep: async (progress) =>
                (built.sweeper() as Sweeper).sweep((p) => {
                  if (!p.finished) progress(p.members, p.total, "listing PaymentHub members");
                }),
            }
          : {}),
      });
      const candidate = createAdminServer({ path, api, logger: context.logger });
      try {
        await candidate.start();
        server = candidate;
      } catch (error) {
        context.logger.error({ err: error, path }, "admin channel failed to open: `perkbridge status`, `sync`, `retry` and `confirm` cannot reach this daemon");
      }
    },
    async stop() {
      await server?.stop();
      server = undefined;
    },
  };
}

function statusPolicyOf(statuses: { grant?: readonly string[] | undefined; trial?: readonly string[] | undefined; revoke?: readonly string[] | undefined }) {
  return {
    grant: statuses.grant ?? ["active"],
    trial: statuses.trial ?? ["trial", "trialing"],
    revoke: statuses.revoke ?? ["canceled", "cancelled", "deleted", "expired"],
  };
}

async function buildTargets(loaded: LoadedConfig, context: DaemonContext, engine: () => ReconcileEngine | undefined): Promise<Map<string, PerkTarget>> {
  const targets = new Map<string, PerkTarget>();
  for (const create of [createDiscordLane, createMinecraftLane, createHttpLane]) {
    const target = await create(loaded, context, engine);
    if (target) targets.set(target.name, target);
  }
  return targets;
}

const PRUNE_INTERVAL_MS = 3_600_000;

function observeSweep(m: ReturnType<typeof createEngineMetrics>, report: SweepReport): void {
  m.sweepDuration.observe({ source: "paymenthub", complete: String(report.complete) }, (report.finishedAt - report.startedAt) / 1000);
  m.sweepMembers.set({ source: "paymenthub" }, report.members);
  m.sweepRequests.inc({ source: "paymenthub" }, report.requests);
}

function createEngineMetrics(registry: DaemonContext["metrics"]["registry"], actions: () => Iterable<QueuedAction>) {
  return {
    webhooks: new Counter({ name: "perkbridge_webhooks_total", help: "Webhooks received, by source and result (accepted, duplicate, stale, future, ignored-type, forged, invalid).", labelNames: ["source", "result"], registers: [registry] }),
    actions: new Counter({ name: "perkbridge_actions_total", help: "Actions settled, by target and result.", labelNames: ["target", "result"], registers: [registry] }),
    latency: new Histogram({
      name: "perkbridge_reconcile_latency_seconds",
      help: "From the triggering event's arrival to its action done.",
      labelNames: ["target"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    sweepDuration: new Histogram({ name: "perkbridge_sweep_duration_seconds", help: "Full sweeps of a billing source, by whether they completed.", labelNames: ["source", "complete"], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers: [registry] }),
    sweepMembers: new Gauge({ name: "perkbridge_sweep_members", help: "Members listed by the last sweep.", labelNames: ["source"], registers: [registry] }),
    sweepRequests: new Counter({ name: "perkbridge_sweep_requests_total", help: "List requests made by sweeps.", labelNames: ["source"], registers: [registry] }),
    queue: new Gauge({
      name: "perkbridge_queue_depth",
      help: "Unfinished actions, by target and state.",
      labelNames: ["target", "state"],
      registers: [registry],
      collect() {
        this.reset();
        for (const rec of actions()) {
          if (rec.state === "queued" || rec.state === "waiting" || rec.state === "parked" || rec.state === "sending") this.inc({ target: rec.lane, state: rec.state });
        }
      },
    }),
  };
}

