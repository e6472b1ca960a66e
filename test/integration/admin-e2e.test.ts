import { readdir, readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommanderError } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import type { CliIo } from "../../src/cli/cli-io.js";
import { createProgram } from "../../src/cli/create-program.js";
import type { Terminal } from "../../src/cli/progress.js";
import type { AdminCommandDeps } from "../../src/cli/status-command.js";
import { createOfflineAdminOpener } from "../../src/daemon/admin/open-offline-admin.js";
import { loadConfig } from "../../src/daemon/config/load-config.js";
import { createDaemon, type Daemon } from "../../src/daemon/create-daemon.js";
import { createLogger } from "../../src/daemon/create-logger.js";
import { perkbridgeComponents } from "../../src/daemon/create-perkbridge.js";
import { baseYaml, httpTargetYaml, paymentHubYaml } from "./support/test-daemon.js";
import { declareCollections, INTAKE_DIR } from "../../src/daemon/declare-collections.js";
import { createStore } from "../../src/daemon/store/create-store.js";
import type { ReconcileEngine } from "../../src/daemon/reconcile/reconcile-engine.js";
import { createHttpReceiver, type HttpReceiver } from "../../src/sandbox/http-receiver/create-http-receiver.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { premiumMember, SECRETS } from "./harness.js";

// The real daemon in-process with its admin channel on a socket in the temp state directory, and the
// real CLI run in-process against it (or, with the daemon stopped, against the state directory).

const ENV = { PH_KEY: SECRETS.apiKey, PH_WEBHOOK: SECRETS.webhook, RECV_SECRET: SECRETS.receiver };

const PLANS = `
plans:
  plan_premium:
    perks:
      - http: { endpoint: shop }
  plan_basic:
    perks: []
`;

/** plan_basic now grants the same perk: members already stored have something to sync. */
const PLANS_BASIC_GRANTS = `
plans:
  plan_premium:
    perks:
      - http: { endpoint: shop }
  plan_basic:
    perks:
      - http: { endpoint: shop }
`;

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

interface AdminHarness {
  readonly stateDir: string;
  readonly configPath: string;
  readonly emulator: PaymentHubEmulator;
  readonly receiver: HttpReceiver;
  readonly logs: string[];
  engine(): ReconcileEngine;
  /** Writes the config file (plans and policy) and starts the daemon on it. */
  start(plansYaml?: string): Promise<void>;
  stop(): Promise<void>;
  settle(): Promise<void>;
  cli(args: readonly string[], deps?: Partial<AdminCommandDeps>): Promise<CliRun>;
  close(): Promise<void>;
}

