import { Client, Events, GatewayIntentBits, type GuildMember } from "discord.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createDiscordEmulator, type DiscordEmulator } from "../../src/sandbox/discord/create-discord-emulator.js";

const TOKEN = "emulated-bot-token";
const GUILD = "200000000000000100";
const ROLE = { low: "200000000000000301", bot: "200000000000000310", high: "200000000000000320", managed: "200000000000000330" };
const USER = { ann: "200000000000000401", ben: "200000000000000402", cy: "200000000000000403" };

let emulator: DiscordEmulator;
let clients: Client[] = [];

async function startEmulator(options: { guildMembers?: boolean; botPermissions?: string } = {}): Promise<DiscordEmulator> {
  emulator = createDiscordEmulator({
    botToken: TOKEN,
    privilegedIntents: { guildMembers: options.guildMembers ?? true },
    guilds: [
      {
        id: GUILD,
        name: "Emulated",
        ownerId: USER.cy,
        roles: [
          { id: ROLE.low, name: "Low", position: 1, permissions: "0" },
          { id: ROLE.managed, name: "Booster", position: 2, permissions: "0", managed: true },
          { id: ROLE.bot, name: "Bot", position: 3, permissions: options.botPermissions ?? (1n << 28n).toString() },
          { id: ROLE.high, name: "High", position: 4, permissions: "0" },
        ],
        members: [
          { user: { id: USER.ann, username: "ann" }, roles: [] },
          { user: { id: USER.ben, username: "ben" }, roles: [ROLE.low] },
          { user: { id: USER.cy, username: "cy" }, roles: [] },
        ],
        botMemberRoles: [ROLE.bot],
      },
    ],
  });
  await emulator.start();
  return emulator;
}

afterEach(async () => {
  for (const client of clients) await client.destroy();
  clients = [];
  await emulator.close();
});

function api(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set("authorization", `Bot ${init.token ?? TOKEN}`);
  return fetch(`${emulator.url}/api/v10${path}`, { ...init, headers });
}

async function login(intents = [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMembers]): Promise<Client<true>> {
  const client = new Client({ intents, rest: { api: `${emulator.url}/api` } });
  clients.push(client);
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(TOKEN);
  await ready;
  return client as Client<true>;
}

describe("Discord emulator REST", () => {
  it("checks the bot token and points discord.js at its own gateway", async () => {
    await startEmulator();
    expect((await api("/gateway/bot", { token: "nope" })).status).toBe(401);
    const gateway = (await (await api("/gateway/bot")).json()) as { url: string; shards: number };
    expect(gateway).toMatchObject({ url: emulator.gatewayUrl, shards: 1 });
    expect(gateway.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/gateway$/);
  });

  it("answers role edits like Discord: 204, 10007, 10011, 50013 for hierarchy and managed roles", async () => {
    await startEmulator();
    const put = (userId: string, roleId: string) => api(`/guilds/${GUILD}/members/${userId}/roles/${roleId}`, { method: "PUT", headers: { "x-audit-log-reason": encodeURIComponent("perkbridge: test ✓") } });
    expect((await put(USER.ann, ROLE.low)).status).toBe(204);
    expect(emulator.memberRoles(GUILD, USER.ann)).toEqual([ROLE.low]);
    expect(emulator.calls.at(-1)).toMatchObject({ method: "PUT", status: 204, auditLogReason: "perkbridge: test ✓" });

    const cases: [string, string, number, number, string][] = [
      ["200000000000000499", ROLE.low, 404, 10007, "Unknown Member"],
      [USER.ann, "200000000000000399", 404, 10011, "Unknown Role"],
      [USER.ann, ROLE.high, 403, 50013, "Missing Permissions"],
      [USER.ann, ROLE.bot, 403, 50013, "Missing Permissions"],
      [USER.ann, ROLE.managed, 403, 50013, "Missing Permissions"],
      [USER.ann, GUILD, 403, 50013, "Missing Permissions"],
    ];
    for (const [userId, roleId, status, code, message] of cases) {
      const response = await put(userId, roleId);
      expect([response.status, await response.json()]).toEqual([status, { code, message }]);
    }
    expect((await api(`/guilds/${GUILD}/members/${USER.ben}/roles/${ROLE.low}`, { method: "DELETE" })).status).toBe(204);
    expect(emulator.memberRoles(GUILD, USER.ben)).toEqual([]);
  });

  it("refuses every role edit when the bot lacks Manage Roles", async () => {
    await startEmulator({ botPermissions: "0" });
    const response = await api(`/guilds/${GUILD}/members/${USER.ann}/roles/${ROLE.low}`, { method: "PUT" });
    expect(response.status).toBe(403);
    expect(emulator.memberRoles(GUILD, USER.ann)).toEqual([]);
  });

  it("pages members by snowflake and needs the Server Members intent to list them", async () => {
    await startEmulator();
    const first = (await (await api(`/guilds/${GUILD}/members?limit=2`)).json()) as { user: { id: string } }[];
    expect(first.map((member) => member.user.id)).toEqual([USER.ann, USER.ben]);
    const next = (await (await api(`/guilds/${GUILD}/members?limit=1000&after=${USER.ben}`)).json()) as { user: { id: string } }[];
    expect(next.map((member) => member.user.id)).toEqual([USER.cy, "900000000000000001"]);
    await emulator.close();
    await startEmulator({ guildMembers: false });
    expect((await api(`/guilds/${GUILD}/members?limit=2`)).status).toBe(403);
  });

  it("injects 429 with the headers discord.js reads, then 5xx, then recovers", async () => {
    await startEmulator();
    emulator.rateLimitNext(1, 0.5, true);
    emulator.failNext(1, 503);
    const limited = await api("/users/@me");
    expect(limited.status).toBe(429);
    expect(Object.fromEntries(["retry-after", "x-ratelimit-remaining", "x-ratelimit-reset-after", "x-ratelimit-global", "x-ratelimit-scope"].map((name) => [name, limited.headers.get(name)]))).toEqual({
      "retry-after": "0.5",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset-after": "0.5",
      "x-ratelimit-global": "true",
      "x-ratelimit-scope": "global",
    });
    expect(await limited.json()).toEqual({ message: "You are being rate limited.", retry_after: 0.5, global: true });
    expect((await api("/users/@me")).status).toBe(503);
    expect((await api("/users/@me")).status).toBe(200);
  });
});

