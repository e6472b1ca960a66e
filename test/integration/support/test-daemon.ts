import type { LoadedConfig } from "../../../src/daemon/config/load-config.js";
import { createDaemon, type Daemon } from "../../../src/daemon/create-daemon.js";
import { createLogger } from "../../../src/daemon/create-logger.js";
import { perkbridgeComponents, type PerkbridgeOverrides } from "../../../src/daemon/create-perkbridge.js";
import type { ReconcileEngine } from "../../../src/daemon/reconcile/reconcile-engine.js";

/** The environment the YAML of {@link paymentHubYaml} and {@link httpTargetYaml} refers to. */
export const TEST_ENV_NAMES = { apiKey: "PH_KEY", webhook: "PH_WEBHOOK", receiver: "RECV_SECRET" } as const;

/** `state`, `server` and `log` of a test config; secrets stay `${NAME}` references. */
export function baseYaml(stateDir: string, port: number | string = 0): string {
  return `state: { dir: ${JSON.stringify(stateDir)} }
server: { host: 127.0.0.1, port: ${port} }
log: { level: info, format: json }
`;
}

/** `sources.paymenthub` pointing at an emulator. */
export function paymentHubYaml(emulatorUrl: string): string {
  return `sources:
  paymenthub:
    base_url: ${emulatorUrl}
    api_key: \${${TEST_ENV_NAMES.apiKey}}
    webhook_secrets: ["\${${TEST_ENV_NAMES.webhook}}"]
    request_timeout: 2s
`;
}

/** `targets.http` with one endpoint `shop` at a receiver (a `targets:` line included). */
export function httpTargetYaml(receiverUrl: string): string {
  return `targets:
  http:
    endpoints:
      shop:
        url: ${JSON.stringify(receiverUrl)}
        secret: "\${${TEST_ENV_NAMES.receiver}}"
        timeout: 2s
`;
}

/**
 * Boots the real daemon in-process on a loaded config, with its JSON log lines collected and fast
 * retries; `onEngine` sees each engine (one per boot).
 */
export async function bootTestDaemon(
  loaded: LoadedConfig,
  logs: string[],
  overrides: PerkbridgeOverrides = {},
  onEngine: (engine: ReconcileEngine) => void = () => undefined,
): Promise<Daemon> {
  const destination = { write: (line: string) => void logs.push(line) };
  const logger = createLogger({ level: "info", format: "json", secrets: loaded.secrets, destination });
  return createDaemon(loaded.config, {
    secrets: loaded.secrets,
    logger,
    components: perkbridgeComponents(loaded, {
      retryDelay: () => 20,
      sweepOnStart: false,
      ...overrides,
      onEngine: (e) => {
        onEngine(e);
        overrides.onEngine?.(e);
      },
    }),
  });
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
