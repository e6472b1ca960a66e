import { PerkbridgeError } from "../../core/errors.js";
import { ledgerKey } from "../../core/ledger.js";
import { admitRevocations, dropHeldIfEntitled, type MassRevokeConfig, type MassRevokeState } from "../../core/mass-revoke-guard.js";
import type { Perk } from "../../core/perk.js";
import type { Clock, PerkAction, PerkTarget } from "../../core/ports.js";
import type { DiscordTarget } from "../../adapters/discord/create-discord-target.js";
import type { MinecraftTarget } from "../../adapters/minecraft/create-minecraft-target.js";
import type { QueuedAction } from "../reconcile/action-queue.js";
import type { ReconcileEngine } from "../reconcile/reconcile-engine.js";
import type {
  AdminApi,
  LaneDepth,
  ParkedAction,
  PlannedAction,
  ProgressListener,
  StatusReport,
  SyncOptions,
  SyncReport,
  TargetHealth,
} from "./admin-api.js";

/** What a full listing of a source reported, as `sync` needs it (the sweeper's report fits). */
export interface SweepOutcome {
  readonly members: number;
  /** Only a complete listing can justify revocations; an incomplete one fails the sync. */
  readonly complete: boolean;
  readonly error?: string;
}

/** Options of {@link createEngineAdminApi}. */
export interface EngineAdminOptions {
  readonly engine: ReconcileEngine;
  readonly clock: Clock;
  /** Keys of every stored member (the engine's `members` collection): who a full sync reconciles. */
  readonly memberKeys: () => Iterable<string>;
  /** The engine's targets by lane name; their health is read from them unless `health` is given. */
  readonly targets: ReadonlyMap<string, PerkTarget>;
  /** The configured Minecraft servers: the Minecraft target keeps a health record per server. */
  readonly minecraftServers?: readonly string[];
  /** Lanes listed in the queue even when empty; default: the names of `targets`. */
  readonly lanes?: readonly string[];
  /** Configured sources (`paymenthub`): `sync --member` refuses a key of any other. */
  readonly sources?: readonly string[];
  /** Replaces the health read from `targets` (the offline opener starts no target). */
  readonly health?: () => readonly TargetHealth[];
  /** Each source's rate budget, when a budget gate runs. */
  readonly budget?: () => StatusReport["budget"];
  /** The last full listing, when a sweeper runs. */
  readonly lastSweep?: () => StatusReport["lastSweep"];
  /** Lists every member of the source now and schedules what changed; `sync` runs it first when given. */
  readonly runSweep?: (progress: ProgressListener) => Promise<SweepOutcome>;
  /**
   * The mass-revoke guard's config and its recent revocations, so that `sync --dry-run` can tell
   * which revocations the guard would hold. Without it, a dry run plans every revocation.
   */
  readonly massRevoke?: { readonly config: MassRevokeConfig; readonly recent: () => readonly number[] };
}

/** The stage of a full sync after the listing (its counts start over). */
const RECONCILING = "reconciling";

/** Members reconciled per step of a full sync: progress is reported after each. */
const SYNC_CHUNK = 64;

/**
 * The operator's commands on a reconcile engine: what the daemon serves on its admin channel, and
 * what the offline opener serves from a state directory it opened itself.
 */