async function startAdminHarness(options: { policyYaml?: string } = {}): Promise<AdminHarness> {
  const dir = await mkdtemp(join(tmpdir(), "pb-e2e-"));
  const stateDir = join(dir, "state");
  const configPath = join(dir, "perkbridge.yaml");
  const receiver = await createHttpReceiver({ secret: SECRETS.receiver });
  const emulator = createPaymentHubEmulator({ apiKey: SECRETS.apiKey, webhookSecret: SECRETS.webhook, webhookRetryScale: 0.01 });
  await emulator.start();
  const logs: string[] = [];
  let daemon: Daemon | undefined;
  let engine: ReconcileEngine | undefined;

  const harness: AdminHarness = {
    stateDir,
    configPath,
    emulator,
    receiver,
    logs,
    engine() {
      if (engine === undefined) throw new Error("the daemon is not running");
      return engine;
    },
    async start(plansYaml = PLANS) {
      await writeFile(
        configPath,
        `${baseYaml(stateDir)}${paymentHubYaml(emulator.url)}${httpTargetYaml(receiver.url)}
${plansYaml}
${options.policyYaml ?? ""}
`,
      );
      const loaded = await loadConfig(configPath, ENV);
      const logger = createLogger({ level: "info", format: "json", secrets: loaded.secrets, destination: { write: (line: string) => void logs.push(line) } });
      daemon = await createDaemon(loaded.config, {
        secrets: loaded.secrets,
        logger,
        components: perkbridgeComponents(loaded, { retryDelay: () => 20, sweepOnStart: false, onEngine: (e) => (engine = e) }),
      });
      emulator.setWebhookUrl(`${daemon.url}/webhooks/paymenthub`);
    },
    async stop() {
      await daemon?.stop();
      daemon = undefined;
      engine = undefined;
      emulator.setWebhookUrl(undefined);
    },
    async settle() {
      for (let i = 0; i < 200; i++) {
        await emulator.settled();
        const e = harness.engine();
        await e.idle();
        const open = [...e.queue.all()].some((r) => r.state === "queued" || r.state === "sending");
        if (!open && e.runner.inFlight("http") === 0) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error("the daemon did not settle within 2 s");
    },
    async cli(args, deps = {}) {
      let stdout = "";
      let stderr = "";
      const io: CliIo = {
        stdout: (text) => void (stdout += text),
        stderr: (text) => void (stderr += text),
        env: ENV,
        onStopSignal: () => () => undefined,
        // Not redacted here, so that a secret in any message would show up in the assertions.
        redactSecrets: () => undefined,
      };
      let code = 0;
      const program = createProgram(io, (c) => (code = c), {
        terminal: fakeTerminal(),
        clock: { now: () => Date.now() },
        openOfflineAdmin: createOfflineAdminOpener({ env: ENV }),
        ...deps,
      });
      try {
        await program.parseAsync(["node", "perkbridge", ...args, "--config", configPath]);
      } catch (error) {
        if (!(error instanceof CommanderError)) throw error;
        code = error.exitCode === 0 ? 0 : 2;
      }
      return { code, stdout, stderr };
    },
    async close() {
      await harness.stop().catch(() => undefined);
      await emulator.close();
      await receiver.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

function fakeTerminal(): Terminal {
  return { stderrIsTTY: false, stdinIsTTY: false, readLine: async () => undefined };
}

/** Every state file's content, by path: what "changes nothing" compares. */
async function stateFiles(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path, await readFile(path, "utf8"));
  }
  return files;
}

const grantsFor = (h: AdminHarness, id: string) => h.receiver.received.filter((e) => e.subject === `member:paymenthub:${id}` && e.type === "grant");

let h: AdminHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("perkbridge status | retry through the running daemon", () => {
  it("status shows a parked action with its reason and fix; retry re-queues it and it succeeds once the receiver is fixed", async () => {
    h = await startAdminHarness();
    await h.start();
    h.receiver.failNext(1, 400);
    h.emulator.addMember(premiumMember("mem_p"));
    await h.settle();
    expect(grantsFor(h, "mem_p")).toHaveLength(0);

    const status = await h.cli(["status"]);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Parked \(1\): fix the cause/);
    expect(status.stdout).toContain("endpoint shop answered HTTP 400");
    expect(status.stdout).toContain("accepts perkbridge events");
    expect(status.stdout).toContain("member:paymenthub:mem_p");
    expect(status.stdout).toContain("http event to endpoint shop");
    expect(status.stdout).toMatch(/ {2}http +0 +0 +1 +0\n/);
    expect(status.stdout).toMatch(/✓ +http/);
    expect(status.stdout).not.toContain(SECRETS.receiver);

    const retry = await h.cli(["retry", "--target", "http"]);
    expect(retry).toEqual({ code: 0, stdout: "Re-queued 1 parked action.\n", stderr: "" });
    await h.settle();
    expect(grantsFor(h, "mem_p")).toHaveLength(1);
    expect(h.receiver.held.has("member:paymenthub:mem_p|event:")).toBe(true);

    const after = await h.cli(["status"]);
    expect(after.stdout).toContain("Parked\n  nothing parked\n");
    expect((await h.cli(["retry"])).stdout).toBe("No parked actions matched: nothing re-queued.\n");
  });
});

describe("perkbridge confirm", () => {
  it("lists revocations held by the mass-revoke guard; confirm --yes releases them and they execute", async () => {
    h = await startAdminHarness({ policyYaml: "policy:\n  mass_revoke: { min: 1, share: 0.01, window: 10m }\n" });
    await h.start();
    for (const id of ["mem_a", "mem_b", "mem_c"]) h.emulator.addMember(premiumMember(id));
    await h.settle();
    expect(h.receiver.held.size).toBe(3);

    for (const id of ["mem_a", "mem_b", "mem_c"]) h.emulator.cancelSubscription(id, "requested");
    await h.settle();
    // One revocation fits the window; the guard holds the rest.
    expect(h.receiver.held.size).toBe(2);
    const status = await h.cli(["status"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Held revocations \(2\): review, then run `perkbridge confirm`/);
    expect(status.stdout).toContain("held by the mass-revoke guard");
    const heldIds = h.engine().held().map((x) => x.action.id);
    for (const id of heldIds) expect(status.stdout).toContain(id);

    const confirm = await h.cli(["confirm", "--yes"]);
    expect(confirm.stderr).toBe("");
    expect(confirm.code).toBe(0);
    expect(confirm.stdout).toContain("Released 2 revocations.");
    await h.settle();
    expect(h.receiver.held.size).toBe(0);
    expect((await h.cli(["status"])).stdout).toContain("Held revocations\n  none held\n");
  });
});

describe("perkbridge sync", () => {
  /** Two basic members stored while plan_basic granted nothing, then the daemon restarted with plan_basic granting a perk. */
  async function withPlanChange(): Promise<AdminHarness> {
    const harness = await startAdminHarness();
    await harness.start();
    harness.emulator.addMember(premiumMember("mem_b1", { plan_id: "plan_basic" }));
    harness.emulator.addMember(premiumMember("mem_b2", { plan_id: "plan_basic" }));
    await harness.settle();
    expect(harness.receiver.received).toHaveLength(0);
    await harness.stop();
    await harness.start(PLANS_BASIC_GRANTS);
    await harness.settle();
    return harness;
  }

  it("--dry-run prints the plan and changes nothing: no state file, no receiver call", async () => {
    h = await withPlanChange();
    const before = await stateFiles(h.stateDir);
    const calls = h.emulator.calls.length;

    const dry = await h.cli(["sync", "--dry-run"]);
    expect(dry.stderr).toBe("");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^ACTION +SUBJECT +PERK +MEMBERS +REASON\n/);
    expect(dry.stdout).toMatch(/grant +member:paymenthub:mem_b1 +http event to endpoint shop +paymenthub:mem_b1/);
    expect(dry.stdout).toMatch(/grant +member:paymenthub:mem_b2 +http event to endpoint shop +paymenthub:mem_b2/);
    expect(dry.stdout).toContain("Dry run over 2 members: would queue 2 grants and 0 revokes. Nothing was changed.\n");

    const one = await h.cli(["sync", "--dry-run", "--member", "paymenthub:mem_b2"]);
    expect(one.stdout).not.toContain("mem_b1");
    expect(one.stdout).toContain("Dry run over 1 member: would queue 1 grant and 0 revokes.");

    await h.settle();
    expect(h.receiver.received).toHaveLength(0);
    expect(h.emulator.calls.length).toBe(calls);
    expect([...h.engine().queue.all()].filter((r) => r.action.subject.includes("mem_b"))).toEqual([]);
    expect(await stateFiles(h.stateDir)).toEqual(before);
  });

  it("--member reconciles that member only (looked up at the source), then a full sync does the rest", async () => {
    h = await withPlanChange();
    const one = await h.cli(["sync", "--member", "paymenthub:mem_b1"]);
    expect(one.stderr).toBe("");
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/grant +member:paymenthub:mem_b1 +http event to endpoint shop/);
    expect(one.stdout).toContain("Synced 1 member: queued 1 grant and 0 revokes.\n");
    expect(h.emulator.calls.some((c) => c.method === "GET" && c.path.endsWith("/members/mem_b1"))).toBe(true);
    await h.settle();
    expect(grantsFor(h, "mem_b1")).toHaveLength(1);
    expect(grantsFor(h, "mem_b2")).toHaveLength(0);

    const all = await h.cli(["sync"]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain("Synced 2 members: queued 1 grant and 0 revokes.\n");
    expect(all.stdout).not.toMatch(/grant +member:paymenthub:mem_b1/);
    await h.settle();
    expect(grantsFor(h, "mem_b2")).toHaveLength(1);
    expect(grantsFor(h, "mem_b1")).toHaveLength(1);

    // Level-triggered: nothing left to do.
    expect((await h.cli(["sync"])).stdout).toBe("Synced 2 members: nothing to do.\n");

    // On a terminal, the listing at PaymentHub and then the reconcile each show their progress.
    const shown = await h.cli(["sync"], { terminal: { stderrIsTTY: true, stdinIsTTY: false, readLine: async () => undefined } });
    expect(shown.code).toBe(0);
    const listing = shown.stderr.indexOf("syncing: 2/2 (100%), listing PaymentHub members");
    const reconciling = shown.stderr.indexOf("syncing: 2/2 (100%), reconciling");
    expect(listing).toBeGreaterThanOrEqual(0);
    expect(reconciling).toBeGreaterThan(listing);
  });

  it("--dry-run tells which revocations the mass-revoke guard would hold, and the real sync then holds those", async () => {
    h = await startAdminHarness({ policyYaml: "policy:\n  mass_revoke: { min: 1, share: 0.01, window: 10m }\n" });
    await h.start();
    for (const id of ["mem_x", "mem_y", "mem_z"]) h.emulator.addMember(premiumMember(id));
    await h.settle();
    await h.stop();
    // Cancellations the daemon stored but never reconciled, written through the daemon's own layout.
    const store = createStore({ dir: h.stateDir });
    const { members } = declareCollections(store, createStore({ dir: join(h.stateDir, INTAKE_DIR) }));
    await store.open();
    for (const [key, member] of [...members.entries()]) members.set(key, { ...member, status: "canceled" });
    await store.close();
    // The platform agrees (a full sync lists it again), but sent no webhook.
    for (const id of ["mem_x", "mem_y", "mem_z"]) h.emulator.cancelSubscription(id, "test", { emit: false });
    await h.start();

    const dry = await h.cli(["sync", "--dry-run"]);
    expect(dry.stdout).toContain("Dry run over 3 members: would queue 0 grants and 1 revoke; 2 revocations would be held for `perkbridge confirm`.");
    expect(dry.stdout.match(/^revoke +member:paymenthub:mem_/gm)).toHaveLength(1);
    expect(h.engine().held()).toHaveLength(0);

    const real = await h.cli(["sync"]);
    expect(real.code).toBe(0);
    expect(real.stdout).toContain("Synced 3 members: queued 0 grants and 1 revoke; 2 revocations held, see `perkbridge confirm`.");
    await h.settle();
    expect(h.engine().held()).toHaveLength(2);
    expect(h.receiver.held.size).toBe(2);
  });

  it("refuses a member key it cannot use, naming the problem", async () => {
    h = await startAdminHarness();
    await h.start();
    const bad = await h.cli(["sync", "--member", "mem_1"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("not a member key");
    const unknown = await h.cli(["sync", "--dry-run", "--member", "paymenthub:nobody"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no member paymenthub:nobody is known");
    const source = await h.cli(["sync", "--member", "paymentkit:m1"]);
    expect(source.stderr).toContain('source "paymentkit", which is not configured');
  });
});

describe("with the daemon stopped", () => {
  it("status opens the state directory itself; retry changes the state only, and the daemon runs it on its next start", async () => {
    h = await startAdminHarness();
    await h.start();
    h.receiver.failNext(1, 400);
    h.emulator.addMember(premiumMember("mem_o"));
    await h.settle();
    await h.stop();

    const status = await h.cli(["status"]);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Parked \(1\)/);
    expect(status.stdout).toContain("endpoint shop answered HTTP 400");
    expect(status.stdout).toMatch(/✗ +http +not checked: the daemon is stopped/);

    const retry = await h.cli(["retry"]);
    expect(retry).toEqual({ code: 0, stdout: "Re-queued 1 parked action.\n", stderr: "" });
    expect(h.receiver.received).toHaveLength(0);
    const queued = await h.cli(["status"]);
    expect(queued.stdout).toMatch(/ {2}http +1 +0 +0 +0\n/);
    expect(queued.stdout).toContain("nothing parked");

    await h.start();
    await h.settle();
    expect(grantsFor(h, "mem_o")).toHaveLength(1);
  });

  it("says so clearly when a live daemon holds the state directory but does not answer on its socket", async () => {
    h = await startAdminHarness();
    await h.start();
    await rm(join(h.stateDir, "admin.sock"));
    const r = await h.cli(["status"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`the daemon (pid ${process.pid}) holds the state directory but does not answer on its admin socket`);
  });
});
