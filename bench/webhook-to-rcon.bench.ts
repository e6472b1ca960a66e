// Webhook → RCON on loopback, through the real daemon: a signed PaymentHub webhook is POSTed to
// the daemon, which plans, queues durably (fsync) and applies `lp user … parent add vip` on one
// emulated Minecraft server. Latency runs from the POST to the emulator receiving the command;
// throughput from scheduling N members at once to the last action settled.
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/daemon/config/load-config.js";
import { createDaemon, type Daemon } from "../src/daemon/create-daemon.js";
import { createLogger } from "../src/daemon/create-logger.js";
import { perkbridgeComponents } from "../src/daemon/create-perkbridge.js";
import type { ReconcileEngine } from "../src/daemon/reconcile/reconcile-engine.js";
import { createRconEmulator } from "../src/sandbox/minecraft/create-rcon-emulator.js";
import { createMinecraftWorld, type MinecraftWorld } from "../src/sandbox/minecraft/minecraft-world.js";
import { createPaymentHubEmulator } from "../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { mapMember } from "../src/sources/paymenthub/map-member.js";
import { signPayload } from "../src/sources/paymenthub/verify-signature.js";
import { percentile, type Bench, type BenchEntry } from "./lib.js";

// Overridable from the environment to look at how the figures scale with the queue's size.
const PURCHASES = Number(process.env["BENCH_PURCHASES"] ?? 500);
const RATE_PER_SECOND = Number(process.env["BENCH_RATE"] ?? 50);
const BULK = Number(process.env["BENCH_BULK"] ?? 1000);
const WARMUP = 25;
const SECRETS = { apiKey: "ph_bench_key", webhook: "whsec_bench", rcon: "rcon-bench-pass" };

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The emulated world, with the instant each `lp … parent add` reached it (the emulator runs commands as they arrive). */
function timedWorld(): { world: MinecraftWorld; received: Map<string, number> } {
  const inner = createMinecraftWorld({ groups: ["vip"] });
  const received = new Map<string, number>();
  const world: MinecraftWorld = {
    ...inner,
    execute(command) {
      const match = /^lp user (\S+) parent add /.exec(command);
      if (match?.[1] !== undefined && !received.has(match[1])) received.set(match[1], performance.now());
      return inner.execute(command);
    },
  };
  return { world, received };
}

/** A bare durable write of 1 KB on this disk: the floor under each of the pipeline's commits. */
async function fsyncFloor(dir: string, samples: number): Promise<number[]> {
  const out: number[] = [];
  const data = Buffer.alloc(1024, 1);
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const file = await open(join(dir, "fsync-probe"), "w");
    await file.write(data);
    await file.sync();
    await file.close();
    out.push(performance.now() - t0);
  }
  return out;
}

