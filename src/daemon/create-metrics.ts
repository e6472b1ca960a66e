import { Registry, collectDefaultMetrics } from "prom-client";

/** The prefix of every metric perkbridge exposes. */
export const METRIC_PREFIX = "perkbridge_";

/**
 * One daemon's metrics. Capabilities register their counters and histograms on `registry`
 * (`new Counter({ name: \`${METRIC_PREFIX}…\`, registers: [metrics.registry] })`).
 */
export interface Metrics {
  readonly registry: Registry;
}

/**
 * Creates a registry of its own, never prom-client's global one, so two daemons in one process
 * (as in tests) never collide over a metric name, with Node's default process metrics on it.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return { registry };
}
