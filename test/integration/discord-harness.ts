import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DiscordTarget } from "../../src/adapters/discord/create-discord-target.js";
import type { PerkTarget } from "../../src/core/ports.js";
import { parseConfig, type LoadedConfig } from "../../src/daemon/config/load-config.js";
import { createDaemon, type ComponentFactory, type Daemon } from "../../src/daemon/create-daemon.js";
import { createLogger } from "../../src/daemon/create-logger.js";
import { perkbridgeComponents, type PerkbridgeOverrides } from "../../src/daemon/create-perkbridge.js";
import { createDiscordLane } from "../../src/daemon/lanes/discord-lane.js";
import { createMinecraftLane } from "../../src/daemon/lanes/minecraft-lane.js";
import type { ReconcileEngine } from "../../src/daemon/reconcile/reconcile-engine.js";
import { createDiscordEmulator, type DiscordEmulator, type EmulatedGuildInit, type EmulatedRole } from "../../src/sandbox/discord/create-discord-emulator.js";
import { createRconEmulator, type RconEmulator } from "../../src/sandbox/minecraft/create-rcon-emulator.js";
import { createPaymentHubEmulator, type NewMember, type PaymentHubEmulator, type PaymentHubEmulatorOptions } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";

export const SECRETS = {
  apiKey: "ph_test_key_7d01ae",
  webhook: "whsec_test_c35e90",
  discord: "discord-bot-token-e2e",
  rcon: "rcon-pass-e2e",
} as const;

/** Three guilds, one per drift mode; the same roles (by name) and users in each. */
export const GUILD = { main: "300000000000000100", off: "300000000000000200", exclusive: "300000000000000300" } as const;
export const OWNER = "300000000000000900";

/** Role ids of one guild: the guild's prefix and a fixed suffix, so each guild has its own. */
export function rolesOf(guild: string) {
  const p = guild.slice(0, -3);
  return { event: `${p}301`, premium: `${p}302`, vip: `${p}303`, bot: `${p}310`, legend: `${p}320` };
}
export const ROLE = rolesOf(GUILD.main);
export const USER = { alice: "300000000000000401", bob: "300000000000000402", carol: "300000000000000403", dave: "300000000000000404" } as const;
export const MANAGE_ROLES = (1n << 28n).toString();

function guildInit(id: string, name: string, extraUsers: readonly string[]): EmulatedGuildInit {
  const r = rolesOf(id);
  const roles: EmulatedRole[] = [
    { id: r.event, name: "Event", position: 1, permissions: "0" },
    { id: r.premium, name: "Premium", position: 2, permissions: "0" },
    { id: r.vip, name: "VIP", position: 3, permissions: "0" },
    { id: r.bot, name: "perkbridge", position: 5, permissions: MANAGE_ROLES },
    { id: r.legend, name: "Legend", position: 10, permissions: "0" },
  ];
  const users = [USER.alice, USER.bob, USER.carol, ...extraUsers];
  return {
    id,
    name,
    ownerId: OWNER,
    roles,
    members: [{ user: { id: OWNER, username: "owner" }, roles: [] }, ...users.map((u) => ({ user: { id: u, username: `user${u.slice(-4)}` }, roles: [] }))],
    botMemberRoles: [r.bot],
  };
}

export interface DiscordHarness {
  readonly emulator: PaymentHubEmulator;
  readonly discord: DiscordEmulator;
  readonly rcon: RconEmulator | undefined;
  readonly stateDir: string;
  readonly loaded: LoadedConfig;
  daemon: Daemon;
  engine: ReconcileEngine;
  /** The Discord target the daemon's own lane factory built. */
  target: DiscordTarget;
  /** Stops the daemon and starts a new one on the same state directory. */
  restart(): Promise<void>;
  /**
   * Waits until webhooks are delivered, the engine is idle, no action is queued
   * or in flight, and the Discord emulator has seen no request for a while (so
   * gateway echoes of our own changes have been handled).
   */
  settle(): Promise<void>;
  close(): Promise<void>;
  readonly logs: string[];
  /** Role PUT/DELETE requests the Discord emulator received. */
  roleCalls(): { method: string; path: string; status: number; at: number; auditLogReason?: string }[];
  /** A member who buys `plan` with this Discord id (webhook `member.created`). */
  buy(id: string, discordId: string | undefined, plan?: string, extra?: Partial<NewMember>): void;
}

export interface DiscordHarnessOptions {
  readonly plansYaml: string;
  readonly policyYaml?: string;
  /** Users (besides alice, bob and carol) that are in every guild from the start. */
  readonly extraUsers?: readonly string[];
  readonly emulator?: Partial<PaymentHubEmulatorOptions>;
  /** Start an RCON emulator and configure Minecraft server `survival`. */
  readonly minecraft?: boolean;
  /** YAML under sources.paymenthub (indented four spaces), e.g. the rate budget. */
  readonly paymenthubYaml?: string;
  readonly logLevel?: "info" | "warn";
  readonly overrides?: PerkbridgeOverrides;
  readonly stateDirPrefix?: string;
}

