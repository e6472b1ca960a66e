// Start-up time and resident memory of `perkbridge start` with 100k members and their ledger in
// state (the issue: "RSS < 200 MB and start-up < 2 s at 100k members"). The daemon runs as a
// child process, so the RSS is its own; start-up is from spawn until /readyz answers 200.
// Measured twice: compiled (tsc into a temp dir, as `npm run build` ships it) and from the
// TypeScript sources (bin/perkbridge.js registers tsx when there is no dist/, so tsx's compile is
// part of that figure). The empty-state start beside each shows the fixed cost.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ledgerKey } from "../src/core/ledger.js";
import type { Member } from "../src/core/member.js";
import type { Perk } from "../src/core/perk.js";
import { declareCollections, INTAKE_DIR } from "../src/daemon/declare-collections.js";
import { createStore } from "../src/daemon/store/create-store.js";
import { msSince, type Bench, type BenchEntry } from "./lib.js";

const MEMBERS = 100_000;
const RUNS = 3;
const BIN = fileURLToPath(new URL("../bin/perkbridge.js", import.meta.url));

/** Secrets of the bench config, handed to the daemon through its environment. */
export const BENCH_SECRETS = {
  PH_KEY: "bench_api_key",
  PH_WEBHOOK: "bench_webhook_secret",
  RECV_SECRET: "bench_receiver_secret",
  DISCORD_TOKEN: "bench.discord.token",
  RCON_PASSWORD: "bench_rcon_password",
} as const;

/** The perk every bench member holds: one event on the `shop` http endpoint. */
export const SHOP_PERK: Perk = { target: "http", scope: "shop", kind: "event", value: "" };

/** A member as the PaymentHub mapping leaves it, about 400 bytes of JSON. */
export function benchMember(id: string, now: number): Member {
  const n = Number.parseInt(id.replace(/\D/g, "") || "0", 10);
  const discord = String(100_000_000_000_000_000n + BigInt(n));
  return {
    source: "paymenthub",
    id,
    email: `${id}@example.com`,
    name: `Player ${n}`,
    planId: "plan_premium",
    status: "active",
    identities: { discord, minecraft: { uuid: `0000${n.toString(16).padStart(8, "0")}-1111-4222-8333-444455556666`, name: `mc_${n}` } },
    metadata: { discord_id: discord, minecraft_uuid: `0000${n.toString(16).padStart(8, "0")}-1111-4222-8333-444455556666`, minecraft_name: `mc_${n}` },
    statusSince: now - 86_400_000,
    observedAt: now - 86_400_000,
  };
}

/**
 * Writes `members` active premium members and the ledger entry of each one's perk into a state
 * directory, through the store and with the collections (and shard counts) the daemon declares.
 */
export async function prefillState(dir: string, members: number): Promise<void> {
  const store = createStore({ dir });
  const { members: memberCollection, ledger } = declareCollections(store, createStore({ dir: join(dir, INTAKE_DIR) }));
  await store.open();
  const now = Date.now();
  for (let i = 0; i < members; i++) {
    const member = benchMember(`mem_${String(i).padStart(7, "0")}`, now);
    const key = `paymenthub:${member.id}`;
    const subject = `member:${key}`;
    memberCollection.set(key, member);
    ledger.set(ledgerKey(subject, SHOP_PERK), { subject, perk: SHOP_PERK, members: [key], preExisting: false, grantedAt: now - 86_400_000 });
  }
  // Into the files, as a daemon that has run a while leaves them: its log holds recent changes only.
  await store.checkpoint();
  await store.close();
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The bench daemon's config: PaymentHub webhooks (its API on a closed port: the bench sends
 * complete members, so nothing is looked up, and a poll that fails revokes nothing) and one
 * http endpoint every plan_premium member holds (unless `perks` is false: a plan granting nothing).
 */
export async function writeBenchConfig(
  dir: string,
  options: { stateDir: string; port: number; endpointUrl: string; logLevel: string; perks?: boolean; discordAndMinecraft?: boolean },
): Promise<string> {
  const closed = await freePort();
  // Configured, so that their libraries load and their targets start, but unreachable: nothing to
  // grant at start-up, and a target that is down never holds the daemon back.
  const gameTargets = options.discordAndMinecraft === true
    ? `
  discord:
    token: \${DISCORD_TOKEN}
    api_base: http://127.0.0.1:${closed}/api
    gateway_url: ws://127.0.0.1:${closed}/gateway
    guilds: [{ id: "111111111111111111" }]
  minecraft:
    servers:
      survival:
        rcon: { host: 127.0.0.1, port: ${closed}, password: "\${RCON_PASSWORD}" }
        status: { host: 127.0.0.1, port: ${closed} }`
    : "";
  const path = join(dir, "perkbridge.yaml");
  await writeFile(
    path,
    `
state: { dir: ${JSON.stringify(options.stateDir)} }
server: { host: 127.0.0.1, port: ${options.port} }
log: { level: ${options.logLevel}, format: json }
sources:
  paymenthub:
    base_url: http://127.0.0.1:${closed}/v1
    api_key: \${PH_KEY}
    webhook_secrets: ["\${PH_WEBHOOK}"]
targets:${gameTargets}
  http:
    endpoints:
      shop: { url: ${JSON.stringify(options.endpointUrl)}, secret: "\${RECV_SECRET}", timeout: 5s }
plans:
  plan_premium:
    perks: ${options.perks === false ? "[]" : "[{ http: { endpoint: shop } }]"}
`,
  );
  return path;
}

