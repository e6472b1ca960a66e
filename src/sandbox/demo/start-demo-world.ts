import { createDiscordEmulator, type DiscordEmulator } from "../discord/create-discord-emulator.js";
import { createRconEmulator, type RconEmulator } from "../minecraft/create-rcon-emulator.js";
import { createStatusEmulator, type StatusEmulator } from "../minecraft/create-status-emulator.js";
import { createMinecraftWorld, type MinecraftWorld, type Profile } from "../minecraft/minecraft-world.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../paymenthub/create-paymenthub-emulator.js";

/** One person of the demo story: a PaymentHub member with a Discord account and a Minecraft profile. */
export interface DemoPerson {
  /** Also the PaymentHub member id, the Discord username and the Minecraft name. */
  readonly name: string;
  readonly discordId: string;
  readonly minecraft: Profile;
}

/** The Discord guild of the demo. */
export const DEMO_GUILD = { id: "1180000000000000001", name: "Demo Server", ownerId: "1180000000000000009" } as const;

/** Role ids: the bot's role sits above the plan role, as Discord's hierarchy requires. */
export const DEMO_ROLES = { premium: { id: "1180000000000000101", name: "Premium" }, bot: { id: "1180000000000000109", name: "perkbridge" } } as const;

/** The LuckPerms group the premium plan grants on the Minecraft server `survival`. */
export const DEMO_GROUP = "vip";

const person = (name: string, n: number): DemoPerson => ({
  name,
  discordId: `11800000000000002${String(n).padStart(2, "0")}`,
  minecraft: { name, uuid: `0d5c1e2a-7b3f-4c8e-9a61-00000000000${n}` },
});

/** Who appears in the story. */
export const DEMO_PEOPLE = {
  alice: person("alice", 1),
  bob: person("bob", 2),
  carol: person("carol", 3),
  dave: person("dave", 4),
  mallory: person("mallory", 5),
} as const;

/** Secrets the emulators check; generated per run, never printed. */
export interface DemoSecrets {
  readonly paymenthubApiKey: string;
  readonly paymenthubWebhookSecret: string;
  readonly discordToken: string;
  readonly rconPassword: string;
}

/** The running emulators of one demo. */
export interface DemoWorld {
  readonly paymenthub: PaymentHubEmulator;
  readonly discord: DiscordEmulator;
  readonly minecraft: MinecraftWorld;
  readonly rcon: RconEmulator;
  readonly status: StatusEmulator;
  /** Closes every emulator that was started, in reverse order. */
  close(): Promise<void>;
}

const MANAGE_ROLES = (1n << 28n).toString();

/**
 * Starts the emulators the demo needs on 127.0.0.1, on ephemeral ports: PaymentHub, a Discord
 * guild whose bot role sits above the Premium role, and one Minecraft server (RCON with LuckPerms
 * and the status ping). If one fails to start, those already started are closed again.
 */
export async function startDemoWorld(secrets: DemoSecrets): Promise<DemoWorld> {
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const fn of closers.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const paymenthub = createPaymentHubEmulator({
      apiKey: secrets.paymenthubApiKey,
      webhookSecret: secrets.paymenthubWebhookSecret,
      // Redeliveries of a refused webhook (the forged one is not redelivered: it is sent raw) come fast.
      webhookRetryScale: 0.01,
      webhookTimeoutMs: 2_000,
    });
    await paymenthub.start();
    closers.push(() => paymenthub.close());

    const people = Object.values(DEMO_PEOPLE);
    const discord = createDiscordEmulator({
      botToken: secrets.discordToken,
      guilds: [
        {
          ...DEMO_GUILD,
          roles: [
            { id: DEMO_ROLES.premium.id, name: DEMO_ROLES.premium.name, position: 1, permissions: "0" },
            { id: DEMO_ROLES.bot.id, name: DEMO_ROLES.bot.name, position: 2, permissions: MANAGE_ROLES },
          ],
          members: [
            { user: { id: DEMO_GUILD.ownerId, username: "owner" }, roles: [] },
            ...people.map((p) => ({ user: { id: p.discordId, username: p.name }, roles: [] })),
          ],
          botMemberRoles: [DEMO_ROLES.bot.id],
        },
      ],
    });
    await discord.start();
    closers.push(() => discord.close());

    const minecraft = createMinecraftWorld({ groups: [DEMO_GROUP], profiles: people.map((p) => p.minecraft) });
    const rcon = await createRconEmulator({ password: secrets.rconPassword, world: minecraft });
    closers.push(() => rcon.close());
    const status = await createStatusEmulator({ world: minecraft, motd: "perkbridge demo: survival" });
    closers.push(() => status.close());

    return { paymenthub, discord, minecraft, rcon, status, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Names of the environment variables the generated config reads its secrets from. */
export const DEMO_ENV = {
  paymenthubApiKey: "DEMO_PAYMENTHUB_API_KEY",
  paymenthubWebhookSecret: "DEMO_PAYMENTHUB_WEBHOOK_SECRET",
  discordToken: "DEMO_DISCORD_TOKEN",
  rconPassword: "DEMO_RCON_PASSWORD",
} as const satisfies Record<keyof DemoSecrets, string>;

/**
 * The perkbridge.yaml of the demo: every base URL points at an emulator, every secret is a
 * `${NAME}` read from the environment, and the premium plan keeps perks for `graceSeconds`.
 */
export function demoConfigYaml(world: DemoWorld, stateDir: string, graceSeconds: number): string {
  const guild = JSON.stringify(DEMO_GUILD.id);
  const role = JSON.stringify(DEMO_ROLES.premium.id);
  return `# Generated by \`perkbridge demo\`: every address is a loopback emulator,
# every secret comes from the environment of the demo process.
server: { host: 127.0.0.1, port: 0 }
state: { dir: ${JSON.stringify(stateDir)} }
log: { level: info, format: json }
sources:
  paymenthub:
    base_url: ${world.paymenthub.url}
    api_key: \${${DEMO_ENV.paymenthubApiKey}}
    webhook_secrets: ["\${${DEMO_ENV.paymenthubWebhookSecret}}"]
    request_timeout: 2s
targets:
  discord:
    token: \${${DEMO_ENV.discordToken}}
    api_base: ${world.discord.url}/api
    guilds:
      - id: ${guild}
        enforce: restore
  minecraft:
    servers:
      survival:
        rcon: { host: ${world.rcon.host}, port: ${world.rcon.port}, password: "\${${DEMO_ENV.rconPassword}}" }
        status: { host: ${world.status.host}, port: ${world.status.port} }
        command_timeout: 2s
plans:
  plan_premium:
    grace: ${graceSeconds}s
    perks:
      - discord: { guild: ${guild}, role: ${role} }
      - minecraft: { server: survival, group: ${DEMO_GROUP} }
    trial_perks:
      - discord: { guild: ${guild}, role: ${role} }
`;
}