export function createEngineAdminApi(options: EngineAdminOptions): AdminApi {
  const { engine, clock } = options;
  let syncing = false;

  function status(): StatusReport {
    const records = [...engine.queue.all()];
    const lanes = new Set(options.lanes ?? options.targets.keys());
    for (const rec of records) lanes.add(rec.lane);
    const depth = new Map<string, { queued: number; waiting: number; parked: number }>([...lanes].map((lane) => [lane, { queued: 0, waiting: 0, parked: 0 }]));
    const parked: ParkedAction[] = [];
    for (const rec of records) {
      const d = depth.get(rec.lane);
      if (d === undefined) continue;
      // A `once` action being sent is in flight; the runner counts it, like a queued one it runs.
      if (rec.state === "queued" || rec.state === "sending") d.queued++;
      else if (rec.state === "waiting") d.waiting++;
      else if (rec.state === "parked") {
        d.parked++;
        parked.push(parkedOf(rec));
      }
    }
    const queue: LaneDepth[] = [...depth]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([lane, d]) => {
        const inFlight = engine.runner.inFlight(lane);
        return { lane, queued: Math.max(0, d.queued - inFlight), waiting: d.waiting, parked: d.parked, inFlight };
      });
    parked.sort((a, b) => a.since - b.since);
    const held = engine.held().map((h) => ({
      id: h.action.id,
      subject: h.action.subject,
      perk: describePerk(h.action.perk),
      members: h.action.members,
      heldAt: h.heldAt,
      reason: h.reason,
    }));
    const lastSweep = options.lastSweep?.();
    return {
      queue,
      parked,
      held,
      budget: options.budget?.() ?? [],
      ...(lastSweep === undefined ? {} : { lastSweep }),
      targets: options.health?.() ?? [...options.targets.values()].flatMap((t) => healthOf(t, options.minecraftServers ?? [])),
    };
  }

  function checkMemberKey(key: string): void {
    const colon = key.indexOf(":");
    if (colon <= 0 || colon === key.length - 1) {
      throw new PerkbridgeError("ERR_ADMIN_BAD_MEMBER", `"${key}" is not a member key: write it as <source>:<id>, such as paymenthub:mem_123`);
    }
    const source = key.slice(0, colon);
    if (options.sources !== undefined && !options.sources.includes(source)) {
      const known = options.sources.length === 0 ? "none is configured" : `configured: ${options.sources.join(", ")}`;
      throw new PerkbridgeError("ERR_ADMIN_BAD_MEMBER", `member ${key} belongs to source "${source}", which is not configured (${known})`);
    }
  }

  function dryRun(keys: readonly string[], progress: ProgressListener | undefined, single: boolean): SyncReport {
    const now = clock.now();
    const totalGrants = engine.ledger().size;
    // A copy of the guard's state that only this plan sees: the same core functions the engine
    // runs decide what it would hold, without holding anything.
    let guard: MassRevokeState<PerkAction> = { recent: options.massRevoke?.recent() ?? [], held: engine.held() };
    const planned: PlannedAction[] = [];
    let held = 0;
    let members = 0;
    let n = 0;
    for (const [i, key] of keys.entries()) {
      const explained = engine.explain(key);
      if (explained === undefined) {
        if (single) throw unknownMember(key);
      } else {
        members++;
        const revokes: PerkAction[] = [];
        for (const action of explained.plan) {
          if (action.type === "grant") {
            const dropped = dropHeldIfEntitled(guard, ledgerKey(action.subject, action.perk));
            // The engine drops a held revocation of a perk the member is entitled to again: no grant.
            if (dropped.dropped.length > 0) guard = dropped.state;
            else planned.push(plannedOf(action));
          } else {
            revokes.push({ ...action, id: `dry-run-${n++}`, identities: {} });
          }
        }
        if (options.massRevoke === undefined) {
          planned.push(...revokes.map(plannedOf));
        } else {
          const admitted = admitRevocations(guard, revokes, totalGrants, now, options.massRevoke.config);
          guard = admitted.state;
          held += admitted.held.length;
          planned.push(...admitted.admitted.map(plannedOf));
        }
      }
      progress?.(i + 1, keys.length);
    }
    return { planned, held, members, dryRun: true };
  }

  /** What the sync queued and held: the actions and held revocations that were not there before. */
  function snapshot(): { actions: Set<string>; held: Set<string> } {
    return { actions: new Set([...engine.queue.all()].map((r) => r.action.id)), held: new Set(engine.held().map((h) => h.action.id)) };
  }

  function changesSince(before: ReturnType<typeof snapshot>, member: string | undefined): { planned: PlannedAction[]; held: number } {
    const concerns = (members: readonly string[]): boolean => member === undefined || members.includes(member);
    const planned = [...engine.queue.all()]
      .filter((r) => !before.actions.has(r.action.id) && concerns(r.action.members))
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((r) => plannedOf(r.action));
    const held = engine.held().filter((h) => !before.held.has(h.action.id) && concerns(h.action.members)).length;
    return { planned, held };
  }

  async function reconcileAll(progress: ProgressListener | undefined): Promise<number> {
    const keys = [...options.memberKeys()];
    progress?.(0, keys.length, RECONCILING);
    for (let i = 0; i < keys.length; i += SYNC_CHUNK) {
      for (const key of keys.slice(i, i + SYNC_CHUNK)) engine.schedule(key, { cause: "operator" });
      await engine.idle();
      progress?.(Math.min(i + SYNC_CHUNK, keys.length), keys.length, RECONCILING);
    }
    return keys.length;
  }

  async function sync(opts: SyncOptions, progress?: ProgressListener): Promise<SyncReport> {
    if (opts.member !== undefined) checkMemberKey(opts.member);
    if (opts.dryRun) {
      const keys = opts.member === undefined ? [...options.memberKeys()] : [opts.member];
      return dryRun(keys, progress, opts.member !== undefined);
    }
    if (syncing) throw new PerkbridgeError("ERR_SYNC_RUNNING", "a sync is already running: wait for it to finish (`perkbridge status` shows the queue)");
    syncing = true;
    try {
      const before = snapshot();
      let members: number;
      if (opts.member !== undefined) {
        // Looked up at the source first: the operator asks for the member's state as it is now.
        engine.schedule(opts.member, { cause: "operator", fetch: true });
        await engine.idle();
        if (engine.member(opts.member) === undefined) throw unknownMember(opts.member);
        progress?.(1, 1);
        members = 1;
      } else {
        if (options.runSweep !== undefined) {
          const outcome = await options.runSweep(progress ?? (() => undefined));
          await engine.idle();
          if (!outcome.complete) {
            throw new PerkbridgeError(
              "ERR_SYNC_INCOMPLETE",
              `the listing of members stopped early${outcome.error === undefined ? "" : ` (${outcome.error})`}: the members listed were reconciled, ` +
                "nothing was revoked for the others. Run `perkbridge sync` again later.",
            );
          }
        }
        // Everyone stored, from their stored state: no request to the source, so no rate budget spent.
        members = await reconcileAll(progress);
      }
      return { ...changesSince(before, opts.member), members, dryRun: false };
    } finally {
      syncing = false;
    }
  }

  return {
    status: async () => status(),
    sync,
    async retry(filter) {
      const requeued = await engine.retry({
        ...(filter.target === undefined ? {} : { target: filter.target }),
        ...(filter.member === undefined ? {} : { member: filter.member }),
      });
      return { requeued };
    },
    async confirm(opts) {
      const ids = opts.all === true ? "all" : (opts.ids ?? []);
      if (ids !== "all" && ids.length === 0) return { released: 0 };
      return { released: await engine.confirm(ids) };
    },
  };
}