/** PaymentHub emulator + Discord emulator (+ RCON) + the real daemon in-process, on loopback. */
export async function startDiscordHarness(options: DiscordHarnessOptions): Promise<DiscordHarness> {
  const stateDir = await mkdtemp(join(tmpdir(), options.stateDirPrefix ?? "perkbridge-discord-"));
  const emulator = createPaymentHubEmulator({ apiKey: SECRETS.apiKey, webhookSecret: SECRETS.webhook, webhookRetryScale: 0.01, ...options.emulator });
  await emulator.start();
  const extra = options.extraUsers ?? [];
  const discord = createDiscordEmulator({
    botToken: SECRETS.discord,
    guilds: [guildInit(GUILD.main, "Main", extra), guildInit(GUILD.off, "Hands off", extra), guildInit(GUILD.exclusive, "Exclusive", extra)],
    heartbeatIntervalMs: 30_000,
  });
  await discord.start();
  const rcon = options.minecraft ? await createRconEmulator({ password: SECRETS.rcon }) : undefined;
  const yaml = `
state: { dir: ${JSON.stringify(stateDir)} }
server: { port: 0 }
log: { level: info, format: json }
sources:
  paymenthub:
    base_url: ${emulator.url}
    api_key: \${PH_KEY}
    webhook_secrets: ["\${PH_WEBHOOK}"]
    request_timeout: 2s
${options.paymenthubYaml ?? ""}
targets:
  discord:
    token: \${DISCORD_TOKEN}
    api_base: ${discord.url}/api
    guilds:
      - { id: "${GUILD.main}", enforce: restore }
      - { id: "${GUILD.off}", enforce: "off" }
      - { id: "${GUILD.exclusive}", enforce: exclusive }
${
  rcon
    ? `  minecraft:
    servers:
      survival:
        rcon: { host: 127.0.0.1, port: ${rcon.port}, password: "\${RCON_PASSWORD}" }
`
    : ""
}
${options.plansYaml}
${options.policyYaml ?? ""}
`;
  const loaded = parseConfig(yaml, { PH_KEY: SECRETS.apiKey, PH_WEBHOOK: SECRETS.webhook, DISCORD_TOKEN: SECRETS.discord, RCON_PASSWORD: SECRETS.rcon }, "discord-harness.yaml");
  const logs: string[] = [];
  const destination = { write: (line: string) => void logs.push(line) };

  let engine: ReconcileEngine | undefined;
  let target: DiscordTarget | undefined;
  // The daemon's own lane factories build the targets with the daemon's context (the harness keeps
  // the Discord one); the rest of perkbridge's components (the admin channel, …) run as they are.
  const boot = async (): Promise<Daemon> => {
    const targets = new Map<string, PerkTarget>();
    const [first, ...rest] = perkbridgeComponents(loaded, {
      retryDelay: () => 20,
      sweepOnStart: false,
      ...options.overrides,
      targets,
      onEngine: (e) => {
        engine = e;
        options.overrides?.onEngine?.(e);
      },
    });
    if (!first) throw new Error("perkbridgeComponents returned no component");
    const withLanes: ComponentFactory = async (context) => {
      for (const create of [createDiscordLane, createMinecraftLane]) {
        const built = await create(loaded, context, () => engine);
        if (built) targets.set(built.name, built);
      }
      target = targets.get("discord") as DiscordTarget;
      return first(context);
    };
    const logger = createLogger({ level: options.logLevel ?? "info", format: "json", secrets: loaded.secrets, destination });
    const daemon = await createDaemon(loaded.config, { secrets: loaded.secrets, logger, components: [withLanes, ...rest] });
    emulator.setWebhookUrl(`${daemon.url}/webhooks/paymenthub`);
    return daemon;
  };

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const harness: DiscordHarness = {
    emulator,
    discord,
    rcon,
    stateDir,
    loaded,
    logs,
    daemon: await boot(),
    engine: engine as unknown as ReconcileEngine,
    target: target as unknown as DiscordTarget,
    async restart() {
      await harness.daemon.stop();
      harness.daemon = await boot();
      harness.engine = engine as unknown as ReconcileEngine;
      harness.target = target as unknown as DiscordTarget;
    },
    async settle() {
      let quiet = 0;
      let seen = -1;
      for (let i = 0; i < 1000; i++) {
        await emulator.settled();
        await harness.engine.idle();
        const open = [...harness.engine.queue.all()].some((r) => r.state === "queued" || r.state === "sending");
        const busy = open || harness.engine.runner.inFlight("discord") > 0 || harness.engine.runner.inFlight("minecraft") > 0;
        const calls = discord.calls.length;
        quiet = !busy && calls === seen ? quiet + 1 : 0;
        seen = calls;
        if (quiet >= 5) return;
        await sleep(10);
      }
      throw new Error("the daemon did not settle within 10 s");
    },
    async close() {
      await harness.daemon.stop().catch(() => undefined);
      await emulator.close();
      await discord.close();
      await rcon?.close();
      await rm(stateDir, { recursive: true, force: true });
    },
    roleCalls() {
      return discord.calls.filter((c) => /\/members\/\d+\/roles\/\d+$/.test(c.path) && (c.method === "PUT" || c.method === "DELETE"));
    },
    buy(id, discordId, plan = "plan_premium", more = {}) {
      emulator.addMember({
        id,
        email: `${id}@example.com`,
        name: id,
        plan_id: plan,
        status: "active",
        metadata: discordId === undefined ? {} : { discord_id: discordId },
        ...more,
      });
    },
  };
  return harness;
}
