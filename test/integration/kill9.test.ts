// DESIGN.md invariant 6: "kill -9 at any instant loses nothing". The real `perkbridge start`
// runs as a child process, PaymentHub (emulated) sends a burst of signed webhooks, and the child
// is SIGKILLed at random moments and restarted on the same state directory. Events it could not
// take while it was down come back through the emulator's redelivery schedule.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHttpReceiver, type HttpReceiver } from "../../src/sandbox/http-receiver/create-http-receiver.js";
import { baseYaml, httpTargetYaml, paymentHubYaml } from "./support/test-daemon.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { signPayload } from "../../src/sources/paymenthub/verify-signature.js";
import { freePort, killAllPerkbridges, spawnPerkbridge, type LogEntry, type PerkbridgeProcess } from "./fixtures/kill9-child-process.js";
import { seededRandom } from "../support/seeded-random.js";

const SECRETS = { apiKey: "ph_kill9_key_7c1e", webhook: "whsec_kill9_2b8f", receiver: "recv_kill9_d04a" } as const;
const ENV = { PH_KEY: SECRETS.apiKey, PH_WEBHOOK: SECRETS.webhook, RECV_SECRET: SECRETS.receiver };

let dir: string;
let emulator: PaymentHubEmulator;
let receiver: HttpReceiver;
let port: number;
let configPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "perkbridge-kill9-"));
  receiver = await createHttpReceiver({ secret: SECRETS.receiver });
  // Redelivery after 10 ms, 50 ms, 250 ms, then every second for 30 s: a restart takes 1-5 s on a
  // busy machine, and an event must outlive the downtime, not the real schedule's hours.
  emulator = createPaymentHubEmulator({
    apiKey: SECRETS.apiKey,
    webhookSecret: SECRETS.webhook,
    webhookRetryDelaysMs: [10, 50, 250, ...Array.from({ length: 30 }, () => 1_000)],
    webhookTimeoutMs: 3_000,
  });
  await emulator.start();
  port = await freePort();
  emulator.setWebhookUrl(`http://127.0.0.1:${port}/webhooks/paymenthub`);
  configPath = join(dir, "perkbridge.yaml");
  await writeFile(
    configPath,
    `
${baseYaml(join(dir, "state"), port)}${paymentHubYaml(emulator.url)}${httpTargetYaml(receiver.url)}
plans:
  plan_premium:
    perks:
      - http: { endpoint: shop }
# A burst of cancellations is the point of this test, not something to hold for an operator.
policy:
  mass_revoke: { min: 1000 }
`,
  );
});

afterEach(async () => {
  await killAllPerkbridges();
  await emulator.close();
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
});

/** Starts the daemon and waits until it listens; returns the process and its "state loaded" line. */
async function boot(): Promise<{ proc: PerkbridgeProcess; loaded: LogEntry }> {
  const proc = spawnPerkbridge(["start", "--config", configPath], { cwd: dir, env: ENV });
  const loaded = await proc.waitForLog("state loaded");
  await proc.waitForLog("listening");
  return { proc, loaded };
}

const heldKey = (id: string): string => `member:paymenthub:${id}|event:`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds and the receiver has been quiet for a moment, or gives up. */
async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastCount = -1;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    if (receiver.received.length !== lastCount) {
      lastCount = receiver.received.length;
      quietSince = Date.now();
    }
    if (check() && Date.now() - quietSince >= 400) return;
    await sleep(25);
  }
}

