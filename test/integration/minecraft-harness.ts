// The harness of harness.ts, extended with two emulated Minecraft servers ("lobby" and
// "survival", RCON and optionally the status ping) and optionally the Discord emulator, all
// configured in the generated YAML (passwords and the bot token from environment variables)
// and parsed by the real parseConfig, so the daemon builds its targets through the lanes.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type LoadedConfig } from "../../src/daemon/config/load-config.js";
import type { Daemon } from "../../src/daemon/create-daemon.js";
import type { PerkbridgeOverrides } from "../../src/daemon/create-perkbridge.js";
import type { QueuedAction } from "../../src/daemon/reconcile/action-queue.js";
import type { ReconcileEngine } from "../../src/daemon/reconcile/reconcile-engine.js";
import { createDiscordEmulator, type DiscordEmulator } from "../../src/sandbox/discord/create-discord-emulator.js";
import { createRconEmulator, type RconEmulator } from "../../src/sandbox/minecraft/create-rcon-emulator.js";
import { createStatusEmulator, type StatusEmulator } from "../../src/sandbox/minecraft/create-status-emulator.js";
import { createMinecraftWorld, type MinecraftWorld, type Profile } from "../../src/sandbox/minecraft/minecraft-world.js";
import { baseYaml, bootTestDaemon, paymentHubYaml } from "./support/test-daemon.js";
import { createPaymentHubEmulator, type PaymentHubEmulator, type PaymentHubEmulatorOptions } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";

export const SERVERS = ["lobby", "survival"] as const;
export type ServerName = (typeof SERVERS)[number];

export const MC_SECRETS = {
  apiKey: "ph_test_key_mc_81c2",
  webhook: "whsec_test_mc_2f0d",
  discordToken: "emulated-bot-token-mc-5a",
  rcon: { lobby: "rcon-lobby-pass-7Qx", survival: "rcon-survival-pass-3Kz" },
} as const;

/** Discord ids of the emulated guild. */
export const DISCORD = {
  guild: "100000000000000100",
  owner: "100000000000000900",
  premiumRole: "100000000000000301",
  botRole: "100000000000000310",
} as const;

const MANAGE_ROLES = (1n << 28n).toString();

/** One emulated Minecraft server. */
export interface EmulatedServer {
  readonly rcon: RconEmulator;
  readonly world: MinecraftWorld;
  readonly status?: StatusEmulator;
}

export interface MinecraftHarnessOptions {
  /** The `plans:` section (and anything else top-level after `targets:`). */
  readonly plansYaml: string;
  /** LuckPerms groups that exist on both servers besides `default`; default ["vip"]. */
  readonly groups?: readonly string[];
  /** Profiles both servers know (who has ever joined). */
  readonly profiles?: readonly Profile[];
  /** Both servers behind one world (one LuckPerms database and whitelist, as behind a proxy). */
  readonly sharedWorld?: boolean;
  /** Servers that also get a status-ping emulator in the config. */
  readonly status?: readonly ServerName[];
  /** Servers whose configured password differs from the server's. */
  readonly wrongPassword?: readonly ServerName[];
  /** Start the Discord emulator and configure the discord target; guild members are given here. */
  readonly discordMembers?: readonly { readonly id: string; readonly username: string }[];
  /** `list_interval` of both servers; default 100ms. */
  readonly listInterval?: string;
  readonly emulator?: Partial<PaymentHubEmulatorOptions>;
  readonly overrides?: PerkbridgeOverrides;
}

