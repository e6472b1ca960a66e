// "Every secret (tokens, API keys, webhook secrets, RCON passwords) redacted by configuration":
// a full run of the real `perkbridge start` with every kind of secret, traffic that succeeds and
// traffic that fails (refused token, wrong RCON password, 401 from PaymentHub, forged and invalid
// webhooks, an endpoint that is down), then a grep of everything it wrote for every secret.
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDiscordEmulator, type DiscordEmulator } from "../../src/sandbox/discord/create-discord-emulator.js";
import { createHttpReceiver, type HttpReceiver } from "../../src/sandbox/http-receiver/create-http-receiver.js";
import { createRconEmulator, type RconEmulator } from "../../src/sandbox/minecraft/create-rcon-emulator.js";
import { createMinecraftWorld } from "../../src/sandbox/minecraft/minecraft-world.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { signPayload } from "../../src/sources/paymenthub/verify-signature.js";
import { until } from "./support/test-daemon.js";
import { freePort, killAllPerkbridges, spawnPerkbridge } from "./fixtures/kill9-child-process.js";

/** Every secret the daemon is given, by the environment variable that carries it. */
const SECRETS = {
  PH_KEY: "phk_live_Q7zX2mW9rT4v",
  PH_WEBHOOK: "whsec_N3pL8sK1dF6j",
  PH_WEBHOOK_OLD: "whsec_rotated_Y5hG0cB2",
  DISCORD_TOKEN: "MTIzNDU2.discordTok.Zr8Vw3Lq",
  RCON_PASSWORD: "rcon_pw_Hk4Ms9Tq",
  RCON_PASSWORD_CREATIVE: "rcon_pw2_Bd7Xe1Wn",
  SHOP_SECRET: "shop_hmac_Jf2Pu6Ys",
  DOWN_SECRET: "down_hmac_Ca9Rt3Ge",
} as const;

const GUILD = "100000000000000100";
const ROLE = "100000000000000301";
const USER = "100000000000000401";
const UUID = "0b3c8f4e-6d2a-4f1e-9a7b-5c2d1e0f9a8b";

let dir: string;
/** Services the test started, closed after it. */
let services: { close(): Promise<void> }[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "perkbridge-secrets-"));
});

afterEach(async () => {
  await killAllPerkbridges();
  await Promise.all(services.map((s) => s.close()));
  services = [];
  await rm(dir, { recursive: true, force: true });
});

/** Every regular file under `root`, recursively (the admin socket and other specials skipped). */
async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if ((await lstat(path)).isFile()) out.push(path);
  }
  return out;
}

/** Which secrets (by variable name) occur in `text`. */
function leaked(text: string): string[] {
  return Object.entries(SECRETS)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
}

