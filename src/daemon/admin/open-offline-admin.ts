import { join } from "node:path";
import type { Clock } from "../../core/ports.js";
import { createPaymentHubClient } from "../../sources/paymenthub/create-paymenthub-client.js";
import type { Config } from "../config/config-schema.js";
import { loadConfig, type Env } from "../config/load-config.js";
import { engineSettingsOf, recentRevocationsOf } from "../create-perkbridge.js";
import { createPaymentHubLookup } from "../paymenthub/create-paymenthub-lookup.js";
import { declareCollections, INTAKE_DIR } from "../declare-collections.js";
import { createInboxSettler } from "../intake/webhook-intake.js";
import { ReconcileEngine, type SourceLookup } from "../reconcile/reconcile-engine.js";
import { createStore } from "../store/create-store.js";
import type { AdminSession, OfflineAdminFactory, TargetHealth } from "./admin-api.js";
import { createEngineAdminApi } from "./create-engine-admin-api.js";

/** The logging calls the engine and the PaymentHub client make (a pino logger fits). */
export interface OfflineLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Options of {@link createOfflineAdminOpener}. */
export interface OfflineAdminOptions {
  /** For `${NAME}` in the config; default `process.env`. */
  readonly env?: Env;
  readonly clock?: Clock;
  /** Default: silent, so that the command's own output is all the operator sees. */
  readonly logger?: OfflineLogger;
}

const silent: OfflineLogger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/**
 * Serves the operator's commands from the state directory while the daemon is stopped: loads the
 * config, opens the store under its lock with the daemon's collections (so ERR_STATE_LOCKED while a
 * daemon holds it, ERR_STATE_LAYOUT if the layout differs) and builds an engine that starts no
 * target and no lane. `retry`, `confirm` and `sync` therefore change the state only: the actions
 * they queue run when the daemon next starts. `sync --member` still looks the member up at the source.
 */
export function createOfflineAdminOpener(options: OfflineAdminOptions = {}): OfflineAdminFactory {
  return async (configPath) => {
    const { config, plans } = await loadConfig(configPath, options.env ?? process.env);
    const clock = options.clock ?? { now: () => Date.now() };
    const logger = options.logger ?? silent;
    const store = createStore({ dir: config.state.dir, clock, ...(config.state.retention === undefined ? {} : { retentionMs: config.state.retention }) });
    const intake = createStore({ dir: join(config.state.dir, INTAKE_DIR), clock });
    const collections = declareCollections(store, intake);
    await store.open();
    try {
      await intake.open();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    let engine: ReconcileEngine;
    try {
      const sources = new Map<string, SourceLookup>();
      const ph = config.sources.paymenthub;
      if (ph) {
        const client = createPaymentHubClient({ baseUrl: ph.base_url, apiKey: ph.api_key, timeoutMs: ph.request_timeout, clock, logger });
        sources.set("paymenthub", createPaymentHubLookup({ client, clock, logger }));
      }
      engine = new ReconcileEngine({
        collections,
        store,
        settleInbox: createInboxSettler(collections.inbox, collections.seen, intake),
        clock,
        logger,
        plans,
        sources,
        // No target: the lanes find nothing to run, so whatever is queued waits for the daemon.
        targets: new Map(),
        ...engineSettingsOf(config),
      });
      const lanes = configuredLanes(config);
      const api = createEngineAdminApi({
        engine,
        clock,
        memberKeys: () => collections.members.keys(),
        targets: new Map(),
        lanes,
        sources: [...sources.keys()],
        health: () => offlineHealth(config),
        massRevoke: { config: engineSettingsOf(config).massRevoke, recent: () => recentRevocationsOf(collections.kv) },
      });
      let closing: Promise<void> | undefined;
      const session: AdminSession = {
        ...api,
        close() {
          closing ??= (async () => {
            try {
              await engine.stop();
            } finally {
              await intake.close().catch(() => undefined);
              await store.close();
            }
          })();
          return closing;
        },
      };
      return session;
    } catch (error) {
      await intake.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      throw error;
    }
  };
}

/** {@link createOfflineAdminOpener} with `process.env`, as `perkbridge` uses it. */
export const openOfflineAdmin: OfflineAdminFactory = (configPath) => createOfflineAdminOpener()(configPath);

/** The lanes the daemon would run: one per configured target kind. */
function configuredLanes(config: Config): string[] {
  const lanes: string[] = [];
  if (config.targets.discord) lanes.push("discord");
  if (Object.keys(config.targets.minecraft?.servers ?? {}).length > 0) lanes.push("minecraft");
  if (Object.keys(config.targets.http?.endpoints ?? {}).length > 0) lanes.push("http");
  return lanes;
}

/** With the daemon stopped nothing is connected; say so rather than guess. */
function offlineHealth(config: Config): TargetHealth[] {
  const names = [
    ...(config.targets.discord ? ["discord"] : []),
    ...Object.keys(config.targets.minecraft?.servers ?? {}).map((server) => `minecraft:${server}`),
    ...(Object.keys(config.targets.http?.endpoints ?? {}).length > 0 ? ["http"] : []),
  ];
  return names.map((name) => ({ name, healthy: false, detail: "not checked: the daemon is stopped (`perkbridge check` probes it)" }));
}