describe("kill -9 of perkbridge start", () => {
  it("loses and doubles nothing across random kills during a burst of webhooks", async () => {
    const seed = Number(process.env["KILL9_SEED"] ?? Math.floor(Math.random() * 1e9));
    const rand = seededRandom(seed);
    const note = `KILL9_SEED=${seed}`;

    // 60 purchases; every third member cancels soon after, and every second of those buys again.
    const activations = new Map<string, number>();
    const cancellations = new Map<string, number>();
    const bump = (map: Map<string, number>, id: string): void => void map.set(id, (map.get(id) ?? 0) + 1);
    const id = (n: number): string => `mem_${String(n).padStart(2, "0")}`;
    const ops: (() => void)[] = [];
    for (let i = 0; i < 60; i++) {
      ops.push(() => {
        emulator.addMember({ id: id(i), email: `${id(i)}@example.com`, plan_id: "plan_premium", status: "active", metadata: {} });
        bump(activations, id(i));
      });
      if (i % 3 === 2) {
        ops.push(() => {
          emulator.cancelSubscription(id(i - 2), "requested");
          bump(cancellations, id(i - 2));
        });
      }
      if (i % 6 === 5 && i >= 11) {
        ops.push(() => {
          emulator.createSubscription(id(i - 11), { planId: "plan_premium" });
          bump(activations, id(i - 11));
        });
      }
    }

    // Six rounds: a burst of events in groups with short random gaps, a SIGKILL at a random
    // moment (during the burst or while its reconciles run), the rest of the burst sent while
    // the daemon is down, then a restart on the same state directory.
    const rounds = 6;
    const perRound = Math.ceil(ops.length / rounds);
    const burst = async (slice: readonly (() => void)[]): Promise<void> => {
      for (let i = 0; i < slice.length; ) {
        const group = 1 + Math.floor(rand() * 6);
        for (const op of slice.slice(i, i + group)) op();
        i += group;
        await sleep(Math.floor(rand() * 60));
      }
    };
    let { proc } = await boot();
    const restarts: LogEntry[] = [];
    for (let round = 0; round < rounds; round++) {
      const slice = ops.slice(round * perRound, (round + 1) * perRound);
      if (round === rounds - 1) {
        await burst(slice);
        break;
      }
      // The last event of each round always goes out while the daemon is dead, whatever the seed.
      const sending = burst(slice.slice(0, -1));
      await sleep(Math.floor(rand() * 300));
      await proc.kill9();
      await sending;
      slice.at(-1)?.();
      const next = await boot();
      proc = next.proc;
      restarts.push(next.loaded);
    }

    await emulator.settled();
    const expected = new Set(emulator.listMembers().filter((m) => m.status === "active").map((m) => heldKey(m.id)));
    const sameAsExpected = (): boolean => receiver.held.size === expected.size && [...expected].every((k) => receiver.held.has(k));
    await until(sameAsExpected, 20_000);

    // Every event reached the daemon in the end (a 2xx), some only after redelivery.
    expect(emulator.deliveries.filter((d) => !d.delivered).map((d) => d.event.id), note).toEqual([]);
    expect(emulator.deliveries.some((d) => d.attempts.some((a) => "error" in a)), `${note}: no event met a dead daemon`).toBe(true);

    // Nothing lost: the perks held are exactly those of the members active at the end.
    expect([...receiver.held].sort(), note).toEqual([...expected].sort());
    expect(expected.size, note).toBe(60 - 20 + 9);

    // Nothing doubled: no grant planned again after a restart, no revoke either.
    const applied = [...receiver.applied.values()];
    for (const [member, times] of activations) {
      const grants = applied.filter((e) => e.type === "grant" && e.subject === `member:paymenthub:${member}`).length;
      expect(grants, `${note}: grants applied to ${member}`).toBeLessThanOrEqual(times);
      const revokes = applied.filter((e) => e.type === "revoke" && e.subject === `member:paymenthub:${member}`).length;
      expect(revokes, `${note}: revokes applied to ${member}`).toBeLessThanOrEqual(cancellations.get(member) ?? 0);
    }

    // Each restart after a kill said it took over the dead process's lock.
    expect(restarts).toHaveLength(5);
    for (const loaded of restarts) expect(loaded["tookOverStaleLock"], note).toBeDefined();

    expect(await proc.stop(), proc.stderr()).toBe(0);
  }, 60_000);

  it("processes an event after a restart when the daemon is killed right after its 2xx", async () => {
    let { proc } = await boot();
    // The receiver refuses until the kill, so the grant can only come from the restarted daemon.
    receiver.failNext(1_000_000, 503);
    // The member exists at PaymentHub (the sweep at each start would otherwise confirm it gone).
    emulator.addMember({ id: "mem_focus", email: "focus@example.com", plan_id: "plan_premium", status: "active", metadata: {} }, { emit: false });
    const body = JSON.stringify({
      id: "evt_kill9_focus",
      type: "member.created",
      created: new Date().toISOString(),
      data: { member: { id: "mem_focus", email: "focus@example.com", name: null, plan_id: "plan_premium", status: "active", metadata: {} } },
    });
    const res = await fetch(`http://127.0.0.1:${port}/webhooks/paymenthub`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-paymenthub-signature": signPayload(body, SECRETS.webhook) },
      body,
    });
    expect(res.status).toBe(202);
    await proc.kill9();
    receiver.failNext(0, 503);
    expect(receiver.held.size).toBe(0);

    const next = await boot();
    proc = next.proc;
    expect(next.loaded["tookOverStaleLock"]).toBeDefined();
    await until(() => receiver.held.has(heldKey("mem_focus")), 10_000);
    expect([...receiver.held]).toEqual([heldKey("mem_focus")]);
    expect([...receiver.applied.values()].filter((e) => e.type === "grant")).toHaveLength(1);
    expect(await proc.stop(), proc.stderr()).toBe(0);
  });
});
