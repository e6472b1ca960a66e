// Webhook → Discord role on loopback, through the real daemon and the real discord.js client: a
// signed PaymentHub `member.created` webhook is POSTed to the daemon, which stores it (fsync),
// plans, queues the grant durably (fsync) and has discord.js fetch the member and PUT the role on
// the emulated Discord. Latency runs from the moment the sender POSTs the webhook (so it includes
// the webhook's own round trip) to the moment the Discord emulator receives the role PUT.
// Purchases arrive at a steady rate; the PaymentHub emulator's limits and perkbridge's own
// PaymentHub budget are raised (and the webhooks carry the member, so no lookup is needed), and
// the Discord emulator sends no rate-limit headers, so the figure measures perkbridge. discord.js
// keeps its own client-side limit of 50 requests/s, as it does against Discord.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/daemon/config/load-config.js";
import { createDaemon, type Daemon } from "../src/daemon/create-daemon.js";
import { createLogger } from "../src/daemon/create-logger.js";
import { perkbridgeComponents } from "../src/daemon/create-perkbridge.js";
import { createDiscordEmulator } from "../src/sandbox/discord/create-discord-emulator.js";
import { createPaymentHubEmulator } from "../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { signPayload } from "../src/sources/paymenthub/verify-signature.js";
import { percentile, type Bench, type BenchEntry } from "./lib.js";

// Overridable from the environment for a quick run.
const PURCHASES = Number(process.env["BENCH_PURCHASES"] ?? 1000);
const RATE_PER_SECOND = Number(process.env["BENCH_RATE"] ?? 20);
/** What a Tebex-style store waits at least before a purchase reaches the game: its poll of 60 s or more. */
const POLL_BASELINE_MS = 60_000;
const SECRETS = { apiKey: "ph_bench_key", webhook: "whsec_bench", discord: "discord-bench-token" };
const GUILD = "400000000000000100";
const ROLE = { premium: "400000000000000302", bot: "400000000000000310" };
const MANAGE_ROLES = (1n << 28n).toString();

const userId = (i: number): string => `4000000000${String(100000 + i).padStart(8, "0")}`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Epoch ms with sub-millisecond precision: the clock the Discord emulator stamps its calls with. */
const preciseNow = (): number => performance.timeOrigin + performance.now();

const bench: Bench = async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "perkbridge-bench-role-"));
  const paymenthub = createPaymentHubEmulator({ apiKey: SECRETS.apiKey, webhookSecret: SECRETS.webhook, rateLimit: { perHour: 1_000_000, perMinute: 100_000 } });
  await paymenthub.start();
  const discord = createDiscordEmulator({
    botToken: SECRETS.discord,
    guilds: [
      {
        id: GUILD,
        name: "Bench",
        ownerId: "400000000000000900",
        roles: [
          { id: ROLE.premium, name: "Premium", position: 1, permissions: "0" },
          { id: ROLE.bot, name: "perkbridge", position: 2, permissions: MANAGE_ROLES },
        ],
        members: Array.from({ length: PURCHASES }, (_, i) => ({ user: { id: userId(i), username: `player${i}` }, roles: [] })),
        botMemberRoles: [ROLE.bot],
      },
    ],
  });
  await discord.start();
  let daemon: Daemon | undefined;
  try {
    const yaml = `
state: { dir: ${JSON.stringify(stateDir)} }
server: { port: 0 }
log: { level: warn, format: json }
sources:
  paymenthub:
    base_url: ${paymenthub.url}
    api_key: "\${PH_KEY}"
    webhook_secrets: ["\${PH_WEBHOOK}"]
    rate_limit: { per_hour: 1000000, per_minute: 100000 }
targets:
  discord:
    token: "\${DISCORD_TOKEN}"
    api_base: ${discord.url}/api
    guilds:
      - { id: "${GUILD}", enforce: restore }
plans:
  plan_premium:
    perks:
      - discord: { guild: "${GUILD}", role: "${ROLE.premium}" }
`;
    const loaded = parseConfig(yaml, { PH_KEY: SECRETS.apiKey, PH_WEBHOOK: SECRETS.webhook, DISCORD_TOKEN: SECRETS.discord }, "bench.yaml");
    const logger = createLogger({ level: "warn", format: "json", secrets: loaded.secrets, destination: { write: () => undefined } });
    daemon = await createDaemon(loaded.config, { secrets: loaded.secrets, logger, components: perkbridgeComponents(loaded) });
    const url = `${daemon.url}/webhooks/paymenthub`;

    const posted = new Map<string, number>();
    const posts: Promise<void>[] = [];
    const start = performance.now();
    for (let i = 0; i < PURCHASES; i++) {
      const due = start + (i * 1000) / RATE_PER_SECOND;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const member = paymenthub.addMember(
        { id: `mem_${i}`, email: `p${i}@example.com`, plan_id: "plan_premium", status: "active", metadata: { discord_id: userId(i) } },
        { emit: false },
      );
      const body = JSON.stringify({ id: `evt_${i}`, type: "member.created", created: new Date().toISOString(), data: { member } });
      const signature = signPayload(body, SECRETS.webhook);
      posted.set(userId(i), preciseNow());
      posts.push(
        fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-paymenthub-signature": signature }, body }).then(async (res) => {
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`webhook ${i} answered ${res.status}`);
        }),
      );
    }
    await Promise.all(posts);

    const received = new Map<string, number>();
    const rolePut = new RegExp(`^/guilds/${GUILD}/members/(\\d+)/roles/${ROLE.premium}$`);
    const deadline = performance.now() + 30_000;
    for (;;) {
      for (const call of discord.calls) {
        const user = call.method === "PUT" && call.status === 204 ? rolePut.exec(call.path)?.[1] : undefined;
        if (user !== undefined && !received.has(user)) received.set(user, call.at);
      }
      if (received.size >= PURCHASES || performance.now() > deadline) break;
      await sleep(20);
    }
    if (received.size < PURCHASES) throw new Error(`only ${received.size} of ${PURCHASES} role PUTs arrived`);
    const latencies = [...posted].map(([user, at]) => (received.get(user) ?? Number.NaN) - at);

    const entries: BenchEntry[] = [
      { name: `webhook POST → role PUT at Discord, p50 (${PURCHASES} purchases at ${RATE_PER_SECOND}/s, durable)`, value: round(percentile(latencies, 50)), unit: "ms", better: "lower", baseline: POLL_BASELINE_MS },
      {
        name: `webhook POST → role PUT at Discord, p99 (${PURCHASES} purchases at ${RATE_PER_SECOND}/s, durable)`,
        value: round(percentile(latencies, 99)),
        unit: "ms",
        target: "< 50 ms",
        better: "lower",
        baseline: POLL_BASELINE_MS,
      },
      { name: "Tebex-style delivery: waits for a store poll of 60 s or more (baseline)", value: POLL_BASELINE_MS, unit: "ms", better: "lower" },
    ];
    return entries;
  } finally {
    await daemon?.stop().catch(() => undefined);
    await discord.close();
    await paymenthub.close();
    await rm(stateDir, { recursive: true, force: true });
  }
};

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export default bench;