describe("secrets in a full run of perkbridge start", () => {
  it("appear nowhere in stdout, stderr or the state directory", async () => {
    // PaymentHub knows another key: every lookup gets 401.
    const emulator: PaymentHubEmulator = createPaymentHubEmulator({ apiKey: "phk_the_platform_expects_another", webhookSecret: SECRETS.PH_WEBHOOK, webhookRetryScale: 0.01 });
    await emulator.start();
    services.push(emulator);
    // Discord knows another token: the login is refused.
    const discord: DiscordEmulator = createDiscordEmulator({
      botToken: "another-bot-token",
      guilds: [{ id: GUILD, name: "Test", ownerId: "100000000000000900", roles: [{ id: ROLE, name: "Premium", position: 1, permissions: "0" }], members: [{ user: { id: USER, username: "alice" }, roles: [] }], botMemberRoles: [] }],
    });
    await discord.start();
    services.push(discord);
    // One Minecraft server takes the password, the other expects another one.
    const rcon: RconEmulator = await createRconEmulator({ password: SECRETS.RCON_PASSWORD, world: createMinecraftWorld({ groups: ["vip"], profiles: [{ name: "alice_mc", uuid: UUID }] }) });
    const rconCreative: RconEmulator = await createRconEmulator({ password: "the-server-has-another-password", world: createMinecraftWorld({ groups: ["vip"] }) });
    const receiver: HttpReceiver = await createHttpReceiver({ secret: SECRETS.SHOP_SECRET });
    services.push(rcon, rconCreative, receiver);
    const closedPort = await freePort();

    const stateDir = join(dir, "state");
    const config = join(dir, "perkbridge.yaml");
    await writeFile(
      config,
      `
state: { dir: ${JSON.stringify(stateDir)} }
server: { host: 127.0.0.1, port: 0 }
log: { level: trace, format: json }
sources:
  paymenthub:
    base_url: ${emulator.url}
    api_key: \${PH_KEY}
    webhook_secrets: ["\${PH_WEBHOOK}", "\${PH_WEBHOOK_OLD}"]
    request_timeout: 2s
targets:
  discord:
    token: \${DISCORD_TOKEN}
    api_base: ${discord.url}/api
    guilds: [{ id: "${GUILD}" }]
  minecraft:
    servers:
      survival:
        rcon: { host: 127.0.0.1, port: ${rcon.port}, password: "\${RCON_PASSWORD}" }
        command_timeout: 2s
      creative:
        rcon: { host: 127.0.0.1, port: ${rconCreative.port}, password: "\${RCON_PASSWORD_CREATIVE}" }
        command_timeout: 2s
  http:
    endpoints:
      shop: { url: ${JSON.stringify(receiver.url)}, secret: "\${SHOP_SECRET}", timeout: 2s }
      down: { url: "http://127.0.0.1:${closedPort}/perks", secret: "\${DOWN_SECRET}", timeout: 2s }
plans:
  plan_premium:
    perks:
      - discord: { guild: "${GUILD}", role: "${ROLE}" }
      - minecraft: { server: survival, group: vip }
      - minecraft: { server: creative, group: vip }
      - http: { endpoint: shop }
      - http: { endpoint: down }
`,
    );
    const proc = spawnPerkbridge(["start", "--config", config], { cwd: dir, env: SECRETS });
    const url = String((await proc.waitForLog("listening"))["url"]);
    emulator.setWebhookUrl(`${url}/webhooks/paymenthub`);

    // A purchase with every identity: grants go to Discord, both Minecraft servers and both endpoints.
    emulator.addMember({ id: "mem_1", email: "alice@example.com", plan_id: "plan_premium", status: "active", metadata: { discord_id: USER, minecraft_uuid: UUID, minecraft_name: "alice_mc" } });
    // A cancellation carries no member: the lookup gets 401.
    emulator.addMember({ id: "mem_2", email: "bob@example.com", plan_id: "plan_premium", status: "active", metadata: {} }, { emit: false });
    emulator.cancelSubscription("mem_2");
    // Forged (signed with a wrong secret, and unsigned) and invalid webhooks.
    const forgedBody = JSON.stringify({ id: "evt_forged", type: "member.created", created: new Date().toISOString(), data: { member: { id: "mem_x" } } });
    expect((await emulator.sendRaw(forgedBody, { "content-type": "application/json", "x-paymenthub-signature": signPayload(forgedBody, "not-the-secret") })) as { status: number }).toMatchObject({ status: 401 });
    expect((await emulator.sendRaw(forgedBody, { "content-type": "application/json" })) as { status: number }).toMatchObject({ status: 401 });
    const invalid = "{not json";
    expect((await emulator.sendRaw(invalid, { "content-type": "application/json", "x-paymenthub-signature": signPayload(invalid, SECRETS.PH_WEBHOOK_OLD) })) as { status: number }).toMatchObject({ status: 400 });

    const logged = (msg: string): boolean => proc.logs().some((e) => e.msg === msg);
    await until(() => receiver.held.size === 1, "the shop grant");
    await until(() => rcon.commands.some((c) => c.includes("parent add vip")), "the survival grant over RCON");
    await until(() => rconCreative.logins.refused > 0, "the refused RCON login");
    await until(() => logged("discord login failed; the discord lane waits"), "the refused Discord login");
    await until(() => emulator.calls.some((c) => c.status === 401), "a 401 from PaymentHub");
    await until(() => logged("member lookup failed; will try again"), "the failed lookup in the log");
    await emulator.settled();

    expect(await proc.stop(), proc.stderr()).toBe(0);
    const output = proc.stdout() + proc.stderr();
    // The run said enough to leak if it could: errors of every kind are in the log.
    expect(output).toContain("webhook rejected: signature does not verify");
    expect(output).toContain("webhook rejected: invalid payload");
    expect(proc.logs().filter((e) => Number(e["level"]) >= 40).length).toBeGreaterThan(3);

    expect(leaked(output)).toEqual([]);
    const files = await filesUnder(stateDir);
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) expect({ file, leaked: leaked(await readFile(file, "utf8")) }).toEqual({ file, leaked: [] });
  });

  it("appear nowhere in what an invalid configuration prints", async () => {
    const cases = [
      // Literal secrets of the wrong type, and environment values in fields that are not secret.
      `
server: { port: "\${PH_KEY}" }
sources:
  paymenthub:
    api_key: ["${SECRETS.PH_KEY}"]
    webhook_secrets: { primary: "${SECRETS.PH_WEBHOOK}" }
targets:
  discord: { token: { value: "${SECRETS.DISCORD_TOKEN}" }, api_base: "\${SHOP_SECRET}" }
  minecraft: { servers: { survival: { rcon: { password: ["${SECRETS.RCON_PASSWORD}"], port: "\${RCON_PASSWORD_CREATIVE}" } } } }
  http: { endpoints: { shop: { url: "\${DOWN_SECRET}", secret: ["${SECRETS.SHOP_SECRET}"] } } }
`,
      // A YAML syntax error on the line of a literal secret.
      `
sources:
  paymenthub:
    api_key: "${SECRETS.PH_KEY}
    webhook_secrets: ['${SECRETS.PH_WEBHOOK}
`,
    ];
    for (const [i, text] of cases.entries()) {
      const config = join(dir, `invalid-${i}.yaml`);
      await writeFile(config, text);
      const proc = spawnPerkbridge(["start", "--config", config], { cwd: dir, env: SECRETS });
      expect((await proc.exited).code).toBe(2);
      expect(proc.stderr()).toContain(config);
      expect({ case: i, leaked: leaked(proc.stdout() + proc.stderr()) }).toEqual({ case: i, leaked: [] });
    }
  });
});
