// The Minecraft issue end to end: a PaymentHub webhook reaches the real daemon, the reconcile
// engine plans and queues, and the Minecraft lane applies over RCON to emulated servers whose
// LuckPerms, whitelist and command log are what the assertions read.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DISCORD, MC_SECRETS, mcMember, SERVERS, startMinecraftHarness, type MinecraftHarness, type ServerName } from "./minecraft-harness.js";

const BOB = { name: "bob", uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5" };
const ALICE = { name: "alice", uuid: "853c80ef-3c37-49fd-aa49-938b674adae6" };
const USER = { bob: "100000000000000402", alice: "100000000000000401" };
const bobSubject = `minecraft:${BOB.uuid}`;

let h: MinecraftHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const plans = (perks: string): string => `
plans:
  plan_premium:
    perks:
${perks}
`;

const giveCommands = (harness: MinecraftHarness, server: ServerName): string[] => harness.commands(server).filter((c) => c.startsWith("give "));
const listPolls = (harness: MinecraftHarness, server: ServerName): number => harness.servers[server].rcon.commands.filter((c) => c.startsWith("list")).length;

/** Waits until `server` has been polled `n` more times, so a change of who is online has been seen. */
async function polled(harness: MinecraftHarness, server: ServerName, n = 2): Promise<void> {
  const target = listPolls(harness, server) + n;
  await harness.waitFor(`${n} list polls of ${server}`, () => listPolls(harness, server) >= target);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

describe("minecraft end to end (PaymentHub webhook → daemon → RCON emulators)", () => {
  it("grants on two servers and in Discord on purchase, and revokes everywhere on cancellation", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      discordMembers: [{ id: USER.bob, username: "bob" }],
      plansYaml: plans(`
      - minecraft: { server: lobby, group: vip }
      - minecraft: { server: survival, group: vip }
      - minecraft: { server: survival, whitelist: true }
      - discord: { guild: "${DISCORD.guild}", role: "${DISCORD.premiumRole}" }`),
    });
    const { lobby, survival } = h.servers;
    h.emulator.addMember(mcMember("mem_1", { minecraft_uuid: BOB.uuid, minecraft_name: "bob", discord_id: USER.bob }));
    await h.settle();
    expect(lobby.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default", "vip"]);
    expect(survival.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default", "vip"]);
    expect([...survival.world.whitelist.values()]).toEqual(["bob"]);
    expect(lobby.world.whitelist.size).toBe(0);
    expect(h.discord?.memberRoles(DISCORD.guild, USER.bob)).toEqual([DISCORD.premiumRole]);
    expect(h.commands("lobby")).toEqual([`lp user ${BOB.uuid} parent add vip`]);
    expect([...h.commands("survival")].sort()).toEqual([`lp user ${BOB.uuid} parent add vip`, "whitelist add bob"]);
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["done", "done", "done"]);

    h.emulator.cancelSubscription("mem_1", "requested");
    await h.settle();
    expect(lobby.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default"]);
    expect(survival.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default"]);
    expect(survival.world.whitelist.size).toBe(0);
    expect(h.discord?.memberRoles(DISCORD.guild, USER.bob)).toEqual([]);
    expect(h.commands("lobby")).toEqual([`lp user ${BOB.uuid} parent add vip`, `lp user ${BOB.uuid} parent remove vip`]);
    expect(h.commands("survival").slice(2).sort()).toEqual([`lp user ${BOB.uuid} parent remove vip`, "whitelist remove bob"]);
    expect(h.engine.grantsOf("paymenthub:mem_1")).toEqual([]);
  });

  it("whitelists as soon as the member record gains the Minecraft name, without waiting for the player", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      plansYaml: plans(`
      - minecraft: { server: survival, whitelist: true }`),
    });
    const { survival } = h.servers;
    h.emulator.addMember(mcMember("mem_n", { minecraft_uuid: BOB.uuid }));
    await h.settle();
    expect(survival.world.whitelist.size).toBe(0);
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["waiting"]);

    h.emulator.updateMember("mem_n", { metadata: { minecraft_uuid: BOB.uuid, minecraft_name: "bob" } });
    await h.settle();
    expect([...survival.world.whitelist.values()]).toEqual(["bob"]);
    expect(h.commands("survival")).toEqual(["whitelist add bob"]);
  });

  it("sends nothing built from injected metadata: a newline in a name, a UUID with spaces or a command, a 40-character name", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      plansYaml: plans(`
      - minecraft: { server: lobby, group: vip }
      - minecraft: { server: survival, whitelist: true }`),
    });
    const u1 = "11111111-1111-4111-8111-111111111111";
    const u3 = "33333333-3333-4333-8333-333333333333";
    h.emulator.addMember(mcMember("mem_newline", { minecraft_uuid: u1, minecraft_name: "bob\nop eve" }));
    h.emulator.addMember(mcMember("mem_spaces", { minecraft_uuid: "069a79f4 44e9 4726 a5be fca90e38aaf5", minecraft_name: "carol" }));
    h.emulator.addMember(mcMember("mem_long", { minecraft_uuid: u3, minecraft_name: "a".repeat(40) }));
    h.emulator.addMember(mcMember("mem_nested", { minecraft: { uuid: `${BOB.uuid}\nop eve`, name: "dave" } }));
    await h.settle();

    const sent = SERVERS.flatMap((s) => h?.servers[s].rcon.commands ?? []);
    for (const command of sent) expect(command).toMatch(/^[\x20-\x7e]+$/);
    expect(sent.join("|")).not.toMatch(/op eve|aaaaaaaaaaaaaaaaa|a5be fca9|carol|dave/);
    // Only the group perks of the members whose UUID is valid went out; no whitelist command at all.
    expect([...h.commands("lobby")].sort()).toEqual([`lp user ${u1} parent add vip`, `lp user ${u3} parent add vip`]);
    expect(h.commands("survival")).toEqual([]);
    expect(h.servers.survival.world.whitelist.size).toBe(0);
    // The refused names are not identities: the whitelist entries wait for a name, and the members without a valid UUID have no Minecraft action.
    for (const uuid of [u1, u3]) {
      const whitelist = h.actionsOf(`minecraft:${uuid}`).find((r) => r.action.perk.kind === "whitelist");
      expect(whitelist).toMatchObject({ state: "waiting", last: { kind: "not-linked" } });
      expect(whitelist?.action.identities.minecraft).toEqual({ uuid });
    }
    expect([...h.engine.queue.all()].filter((r) => r.action.members.some((m) => m === "paymenthub:mem_spaces" || m === "paymenthub:mem_nested"))).toEqual([]);
  });

  it("never records a failing reply as granted: a missing group parks the action with the reason and the fix", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      plansYaml: plans(`
      - minecraft: { server: survival, group: mvp }`),
    });
    h.emulator.addMember(mcMember("mem_1", { minecraft_uuid: BOB.uuid }));
    await h.settle();
    const [rec] = h.actionsOf(bobSubject);
    expect(rec).toMatchObject({
      state: "parked",
      last: { kind: "failed", reason: "the group mvp does not exist on the server", fix: expect.stringContaining("lp creategroup mvp") },
    });
    expect(h.servers.survival.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default"]);
    expect(h.commands("survival")).toEqual([`lp user ${BOB.uuid} parent add mvp`]);
    expect(h.logs.join("")).toMatch(/action parked: needs the operator/);

    // Once the admin creates the group, a retry grants it.
    h.servers.survival.world.luckperms.groups.add("mvp");
    expect(await h.engine.retry({ target: "minecraft" })).toBe(1);
    await h.settle();
    expect(h.servers.survival.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default", "mvp"]);
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["done"]);
  });

  it("runs an offline player's online_only `once` command when they come online, and never twice, across restarts", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      plansYaml: plans(`
      - minecraft: { server: survival, command: welcome_kit, grant: "give {name} diamond 3", once: true, online_only: true }`),
    });
    const { survival } = h.servers;
    h.emulator.addMember(mcMember("mem_1", { minecraft_uuid: BOB.uuid, minecraft_name: "bob" }));
    await h.settle();
    expect(h.actionsOf(bobSubject)).toEqual([expect.objectContaining({ state: "waiting", once: true, last: { kind: "target-missing", reason: "player offline" } })]);
    expect(giveCommands(h, "survival")).toEqual([]);

    // Still waiting after a restart, and still nothing sent.
    await h.restart();
    await polled(h, "survival");
    await h.settle();
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["waiting"]);
    expect(giveCommands(h, "survival")).toEqual([]);

    survival.world.setOnline("bob", true);
    await h.waitFor("the welcome kit", () => h?.actionsOf(bobSubject)[0]?.state === "done");
    expect(giveCommands(h, "survival")).toEqual(["give bob diamond 3"]);

    // A restart with the player online, leaving and coming back, and a new webhook: nothing more.
    await h.restart();
    await polled(h, "survival");
    survival.world.setOnline("bob", false);
    await polled(h, "survival");
    survival.world.setOnline("bob", true);
    await polled(h, "survival");
    h.emulator.updateMember("mem_1", { name: "Bob B." });
    await h.settle();
    expect(giveCommands(h, "survival")).toEqual(["give bob diamond 3"]);
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["done"]);
  });

  it("learns a missing name when the player is seen online on another server, then whitelists them", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      plansYaml: plans(`
      - minecraft: { server: survival, whitelist: true }`),
    });
    h.emulator.addMember(mcMember("mem_1", { minecraft_uuid: BOB.uuid }));
    await h.settle();
    expect(h.actionsOf(bobSubject)).toEqual([expect.objectContaining({ state: "waiting", last: expect.objectContaining({ kind: "not-linked" }) })]);
    expect(h.commands("survival")).toEqual([]);

    h.servers.lobby.world.setOnline("bob", true);
    await h.waitFor("the whitelist entry", () => h?.servers.survival.world.whitelist.has("bob") === true);
    await h.settle();
    expect(h.commands("survival")).toEqual(["whitelist add bob"]);
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["done"]);
  });

  it("holds a down server's work without spending attempts while Discord keeps flowing, and converges once it is back", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB, ALICE],
      discordMembers: [
        { id: USER.bob, username: "bob" },
        { id: USER.alice, username: "alice" },
      ],
      plansYaml: plans(`
      - minecraft: { server: survival, group: vip }
      - minecraft: { server: lobby, group: vip }
      - discord: { guild: "${DISCORD.guild}", role: "${DISCORD.premiumRole}" }`),
    });
    const { survival, lobby } = h.servers;
    await survival.rcon.setRefusing(true);
    h.emulator.addMember(mcMember("mem_bob", { minecraft_uuid: BOB.uuid, discord_id: USER.bob }));
    await h.waitFor("bob's Discord role", () => h?.discord?.memberRoles(DISCORD.guild, USER.bob)?.length === 1);
    h.emulator.addMember(mcMember("mem_alice", { minecraft_uuid: ALICE.uuid, discord_id: USER.alice }));
    await h.waitFor("alice's Discord role", () => h?.discord?.memberRoles(DISCORD.guild, USER.alice)?.length === 1);
    await h.settle();

    for (const player of [BOB, ALICE]) {
      const held = h.actionsOf(`minecraft:${player.uuid}`).find((r) => r.action.perk.scope === "survival");
      expect(held).toMatchObject({ state: "queued", attempts: 0, last: { kind: "failed", reason: expect.stringMatching(/^server survival is down/) } });
      expect(lobby.world.luckperms.parentsOf(player.uuid)).toEqual(["default", "vip"]);
      expect(survival.world.luckperms.parentsOf(player.uuid)).toEqual(["default"]);
    }
    expect(h.logs.join("")).toMatch(/minecraft server survival is down/);

    await new Promise((resolve) => setTimeout(resolve, 500));
    await survival.rcon.setRefusing(false);
    await h.waitFor(
      "survival to converge",
      () => [BOB, ALICE].every((p) => survival.world.luckperms.parentsOf(p.uuid).includes("vip")),
      15_000,
    );
    await h.settle();
    expect([...h.engine.queue.all()].filter((r) => r.state !== "done")).toEqual([]);
    expect(h.commands("survival").sort()).toEqual([`lp user ${ALICE.uuid} parent add vip`, `lp user ${BOB.uuid} parent add vip`].sort());
    expect(h.logs.join("")).toMatch(/minecraft server survival is up/);
  });

  it("reads a `list uuids` reply longer than one RCON packet whole: the last player listed is seen online", async () => {
    const crowd = Array.from({ length: 200 }, (_, i) => ({
      name: `player_${String(i).padStart(3, "0")}`,
      uuid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
    }));
    h = await startMinecraftHarness({
      profiles: [...crowd, BOB],
      plansYaml: plans(`
      - minecraft: { server: survival, command: welcome_kit, grant: "give {name} diamond 3", once: true, online_only: true }`),
    });
    const { survival } = h.servers;
    for (const p of [...crowd, BOB]) survival.world.setOnline(p.name, true);
    expect(Buffer.byteLength(survival.world.execute("list uuids"))).toBeGreaterThan(2 * 4096);
    await polled(h, "survival");
    h.emulator.addMember(mcMember("mem_1", { minecraft_uuid: BOB.uuid, minecraft_name: "bob" }));
    await h.settle();
    expect(giveCommands(h, "survival")).toEqual(["give bob diamond 3"]);
    expect(h.actionsOf(bobSubject).map((r) => r.state)).toEqual(["done"]);
  });

  it("reports a wrong RCON password clearly (parked with a fix, server refused), never the password itself", async () => {
    h = await startMinecraftHarness({
      profiles: [BOB],
      wrongPassword: ["lobby"],
      status: ["lobby"],
      plansYaml: plans(`
      - minecraft: { server: lobby, group: vip }
      - minecraft: { server: survival, group: vip }`),
    });
    h.emulator.addMember(mcMember("mem_1", { minecraft_uuid: BOB.uuid }));
    await h.settle();
    const lobbyAction = h.actionsOf(bobSubject).find((r) => r.action.perk.scope === "lobby");
    expect(lobbyAction).toMatchObject({
      state: "parked",
      last: { kind: "failed", reason: expect.stringMatching(/refused the password/), fix: expect.stringMatching(/RCON password of minecraft server lobby/) },
    });
    expect(h.servers.lobby.rcon.logins.refused).toBeGreaterThan(0);
    expect(h.servers.lobby.rcon.commands).toEqual([]);
    expect(h.servers.survival.world.luckperms.parentsOf(BOB.uuid)).toEqual(["default", "vip"]);
    const logs = h.logs.join("");
    expect(logs).toMatch(/minecraft server lobby is refused/);
    expect(logs).toMatch(/refused the password/);

    await h.daemon.stop();
    const state = (await Promise.all((await filesUnder(h.stateDir)).map((f) => readFile(f, "utf8").catch(() => "")))).join("\n");
    expect(state).toMatch(/refused the password/);
    for (const secret of [h.configuredPasswords.lobby, MC_SECRETS.rcon.lobby, MC_SECRETS.rcon.survival]) {
      expect(logs).not.toContain(secret);
      expect(state).not.toContain(secret);
    }
  });
});