/** A `perkbridge start` child process that answered /readyz. */
export interface BenchDaemon {
  readonly child: ChildProcess;
  readonly url: string;
  /** From spawn to the first 200 of /readyz. */
  readonly readyMs: number;
  /** SIGTERM and wait for the exit; SIGKILL after 20 s. */
  stop(): Promise<void>;
}

/** Spawns `node <entry> start` (default bin/perkbridge.js; its stdout discarded) and waits for /readyz. */
export async function startDaemonProcess(config: string, port: number, entry = BIN): Promise<BenchDaemon> {
  const start = process.hrtime.bigint();
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the daemon there (NODE_OPTIONS refuses --cpu-prof).
  const profile = process.env.BENCH_CPU_PROF === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`];
  const child = spawn(process.execPath, [...profile, entry, "start", "--config", config], {
    env: { ...process.env, ...BENCH_SECRETS },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`perkbridge exited (${child.exitCode ?? child.signalCode}): ${stderr}`);
    const ok = await fetch(`${url}/readyz`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ok) break;
    if (msSince(start) > 120_000) {
      child.kill("SIGKILL");
      throw new Error(`perkbridge not ready within 120 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const readyMs = msSince(start);
  return {
    child,
    url,
    readyMs,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of a process, in MB, from /proc. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/**
 * Compiles src/ with tsc into `<dir>/dist` beside a copy of package.json and a link to
 * node_modules, so the output resolves its packages as an installed build would. Returns the
 * CLI entry, or undefined when tsc emitted nothing (type errors alone still emit).
 */
async function compile(dir: string): Promise<string | undefined> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  await copyFile(join(root, "package.json"), join(dir, "package.json"));
  await symlink(join(root, "node_modules"), join(dir, "node_modules"));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const args = [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", join(dir, "dist"), "--declaration", "false", "--sourceMap", "false"];
  await new Promise<void>((resolve) => spawn(process.execPath, args, { stdio: "ignore" }).once("exit", () => resolve()));
  const entry = join(dir, "dist", "cli", "main.js");
  return (await stat(entry).catch(() => undefined)) === undefined ? undefined : entry;
}

/** The daemon's V8 heap in use, in MB, from its Prometheus default metrics. */
async function heapUsedMb(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^\w*nodejs_heap_size_used_bytes (\d+)/m.exec(text)?.[1] ?? Number.NaN) / 1024 / 1024;
}

/** Starts the daemon `RUNS` times on the same state; median start-up, RSS and heap after ready. */
async function measure(dir: string, stateDir: string, entry: string, discordAndMinecraft = false): Promise<{ readyMs: number; rss: number; heap: number }> {
  const ready: number[] = [];
  const rss: number[] = [];
  const heap: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const port = await freePort();
    const config = await writeBenchConfig(dir, { stateDir, port, endpointUrl: `http://127.0.0.1:${await freePort()}/perks`, logLevel: "info", discordAndMinecraft });
    const daemon = await startDaemonProcess(config, port, entry);
    try {
      ready.push(daemon.readyMs);
      // Let start-up garbage settle a moment, as it would before the first webhook.
      await new Promise((resolve) => setTimeout(resolve, 500));
      rss.push(await rssMb(daemon.child.pid as number));
      heap.push(await heapUsedMb(daemon.url));
    } finally {
      await daemon.stop();
    }
  }
  return { readyMs: median(ready), rss: median(rss), heap: median(heap) };
}

const bench: Bench = async () => {
  const dir = await mkdtemp(join(tmpdir(), "perkbridge-bench-startup-"));
  try {
    const emptyState = join(dir, "empty");
    const fullState = join(dir, "full");
    await prefillState(fullState, MEMBERS);
    const results: BenchEntry[] = [];
    const build = join(dir, "build");
    await mkdir(build);
    const compiled = await compile(build);
    const variants: [string, string | undefined][] = [
      ["compiled", compiled],
      ["from sources through tsx", BIN],
    ];
    for (const [label, entry] of variants) {
      if (entry === undefined) {
        process.stderr.write(`  tsc emitted no ${join("dist", "cli", "main.js")}: the compiled figures are left out\n`);
        continue;
      }
      const empty = await measure(dir, emptyState, entry);
      const full = await measure(dir, fullState, entry);
      results.push(
        { name: `start-up to /readyz at 100k members (${label})`, value: Math.round(full.readyMs), unit: "ms", target: "< 2000 ms", better: "lower", baseline: Math.round(empty.readyMs) },
        { name: `RSS after start-up at 100k members (${label})`, value: Math.round(full.rss), unit: "MB", target: "< 200 MB", better: "lower", baseline: Math.round(empty.rss) },
        { name: `V8 heap in use after start-up at 100k members (${label})`, value: Math.round(full.heap), unit: "MB", better: "lower", baseline: Math.round(empty.heap) },
      );
    }
    if (compiled !== undefined) {
      // The same state with Discord and Minecraft configured: their libraries cost the same at any size.
      const empty = await measure(dir, emptyState, compiled, true);
      const full = await measure(dir, fullState, compiled, true);
      results.push(
        { name: "start-up to /readyz at 100k members (compiled, Discord and Minecraft configured)", value: Math.round(full.readyMs), unit: "ms", better: "lower", baseline: Math.round(empty.readyMs) },
        { name: "RSS after start-up at 100k members (compiled, Discord and Minecraft configured)", value: Math.round(full.rss), unit: "MB", better: "lower", baseline: Math.round(empty.rss) },
      );
    }
    process.stderr.write("  baselines: the same start with an empty state directory\n");
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

export default bench;