/** A readable label of a perk, as status and sync print it: `discord role 123 in guild 456`. */
export function describePerk(perk: Perk): string {
  const what = perk.value === "" ? perk.kind : `${perk.kind} ${perk.value}`;
  switch (perk.target) {
    case "discord":
      return `discord ${what} in guild ${perk.scope}`;
    case "http":
      return `http ${what} to endpoint ${perk.scope}`;
    default:
      return `${perk.target} ${what} on ${perk.scope}`;
  }
}

function plannedOf(action: Pick<PerkAction, "type" | "subject" | "perk" | "members" | "reason">): PlannedAction {
  return { type: action.type, subject: action.subject, perk: describePerk(action.perk), members: action.members, reason: action.reason };
}

function parkedOf(rec: QueuedAction): ParkedAction {
  return {
    id: rec.action.id,
    lane: rec.lane,
    subject: rec.action.subject,
    perk: describePerk(rec.action.perk),
    reason: rec.last?.reason ?? `parked after ${rec.attempts} attempts`,
    ...(rec.last?.fix === undefined ? {} : { fix: rec.last.fix }),
    since: rec.updatedAt,
  };
}

function unknownMember(key: string): PerkbridgeError {
  return new PerkbridgeError(
    "ERR_MEMBER_UNKNOWN",
    `no member ${key} is known: check the key (such as paymenthub:mem_123); a member the source has not reported yet ` +
      "is looked up by `perkbridge sync --member` without --dry-run",
  );
}

function isDiscordTarget(target: PerkTarget): target is DiscordTarget {
  return "connected" in target && typeof target.connected === "boolean";
}

function isMinecraftTarget(target: PerkTarget): target is MinecraftTarget {
  return "health" in target && typeof target.health === "function";
}

/** Read from what the target already knows: status never sends anything to a game server. */
function healthOf(target: PerkTarget, minecraftServers: readonly string[]): TargetHealth[] {
  if (isDiscordTarget(target)) {
    return [
      target.connected
        ? { name: target.name, healthy: true, detail: "connected" }
        : { name: target.name, healthy: false, detail: "not connected to Discord: its actions wait (`perkbridge check` says why)" },
    ];
  }
  if (isMinecraftTarget(target)) {
    return minecraftServers.map((server): TargetHealth => {
      const name = `${target.name}:${server}`;
      const health = target.health(server);
      if (health === undefined || health.state === "unknown") return { name, healthy: true, detail: "not contacted yet" };
      if (health.state === "up") return { name, healthy: true, detail: health.version === undefined ? "up" : `up, ${health.version}` };
      return { name, healthy: false, detail: `${health.state}${health.reason === undefined ? "" : `: ${health.reason}`}` };
    });
  }
  return [{ name: target.name, healthy: true }];
}
