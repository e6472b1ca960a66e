import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type LoadedConfig } from "../../src/daemon/config/load-config.js";
import type { Daemon } from "../../src/daemon/create-daemon.js";
import type { PerkbridgeOverrides } from "../../src/daemon/create-perkbridge.js";
import type { ReconcileEngine } from "../../src/daemon/reconcile/reconcile-engine.js";
import { createHttpReceiver, type HttpReceiver } from "../../src/sandbox/http-receiver/create-http-receiver.js";
import { baseYaml, bootTestDaemon, httpTargetYaml, paymentHubYaml, TEST_ENV_NAMES } from "./support/test-daemon.js";
import { createPaymentHubEmulator, type PaymentHubEmulator, type PaymentHubEmulatorOptions } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";

export const SECRETS = {
  apiKey: "ph_test_key_4f9d2c",
  webhook: "whsec_test_91b7aa",
  receiver: "recv_secret_5e1c",
} as const;

export interface Harness {
  readonly emulator: PaymentHubEmulator;
  readonly receiver: HttpReceiver;
  readonly stateDir: string;
  readonly loaded: LoadedConfig;
  daemon: Daemon;
  engine: ReconcileEngine;
  /** Stops the daemon and starts a new one on the same state directory. */
  restart(): Promise<void>;
  /** Waits until the engine is idle and every queued action has settled. */
  settle(): Promise<void>;
  close(): Promise<void>;
  /** Log lines the daemon wrote. */
  readonly logs: string[];
}

export interface HarnessOptions {
  /** Extra YAML appended under `plans:` etc.; default: one plan granting an http perk. */
  readonly plansYaml?: string;
  readonly policyYaml?: string;
  readonly emulator?: Partial<PaymentHubEmulatorOptions>;
  readonly overrides?: PerkbridgeOverrides;
}

const DEFAULT_PLANS = `
plans:
  plan_premium:
    perks:
      - http: { endpoint: shop }
  plan_basic:
    perks: []
`;

/** PaymentHub emulator + http receiver + the real daemon in-process, on loopback. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const stateDir = await mkdtemp(join(tmpdir(), "perkbridge-it-"));
  const receiver = await createHttpReceiver({ secret: SECRETS.receiver });
  const emulator = createPaymentHubEmulator({
    apiKey: SECRETS.apiKey,
    webhookSecret: SECRETS.webhook,
    webhookRetryScale: 0.01,
    ...options.emulator,
  });
  await emulator.start();
  const yaml = `${baseYaml(stateDir)}${paymentHubYaml(emulator.url)}${httpTargetYaml(receiver.url)}
${options.plansYaml ?? DEFAULT_PLANS}
${options.policyYaml ?? ""}
`;
  const loaded = parseConfig(
    yaml,
    { [TEST_ENV_NAMES.apiKey]: SECRETS.apiKey, [TEST_ENV_NAMES.webhook]: SECRETS.webhook, [TEST_ENV_NAMES.receiver]: SECRETS.receiver },
    "harness.yaml",
  );
  const logs: string[] = [];

  let engine: ReconcileEngine | undefined;
  const boot = async (): Promise<Daemon> => {
    const daemon = await bootTestDaemon(loaded, logs, options.overrides, (e) => (engine = e));
    emulator.setWebhookUrl(`${daemon.url}/webhooks/paymenthub`);
    return daemon;
  };

  const harness: Harness = {
    emulator,
    receiver,
    stateDir,
    loaded,
    logs,
    daemon: await boot(),
    engine: engine as unknown as ReconcileEngine,
    async restart() {
      await harness.daemon.stop();
      harness.daemon = await boot();
      harness.engine = engine as unknown as ReconcileEngine;
    },
    async settle() {
      for (let i = 0; i < 200; i++) {
        await emulator.settled();
        await harness.engine.idle();
        const open = [...harness.engine.queue.all()].some((r) => r.state === "queued" || r.state === "sending");
        if (!open && harness.engine.runner.inFlight("http") === 0) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error("the daemon did not settle within 2 s");
    },
    async close() {
      await harness.daemon.stop().catch(() => undefined);
      await emulator.close();
      await receiver.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  return harness;
}

export const premiumMember = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  email: `${id}@example.com`,
  name: id,
  plan_id: "plan_premium",
  status: "active",
  metadata: { discord_id: "123456789012345678" },
  ...extra,
});