export interface MinecraftHarness {
  readonly emulator: PaymentHubEmulator;
  readonly servers: Readonly<Record<ServerName, EmulatedServer>>;
  readonly discord?: DiscordEmulator;
  readonly stateDir: string;
  readonly loaded: LoadedConfig;
  /** The password the daemon was given, per server (differs from the server's with `wrongPassword`). */
  readonly configuredPasswords: Readonly<Record<ServerName, string>>;
  daemon: Daemon;
  engine: ReconcileEngine;
  readonly logs: string[];
  /** Commands a server received, without the `list` polls. */
  commands(server: ServerName): string[];
  /** Queue records of a subject (`minecraft:<uuid>`), newest last. */
  actionsOf(subject: string): QueuedAction[];
  /** Stops the daemon and starts a new one on the same state directory; the emulators keep running. */
  restart(): Promise<void>;
  /** Waits until webhooks are delivered, the engine is idle and no action is due or in flight. */
  settle(): Promise<void>;
  /** Polls `check` until it returns true. */
  waitFor(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts PaymentHub, two RCON servers (and Discord) on loopback, and the real daemon in-process. */
export async function startMinecraftHarness(options: MinecraftHarnessOptions): Promise<MinecraftHarness> {
  const cleanup: (() => Promise<void>)[] = [];
  const stateDir = await mkdtemp(join(tmpdir(), "perkbridge-mc-"));
  cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
  try {
    const emulator = createPaymentHubEmulator({
      apiKey: MC_SECRETS.apiKey,
      webhookSecret: MC_SECRETS.webhook,
      webhookRetryScale: 0.01,
      ...options.emulator,
    });
    await emulator.start();
    cleanup.push(() => emulator.close());

    const newWorld = (): MinecraftWorld => createMinecraftWorld({ groups: options.groups ?? ["vip"], profiles: options.profiles ?? [] });
    const shared = options.sharedWorld ? newWorld() : undefined;
    const servers = {} as Record<ServerName, EmulatedServer>;
    for (const name of SERVERS) {
      const world = shared ?? newWorld();
      const rcon = await createRconEmulator({ password: MC_SECRETS.rcon[name], world });
      cleanup.push(() => rcon.close());
      let status: StatusEmulator | undefined;
      if (options.status?.includes(name)) {
        status = await createStatusEmulator({ world });
        const opened = status;
        cleanup.push(() => opened.close());
      }
      servers[name] = status ? { rcon, world, status } : { rcon, world };
    }

    let discord: DiscordEmulator | undefined;
    if (options.discordMembers) {
      discord = createDiscordEmulator({
        botToken: MC_SECRETS.discordToken,
        guilds: [
          {
            id: DISCORD.guild,
            name: "Emulated Guild",
            ownerId: DISCORD.owner,
            roles: [
              { id: DISCORD.premiumRole, name: "Premium", position: 2, permissions: "0" },
              { id: DISCORD.botRole, name: "perkbridge", position: 5, permissions: MANAGE_ROLES },
            ],
            members: [
              ...options.discordMembers.map((user) => ({ user, roles: [] })),
              { user: { id: DISCORD.owner, username: "owner" }, roles: [] },
            ],
            botMemberRoles: [DISCORD.botRole],
          },
        ],
      });
      await discord.start();
      const opened = discord;
      cleanup.push(() => opened.close());
    }

    const configuredPasswords = Object.fromEntries(
      SERVERS.map((name) => [name, options.wrongPassword?.includes(name) ? `wrong-${MC_SECRETS.rcon[name]}` : MC_SECRETS.rcon[name]]),
    ) as Record<ServerName, string>;
    const serverYaml = SERVERS.map((name) => {
      const { rcon, status } = servers[name];
      return `
      ${name}:
        rcon: { host: 127.0.0.1, port: ${rcon.port}, password: "\${MC_${name.toUpperCase()}_PASSWORD}" }
${status ? `        status: { host: 127.0.0.1, port: ${status.port} }\n` : ""}        list_interval: ${options.listInterval ?? "100ms"}
        command_timeout: 2s`;
    }).join("");
    const discordYaml = discord
      ? `
  discord:
    token: \${DISCORD_TOKEN}
    api_base: ${discord.url}/api
    guilds:
      - id: "${DISCORD.guild}"`
      : "";
    const yaml = `${baseYaml(stateDir)}${paymentHubYaml(emulator.url)}targets:
  minecraft:
    servers:${serverYaml}${discordYaml}
${options.plansYaml}
`;
    const env = {
      PH_KEY: MC_SECRETS.apiKey,
      PH_WEBHOOK: MC_SECRETS.webhook,
      DISCORD_TOKEN: MC_SECRETS.discordToken,
      MC_LOBBY_PASSWORD: configuredPasswords.lobby,
      MC_SURVIVAL_PASSWORD: configuredPasswords.survival,
    };
    const loaded = parseConfig(yaml, env, "minecraft-harness.yaml");
    const logs: string[] = [];

    let engine: ReconcileEngine | undefined;
    const boot = async (): Promise<Daemon> => {
      const daemon = await bootTestDaemon(loaded, logs, options.overrides, (e) => (engine = e));
      emulator.setWebhookUrl(`${daemon.url}/webhooks/paymenthub`);
      return daemon;
    };

    const daemon = await boot();
    const harness: MinecraftHarness = {
      emulator,
      servers,
      ...(discord ? { discord } : {}),
      stateDir,
      loaded,
      configuredPasswords,
      logs,
      daemon,
      engine: engine as unknown as ReconcileEngine,
      commands: (server) => servers[server].rcon.commands.filter((c) => !/^list\b/.test(c)),
      actionsOf: (subject) =>
        [...harness.engine.queue.all()].filter((r) => r.action.subject === subject).sort((a, b) => a.createdAt - b.createdAt),
      async restart() {
        await harness.daemon.stop();
        harness.daemon = await boot();
        harness.engine = engine as unknown as ReconcileEngine;
      },
      async settle() {
        for (let i = 0; i < 500; i++) {
          await emulator.settled();
          await harness.engine.idle();
          const now = Date.now();
          const due = [...harness.engine.queue.all()].some((r) => r.state === "sending" || (r.state === "queued" && r.notBefore <= now + 100));
          const inFlight = harness.engine.queue.lanes().some((lane) => harness.engine.runner.inFlight(lane) > 0);
          if (!due && !inFlight) return;
          await sleep(10);
        }
        throw new Error("the daemon did not settle within 5 s");
      },
      async waitFor(what, check, timeoutMs = 5000) {
        const deadline = Date.now() + timeoutMs;
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
          await sleep(20);
        }
      },
      async close() {
        await harness.daemon.stop().catch(() => undefined);
        for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
      },
    };
    return harness;
  } catch (error) {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
    throw error;
  }
}

/** A PaymentHub member (wire form) with Minecraft (and optionally Discord) identities in its metadata. */
export function mcMember(id: string, metadata: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> & { id: string; email: string } {
  return { id, email: `${id}@example.com`, name: id, plan_id: "plan_premium", status: "active", metadata, ...extra };
}
