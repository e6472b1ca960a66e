import type { DestinationStream } from "pino";
import { PerkbridgeError } from "../core/errors.js";
import type { Clock } from "../core/ports.js";
import { createHttpServer, type HttpServer } from "./create-http-server.js";
import { createLogger, type LogFormat, type Logger } from "./create-logger.js";
import { createMetrics, type Metrics } from "./create-metrics.js";
import { createStore, type Store, type StoreOptions } from "./store/create-store.js";

/** The part of the configuration the daemon skeleton reads; the full validated config satisfies it. */
export interface DaemonConfig {
  readonly server: { readonly host: string; readonly port: number; readonly body_limit?: number };
  /** `retention` in ms: how long processed event ids and done actions are kept. */
  readonly state: { readonly dir: string; readonly retention?: number };
  readonly log: { readonly level: string; readonly format: LogFormat };
}

/** Anything with a lifecycle the daemon runs: started in list order, stopped in reverse. */
export interface Component {
  /** For logs: `store`, `http`, `paymenthub-poller`, `discord`. */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Makes the state store; `createStore` unless a test hands in its own. */
export type StoreFactory = (options: StoreOptions) => Store;

/** What a capability gets to build itself: shared services, and the listener to register routes on. */
export interface DaemonContext {
  readonly config: DaemonConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly http: HttpServer;
  /** Not open yet while factories run: declare collections then; it opens before any component starts. */
  readonly store: Store;
  readonly clock: Clock;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Overrides of external base URLs by name (`paymenthub`, `discord`), for emulators and staging. */
  readonly baseUrls: Readonly<Record<string, string>>;
}

/** Builds one capability (source, target, scheduler, worker). Called before anything starts. */
export type ComponentFactory = (context: DaemonContext) => Component | Promise<Component>;

/** Options of {@link createDaemon}; everything but `secrets` is an override for tests and the demo. */
export interface DaemonOptions {
  /** Secret values from the config, redacted from every log line. */
  readonly secrets?: readonly string[];
  readonly logger?: Logger;
  /** Where the built logger writes, when no `logger` is given. */
  readonly logDestination?: DestinationStream;
  readonly clock?: Clock;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly host?: string;
  readonly port?: number;
  readonly baseUrls?: Readonly<Record<string, string>>;
  readonly createStore?: StoreFactory;
  /** Capabilities, started in this order after the store and the listener. */
  readonly components?: readonly ComponentFactory[];
}

/** A running daemon. */
export interface Daemon {
  /** The public listener's URL, with the port actually bound. */
  readonly url: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Everything started, in start order. */
  readonly components: readonly Component[];
  /**
   * Refuses new webhooks, lets requests in flight finish, then stops every component in reverse
   * order. Idempotent: later calls return the same promise. Rejects with ERR_DAEMON_STOP if a
   * component failed to stop (after stopping all the others).
   */
  stop(): Promise<void>;
}

const systemClock: Clock = { now: () => Date.now() };

/**
 * The composition root: builds the logger, metrics, store, HTTP listener and every capability, and
 * starts them in that order. If one fails to start, those already started are stopped again and
 * the error is rethrown, so a failed start leaves nothing running.
 */
export async function createDaemon(config: DaemonConfig, options: DaemonOptions = {}): Promise<Daemon> {
  const logger =
    options.logger ??
    createLogger({
      level: config.log.level,
      format: config.log.format,
      secrets: options.secrets ?? [],
      ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
    });
  const metrics = createMetrics();
  let state: "starting" | "running" | "stopping" = "starting";
  const http = createHttpServer({
    host: options.host ?? config.server.host,
    port: options.port ?? config.server.port,
    logger,
    registry: metrics.registry,
    ...(config.server.body_limit === undefined ? {} : { bodyLimitBytes: config.server.body_limit }),
    ready: () => (state === "running" ? { ready: true } : { ready: false, reason: state }),
  });
  const clock = options.clock ?? systemClock;
  const store = (options.createStore ?? createStore)({
    dir: config.state.dir,
    clock,
    ...(config.state.retention === undefined ? {} : { retentionMs: config.state.retention }),
  });
  const context: DaemonContext = {
    config,
    logger,
    metrics,
    http,
    store,
    clock,
    env: options.env ?? process.env,
    baseUrls: options.baseUrls ?? {},
  };

  const planned: Component[] = [
    {
      name: "store",
      async start() {
        logger.info({ dir: store.dir, ...(await store.open()) }, "state loaded");
      },
      stop: () => store.close(),
    },
    { name: "http", start: () => http.start(), stop: () => http.stop() },
  ];
  // Built before anything starts, so their routes exist by the time the listener is up.
  for (const factory of options.components ?? []) planned.push(await factory(context));

  const started: Component[] = [];
  const stopAll = async (): Promise<void> => {
    const failed: string[] = [];
    for (const component of [...started].reverse()) {
      try {
        await component.stop();
        logger.debug({ component: component.name }, "stopped");
      } catch (error) {
        failed.push(component.name);
        logger.error({ err: error, component: component.name }, "component failed to stop");
      }
    }
    if (failed.length > 0) {
      throw new PerkbridgeError("ERR_DAEMON_STOP", `failed to stop: ${failed.join(", ")} (see the log)`);
    }
  };

  for (const component of planned) {
    try {
      await component.start();
    } catch (error) {
      logger.error({ err: error, component: component.name }, "component failed to start");
      state = "stopping";
      await stopAll().catch(() => undefined);
      logger.flush();
      throw error;
    }
    started.push(component);
  }
  state = "running";
  logger.info({ url: http.url }, "listening");

  let stopping: Promise<void> | undefined;
  return {
    url: http.url,
    logger,
    metrics,
    components: started,
    stop() {
      stopping ??= (async () => {
        state = "stopping";
        logger.info("stopping");
        await http.drain();
        try {
          await stopAll();
        } finally {
          logger.info("stopped");
          logger.flush();
        }
      })();
      return stopping;
    },
  };
}
