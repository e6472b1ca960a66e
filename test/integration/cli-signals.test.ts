// Graceful stop of the real `perkbridge start` (issue #6): the first SIGTERM waits for the action
// in flight and exits 0; a second SIGTERM during that wait exits at once with 130 and leaves a
// state directory the next start opens. The stop is slow for a real reason: the http target's
// receiver holds its answer, and the engine waits for actions in flight before it stops.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { killAllPerkbridges, spawnPerkbridge, type PerkbridgeProcess } from "./fixtures/kill9-child-process.js";
import { baseYaml, paymentHubYaml, TEST_ENV_NAMES } from "./support/test-daemon.js";

const SECRETS = { apiKey: "ph_signals_key_5d2a", webhook: "whsec_signals_91c3", receiver: "recv_signals_7e40" } as const;
const ENV = { [TEST_ENV_NAMES.apiKey]: SECRETS.apiKey, [TEST_ENV_NAMES.webhook]: SECRETS.webhook, [TEST_ENV_NAMES.receiver]: SECRETS.receiver };

/** An http target receiver that keeps every request waiting until `release()`, then answers at once. */
interface HoldingReceiver {
  readonly url: string;
  /** Bodies received, in order. */
  readonly bodies: readonly { readonly id: string; readonly type: string }[];
  /** Requests answered so far. */
  answered(): number;
  /** Resolves once `n` requests have arrived. */
  arrived(n: number): Promise<void>;
  /** Answers the requests held (204) and every later one as it comes. */
  release(): void;
  close(): Promise<void>;
}

async function createHoldingReceiver(): Promise<HoldingReceiver> {
  const bodies: { id: string; type: string }[] = [];
  const held: ServerResponse[] = [];
  const waiters = new Set<() => void>();
  let released = false;
  let answered = 0;
  const answer = (res: ServerResponse): void => {
    answered++;
    res.writeHead(204).end();
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id: string; type: string });
      for (const wake of [...waiters]) wake();
      if (released) answer(res);
      else held.push(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/perks`,
    bodies,
    answered: () => answered,
    arrived(n) {
      return new Promise((resolve) => {
        const wake = (): void => {
          if (bodies.length < n) return;
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        wake();
      });
    },
    release() {
      released = true;
      for (const res of held.splice(0)) answer(res);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let dir: string;
let emulator: PaymentHubEmulator;
let receiver: HoldingReceiver;
let configPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "perkbridge-signals-"));
  receiver = await createHoldingReceiver();
  emulator = createPaymentHubEmulator({ apiKey: SECRETS.apiKey, webhookSecret: SECRETS.webhook });
  await emulator.start();
  // The sweep at start-up lists this member and grants the perk: that grant is the action in flight.
  emulator.addMember({ id: "mem_slow", email: "slow@example.com", plan_id: "plan_premium", status: "active", metadata: {} }, { emit: false });
  configPath = join(dir, "perkbridge.yaml");
  // A timeout far beyond the test's: only the receiver's answer (or a hard exit) ends the wait.
  await writeFile(
    configPath,
    `${baseYaml(join(dir, "state"))}${paymentHubYaml(emulator.url)}targets:
  http:
    endpoints:
      shop:
        url: ${JSON.stringify(receiver.url)}
        secret: "\${${TEST_ENV_NAMES.receiver}}"
        timeout: 10m
plans:
  plan_premium:
    perks:
      - http: { endpoint: shop }
`,
  );
});

afterEach(async () => {
  await killAllPerkbridges();
  await receiver.close();
  await emulator.close();
  await rm(dir, { recursive: true, force: true });
});

/** Starts `perkbridge start`, waits until it listens and its grant is held by the receiver. */
async function bootWithActionInFlight(): Promise<{ proc: PerkbridgeProcess; url: string }> {
  const proc = spawnPerkbridge(["start", "--config", configPath], { cwd: dir, env: ENV });
  const listening = await proc.waitForLog("listening");
  await receiver.arrived(1);
  return { proc, url: String(listening["url"]) };
}

describe("perkbridge start and stop signals", () => {
  it("on one SIGTERM refuses webhooks, waits for the action in flight, then exits 0", async () => {
    const { proc, url } = await bootWithActionInFlight();
    proc.child.kill("SIGTERM");
    await proc.waitForLog("stopping");

    // Still stopping: the listener answers, but refuses webhooks and is not ready.
    const webhook = await fetch(`${url}/webhooks/paymenthub`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(webhook.status).toBe(503);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    expect(proc.child.exitCode).toBeNull();
    expect(receiver.answered()).toBe(0);

    receiver.release();
    const { code } = await proc.exited;
    expect(code, proc.stderr()).toBe(0);
    expect(receiver.answered()).toBe(1);
    expect(proc.logs().map((e) => e.msg)).toContain("stopped");
    // A sweep ran, but stderr is a pipe here: no progress drawn, and stdout is JSON lines only.
    expect(proc.logs().map((e) => e.msg)).toContain("PaymentHub sweep complete");
    expect(proc.stderr()).toBe("");
    const lines = proc.stdout().split("\n").filter((line) => line !== "");
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
  }, 30_000);

  it("on a second SIGTERM during the stop exits at once with 130, and the next start takes over the state", async () => {
    const { proc } = await bootWithActionInFlight();
    proc.child.kill("SIGTERM");
    await proc.waitForLog("stopping");
    proc.child.kill("SIGTERM");

    // Exits while the receiver still holds the action's request (its timeout is 10 minutes).
    const { code, signal } = await proc.exited;
    expect(signal).toBeNull();
    expect(code).toBe(130);
    expect(receiver.answered()).toBe(0);
    expect(proc.stderr()).toBe("perkbridge: SIGTERM again, exiting without a clean stop\n");
    expect(proc.logs().map((e) => e.msg)).not.toContain("stopped");

    // The state directory is intact: the next start loads it, becomes ready and sends the grant
    // that was in flight again (it stayed queued), under the same action id.
    receiver.release();
    const next = spawnPerkbridge(["start", "--config", configPath], { cwd: dir, env: ENV });
    const listening = await next.waitForLog("listening");
    const ready = await fetch(`${String(listening["url"])}/readyz`);
    expect(ready.status).toBe(200);
    await receiver.arrived(2);
    expect(receiver.bodies.map((b) => b.type)).toEqual(["grant", "grant"]);
    expect(receiver.bodies[1]?.id).toBe(receiver.bodies[0]?.id);
    expect(await next.stop(), next.stderr()).toBe(0);
    expect(next.stderr()).toBe("");
  }, 30_000);

  it("exits 130 on SIGINT after SIGTERM as well", async () => {
    const { proc } = await bootWithActionInFlight();
    proc.child.kill("SIGTERM");
    await proc.waitForLog("stopping");
    proc.child.kill("SIGINT");
    expect((await proc.exited).code).toBe(130);
    expect(proc.stderr()).toBe("perkbridge: SIGINT again, exiting without a clean stop\n");
  }, 30_000);
});