describe("Discord emulator gateway with the real discord.js client", () => {
  it("logs discord.js in, hands it every guild, and emits member events", async () => {
    await startEmulator();
    const client = await login();
    const guild = client.guilds.cache.get(GUILD);
    expect(guild?.name).toBe("Emulated");
    expect(guild?.roles.cache.get(ROLE.high)?.name).toBe("High");
    expect(emulator.sessions).toBe(1);

    const joined: string[] = [];
    const left: string[] = [];
    const updated: [string[], string[]][] = [];
    client.on(Events.GuildMemberAdd, (member) => void joined.push(member.id));
    client.on(Events.GuildMemberRemove, (member) => void left.push(member.id));
    client.on(Events.GuildMemberUpdate, (before, after) => void updated.push([[...before.roles.cache.keys()], [...(after as GuildMember).roles.cache.keys()]]));

    emulator.addMember(GUILD, { id: "200000000000000404", username: "dee" }, [ROLE.low]);
    emulator.setMemberRoles(GUILD, USER.ann, [ROLE.low]);
    await client.guilds.cache.get(GUILD)?.members.addRole({ user: USER.ben, role: ROLE.high }).catch(() => undefined);
    emulator.removeMember(GUILD, USER.ben);
    await vi.waitFor(() => expect(left).toEqual([USER.ben]));
    expect(joined).toEqual(["200000000000000404"]);
    expect(updated).toEqual([[[GUILD], expect.arrayContaining([GUILD, ROLE.low])]]);
  });

  it("acknowledges heartbeats", async () => {
    emulator = createDiscordEmulator({ botToken: TOKEN, heartbeatIntervalMs: 20, guilds: [] });
    await emulator.start();
    const client = await login([GatewayIntentBits.Guilds]);
    await vi.waitFor(() => expect(client.ws.ping).toBeGreaterThanOrEqual(0));
  });

  it("closes the gateway with 4014 when the Server Members intent is not enabled", async () => {
    await startEmulator({ guildMembers: false });
    const client = new Client({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMembers], rest: { api: `${emulator.url}/api` } });
    clients.push(client);
    const closes: number[] = [];
    client.on(Events.ShardDisconnect, (event) => void closes.push(event.code));
    await expect(client.login(TOKEN)).rejects.toThrow();
    expect(closes).toEqual([4014]);
    // Without the privileged intent the same login works.
    const plain = await login([GatewayIntentBits.Guilds]);
    expect(plain.guilds.cache.has(GUILD)).toBe(true);
  });

  it("delivers slash commands to the bot and captures its callback", async () => {
    await startEmulator();
    const client = await login();
    await client.application.commands.set([{ name: "perks", description: "Show perks" }], GUILD);
    expect(emulator.commands(GUILD)).toEqual(["perks"]);
    client.on(Events.InteractionCreate, (interaction) => {
      if (interaction.isChatInputCommand()) void interaction.reply({ content: `hi ${interaction.user.username}`, flags: 64 });
    });
    expect(await emulator.sendInteraction(GUILD, USER.ann, "perks")).toEqual({ type: 4, data: expect.objectContaining({ content: "hi ann", flags: 64 }) });
    expect(() => emulator.sendInteraction(GUILD, USER.ann, "unknown")).toThrow(/not registered/);
  });
});