const bench: Bench = async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "perkbridge-bench-"));
  const emulator = createPaymentHubEmulator({
    apiKey: SECRETS.apiKey,
    webhookSecret: SECRETS.webhook,
    rateLimit: { perHour: 1_000_000, perMinute: 100_000 },
  });
  await emulator.start();
  const { world, received } = timedWorld();
  const rcon = await createRconEmulator({ password: SECRETS.rcon, world });
  let daemon: Daemon | undefined;
  try {
    const yaml = `
state: { dir: ${JSON.stringify(stateDir)} }
server: { port: 0 }
log: { level: warn, format: json }
sources:
  paymenthub:
    base_url: ${emulator.url}
    api_key: "\${PH_KEY}"
    webhook_secrets: ["\${PH_WEBHOOK}"]
    rate_limit: { per_hour: 1000000, per_minute: 100000 }
targets:
  minecraft:
    servers:
      survival:
        rcon: { host: 127.0.0.1, port: ${rcon.port}, password: "\${RCON_PASSWORD}" }
        list_interval: 0
plans:
  plan_premium:
    perks:
      - minecraft: { server: survival, group: vip }
`;
    const loaded = parseConfig(yaml, { PH_KEY: SECRETS.apiKey, PH_WEBHOOK: SECRETS.webhook, RCON_PASSWORD: SECRETS.rcon }, "bench.yaml");
    let engine: ReconcileEngine | undefined;
    const logger = createLogger({ level: "warn", format: "json", secrets: loaded.secrets, destination: { write: () => undefined } });
    daemon = await createDaemon(loaded.config, {
      secrets: loaded.secrets,
      logger,
      components: perkbridgeComponents(loaded, { onEngine: (e) => (engine = e) }),
    });
    if (!engine) throw new Error("the engine was not built");
    const url = `${daemon.url}/webhooks/paymenthub`;

    const wire = (i: number) =>
      emulator.addMember(
        { id: `mem_${i}`, email: `p${i}@example.com`, plan_id: "plan_premium", status: "active", metadata: { minecraft_uuid: uuid(i) } },
        { emit: false },
      );

    // Latency: purchases at a steady rate, each a member.created webhook carrying the member; the
    // first WARMUP (JIT, connection set-up) are not counted.
    const posted = new Map<string, number>();
    const acknowledged = new Map<string, number>();
    // Collected rather than thrown, so a failed POST is no unhandled rejection while others are still sent.
    const refused: string[] = [];
    const posts: Promise<void>[] = [];
    const total = WARMUP + PURCHASES;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE_PER_SECOND;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const body = JSON.stringify({ id: `evt_${i}`, type: "member.created", created: new Date().toISOString(), data: { member: wire(i) } });
      const signature = signPayload(body, SECRETS.webhook);
      const at = performance.now();
      posted.set(uuid(i), at);
      posts.push(
        fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-paymenthub-signature": signature }, body }).then(
          async (res) => {
            await res.arrayBuffer();
            acknowledged.set(uuid(i), performance.now() - at);
            if (res.status !== 202) refused.push(`webhook ${i} answered ${res.status}`);
          },
          (error: unknown) => void refused.push(`webhook ${i}: ${String(error)}`),
        ),
      );
    }
    await Promise.all(posts);
    if (refused.length > 0) throw new Error(refused.slice(0, 3).join("; "));
    const deadline = performance.now() + 30_000;
    while (received.size < total && performance.now() < deadline) await sleep(10);
    if (received.size < total) throw new Error(`only ${received.size} of ${total} commands arrived`);
    const measured = Array.from({ length: PURCHASES }, (_, k) => uuid(WARMUP + k));
    const latencies = measured.map((id) => (received.get(id) ?? Number.NaN) - (posted.get(id) ?? Number.NaN));
    const acks = measured.map((id) => acknowledged.get(id) ?? Number.NaN);

    // Throughput: N members scheduled at once (payload at hand, no lookups), until every action settled.
    const now = Date.now();
    const members = Array.from({ length: BULK }, (_, k) => {
      const i = total + k;
      return mapMember(wire(i), { source: "paymenthub", observedAt: now, statusSince: now }).member;
    });
    const bulkStart = performance.now();
    for (const member of members) engine.schedule(`paymenthub:${member.id}`, { cause: "bench", payload: member });
    await engine.idle();
    const settled = (): number => {
      let n = 0;
      for (const rec of engine?.queue.all() ?? []) if (rec.state === "done") n++;
      return n;
    };
    const bulkDeadline = performance.now() + 120_000;
    while (settled() < total + BULK && performance.now() < bulkDeadline) await sleep(5);
    const bulkMs = performance.now() - bulkStart;
    if (settled() < total + BULK) throw new Error(`only ${settled() - total} of ${BULK} bulk actions settled`);

    const floor = await fsyncFloor(stateDir, 50);
    const entries: BenchEntry[] = [
      {
        name: `webhook → rcon: grants applied, ${BULK} queued at once, 1 server`,
        value: Math.round(BULK / (bulkMs / 1000)),
        unit: "actions/s",
        better: "higher",
      },
      { name: `webhook → rcon: latency p50, ${PURCHASES} purchases at ${RATE_PER_SECOND}/s`, value: percentile(latencies, 50), unit: "ms", better: "lower" },
      {
        name: `webhook → rcon: latency p99, ${PURCHASES} purchases at ${RATE_PER_SECOND}/s`,
        value: percentile(latencies, 99),
        unit: "ms",
        target: "< 100 ms",
        better: "lower",
      },
      // Context for the latency: the webhook's 2xx waits for the inbox on disk, and each purchase
      // passes through three durable commits (inbox, planned action, settled action).
      { name: `webhook → rcon: webhook acknowledged (inbox durable) p99`, value: percentile(acks, 99), unit: "ms", better: "lower" },
      { name: "webhook → rcon: bare 1 KB write + fsync p50 on this disk", value: percentile(floor, 50), unit: "ms", better: "lower" },
    ];
    return entries;
  } finally {
    await daemon?.stop().catch(() => undefined);
    await rcon.close();
    await emulator.close();
    await rm(stateDir, { recursive: true, force: true });
  }
};

export default bench;
