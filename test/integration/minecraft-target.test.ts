import { afterEach, describe, expect, it } from "vitest";
import {
  createMinecraftTarget,
  type MinecraftServerConfig,
  type MinecraftTarget,
  type PlayerOnlineEvent,
} from "../../src/adapters/minecraft/create-minecraft-target.js";
import type { MinecraftIdentity } from "../../src/core/member.js";
import type { Perk } from "../../src/core/perk.js";
import type { PerkAction } from "../../src/core/ports.js";
import { createRconEmulator, type RconEmulator } from "../../src/sandbox/minecraft/create-rcon-emulator.js";
import { createStatusEmulator } from "../../src/sandbox/minecraft/create-status-emulator.js";
import { createMinecraftWorld, type MinecraftWorld } from "../../src/sandbox/minecraft/minecraft-world.js";

const PASSWORD = "rcon-pass-Z9";
const BOB = { name: "bob", uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5" };
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Fixture {
  readonly world: MinecraftWorld;
  readonly rcon: RconEmulator;
  readonly config: MinecraftServerConfig;
}

async function server(options: { status?: boolean; groups?: string[] } = {}): Promise<Fixture> {
  const world = createMinecraftWorld({ groups: options.groups ?? ["vip"], profiles: [BOB] });
  const rcon = await createRconEmulator({ password: PASSWORD, world });
  cleanup.push(() => rcon.close());
  let status: MinecraftServerConfig["status"];
  if (options.status) {
    const endpoint = await createStatusEmulator({ world });
    cleanup.push(() => endpoint.close());
    status = { host: endpoint.host, port: endpoint.port };
  }
  const config: MinecraftServerConfig = {
    rcon: { host: rcon.host, port: rcon.port, password: PASSWORD },
    ...(status === undefined ? {} : { status }),
    commandTimeoutMs: 2000,
    listIntervalMs: 0,
    readBackDelayMs: 20,
    groups: options.groups ?? ["vip"],
  };
  return { world, rcon, config };
}

async function target(servers: Record<string, MinecraftServerConfig>): Promise<MinecraftTarget> {
  const t = await createMinecraftTarget({ servers });
  cleanup.push(() => t.stop());
  return t;
}

let seq = 0;
function action(
  type: "grant" | "revoke",
  perk: Omit<Perk, "target">,
  minecraft: MinecraftIdentity = BOB,
): PerkAction {
  seq += 1;
  return {
    id: `act-${seq}`,
    type,
    subject: `minecraft:${minecraft.uuid ?? "?"}`,
    perk: { target: "minecraft", ...perk },
    members: ["paymenthub:mem_1"],
    reason: "plan_premium active",
    identities: { minecraft },
  };
}

const vip = { scope: "survival", kind: "group", value: "vip" } as const;
const whitelist = { scope: "survival", kind: "whitelist", value: "" } as const;

describe("minecraft target", () => {
  it("grants and revokes a LuckPerms group, recognising what was already so", async () => {
    const s = await server();
    const t = await target({ survival: s.config });
    expect(await t.apply(action("grant", vip))).toEqual({ kind: "granted" });
    expect(s.world.luckperms.parentsOf(BOB.uuid)).toContain("vip");
    expect(await t.apply(action("grant", vip))).toEqual({ kind: "granted", preExisting: true });
    expect(await t.apply(action("revoke", vip))).toEqual({ kind: "revoked" });
    expect(await t.apply(action("revoke", vip))).toEqual({ kind: "revoked", wasAbsent: true });
    expect(s.rcon.commands).toEqual([
      `lp user ${BOB.uuid} parent add vip`,
      `lp user ${BOB.uuid} parent add vip`,
      `lp user ${BOB.uuid} parent remove vip`,
      `lp user ${BOB.uuid} parent remove vip`,
    ]);
  });

  it("whitelists by name, and waits (not-linked) while the name is unknown", async () => {
    const s = await server();
    const t = await target({ survival: s.config });
    expect(await t.apply(action("grant", whitelist, { uuid: BOB.uuid }))).toMatchObject({ kind: "not-linked" });
    expect(s.rcon.commands).toEqual([]);
    expect(await t.apply(action("grant", whitelist))).toEqual({ kind: "granted" });
    expect(await t.apply(action("grant", whitelist))).toEqual({ kind: "granted", preExisting: true });
    expect(await t.apply(action("revoke", whitelist))).toEqual({ kind: "revoked" });
    expect(await t.apply(action("revoke", whitelist))).toEqual({ kind: "revoked", wasAbsent: true });
  });

  it("learns a name from `list uuids` once the player is seen online", async () => {
    const s = await server();
    const t = await target({ survival: s.config });
    s.world.setOnline("bob", true);
    await t.refreshPlayers("survival");
    expect(t.knownName(BOB.uuid)).toBe("bob");
    expect(await t.apply(action("grant", whitelist, { uuid: BOB.uuid }))).toEqual({ kind: "granted" });
    expect(s.rcon.commands).toContain("whitelist add bob");
  });

  it.each([
    ["a name with a newline", { uuid: BOB.uuid, name: "bob\nop eve" }, whitelist],
    ["a 40-character name", { uuid: BOB.uuid, name: "a".repeat(40) }, whitelist],
    ["a UUID with spaces", { uuid: "069a79f4 44e9 4726 a5be fca90e38aaf5", name: "bob" }, vip],
    ["a UUID followed by a command", { uuid: `${BOB.uuid}\nop eve`, name: "bob" }, vip],
  ])("refuses %s and sends nothing", async (_label, identity, perk) => {
    const s = await server();
    const t = await target({ survival: s.config });
    const result = await t.apply(action("grant", perk, identity));
    expect(result).toMatchObject({ kind: "failed", retryable: false });
    expect(result.kind === "failed" && result.reason).toMatch(/refused \{(name|uuid)\}/);
    expect(result.kind === "failed" && result.fix).toBeTruthy();
    expect(s.rcon.commands).toEqual([]);
  });

  it("never records a failing reply as granted: a missing group is terminal with a fix", async () => {
    const s = await server();
    const t = await target({ survival: s.config });
    const result = await t.apply(action("grant", { ...vip, value: "mvp" }));
    expect(result).toMatchObject({ kind: "failed", retryable: false });
    expect(result.kind === "failed" && result.fix).toContain("lp creategroup mvp");
    expect(s.rcon.commands).toEqual([`lp user ${BOB.uuid} parent add mvp`]);
  });

  it("reports an unknown command (LuckPerms missing) as terminal", async () => {
    const s = await server();
    const t = await target({ survival: { ...s.config, commands: { group_add: "perms user {uuid} add {group}" } } });
    const result = await t.apply(action("grant", vip));
    expect(result).toMatchObject({ kind: "failed", retryable: false, reason: "the server does not know this command" });
  });

  it("runs an online_only command once the player comes online, and only once", async () => {
    const s = await server();
    const t = await target({ survival: s.config });
    const give: Omit<Perk, "target"> = {
      scope: "survival",
      kind: "command",
      value: "starter_kit",
      params: { grant: "give {name} diamond 3", online_only: true, once: true },
    };
    expect(t.isOnce({ target: "minecraft", ...give })).toBe(true);
    expect(t.isOnce({ target: "minecraft", ...vip })).toBe(false);
    const pending = action("grant", give);
    expect(await t.apply(pending)).toEqual({ kind: "target-missing", reason: "player offline" });
    expect(s.rcon.commands.filter((c) => c.startsWith("give"))).toEqual([]);

    // The engine's part, in miniature: re-apply waiting actions when their player shows up.
    const results: unknown[] = [];
    const seen: PlayerOnlineEvent[] = [];
    t.onPlayerOnline((event) => {
      seen.push(event);
      results.push(t.apply(pending));
    });
    s.world.setOnline("bob", true);
    await t.refreshPlayers("survival");
    await t.refreshPlayers("survival"); // still online: no second event
    expect(seen).toEqual([{ server: "survival", name: "bob", uuid: BOB.uuid }]);
    expect(await Promise.all(results)).toEqual([{ kind: "granted" }]);
    expect(s.rcon.commands.filter((c) => c.startsWith("give"))).toEqual(["give bob diamond 3"]);
    expect(t.onlinePlayers("survival")).toEqual([{ name: "bob", uuid: BOB.uuid }]);
  });

  it("answers a down server with a quick retryable 'down' result; another server is unaffected", async () => {
    const up = await server({ status: true });
    const down = await server({ status: true });
    await down.rcon.close();
    const downConfig: MinecraftServerConfig = { ...down.config, status: { host: "127.0.0.1", port: down.rcon.port } };
    const t = await target({ survival: up.config, creative: downConfig });
    const [bad, good] = await Promise.all([t.apply(action("grant", { ...vip, scope: "creative" })), t.apply(action("grant", vip))]);
    expect(bad).toMatchObject({ kind: "failed", retryable: true, targetDown: true });
    expect(bad.kind === "failed" && bad.reason).toMatch(/^server creative is down/);
    expect(good).toEqual({ kind: "granted" });
    expect(t.health("creative")).toMatchObject({ state: "down" });
    expect(t.health("survival")).toMatchObject({ state: "up", version: "Paper 1.21.1" });
    // While down, further actions are held without another connection attempt.
    const again = await t.apply(action("grant", { ...vip, scope: "creative" }));
    expect(again).toMatchObject({ kind: "failed", retryable: true, targetDown: true });
    expect(again.kind === "failed" && again.retryAfterMs).toBeGreaterThan(0);
  });

  it("treats an RCON connection refusal as down when there is no status address", async () => {
    const s = await server();
    await s.rcon.setRefusing(true);
    const t = await target({ survival: s.config });
    const result = await t.apply(action("grant", vip));
    expect(result).toMatchObject({ kind: "failed", retryable: true, targetDown: true });
    expect(t.health("survival")).toMatchObject({ state: "down" });
  });

  it("refuses to record a grant on a wrong password, without the password in the result", async () => {
    const s = await server();
    const t = await target({ survival: { ...s.config, rcon: { ...s.config.rcon, password: "not-the-password" } } });
    const result = await t.apply(action("grant", vip));
    expect(result).toMatchObject({ kind: "failed", retryable: false });
    expect(result.kind === "failed" && result.reason).toContain(`${s.rcon.host}:${s.rcon.port}`);
    expect(JSON.stringify(result)).not.toContain("not-the-password");
    expect(JSON.stringify(t.health("survival"))).not.toContain("not-the-password");
    expect(t.health("survival")).toMatchObject({ state: "refused" });
  });

  it("confirms an empty (async LuckPerms) reply by reading back the user's parents", async () => {
    const s = await server();
    s.rcon.faults.luckpermsAsync = true;
    s.rcon.faults.luckpermsAsyncReadBack = true;
    const t = await target({ survival: s.config });
    expect(await t.apply(action("grant", vip))).toEqual({ kind: "granted" });
    expect(s.rcon.commands).toEqual([`lp user ${BOB.uuid} parent add vip`, `lp user ${BOB.uuid} parent info`]);
    expect(t.health("survival")?.unverified).toBe(0);
  });

  it("does not record a grant the read-back contradicts", async () => {
    const s = await server();
    s.rcon.faults.luckpermsAsync = true;
    s.rcon.faults.luckpermsAsyncReadBack = true;
    s.rcon.faults.luckpermsAsyncDelayMs = 500; // the change lands after the read-back
    const t = await target({ survival: s.config });
    expect(await t.apply(action("grant", vip))).toMatchObject({ kind: "failed", retryable: true });
  });

  it("records an empty reply it cannot read back as sent but unverified", async () => {
    const s = await server();
    s.rcon.faults.luckpermsAsync = true;
    const t = await target({ survival: s.config });
    expect(await t.apply(action("grant", vip))).toEqual({ kind: "granted" });
    expect(t.health("survival")?.unverified).toBe(1);
  });

  it("marks a once command whose connection dropped as outcome unknown, and never resends it", async () => {
    const s = await server();
    s.world.setOnline("bob", true);
    s.rcon.faults.dropOnCommand = 1;
    const t = await target({ survival: s.config });
    const perk = { scope: "survival", kind: "command", value: "kit", params: { grant: "give {name} diamond 1" } } as const;
    const result = await t.apply(action("grant", perk));
    expect(result).toMatchObject({ kind: "failed", retryable: false, outcomeUnknown: true });
    expect(s.rcon.commands).toEqual(["give bob diamond 1"]);
  });

  it("fills {member} and {plan} in custom templates", async () => {
    const s = await server();
    const t = await target({ survival: s.config });
    const perk = {
      scope: "survival",
      kind: "command",
      value: "note",
      params: { grant: "say {name} {member} {plan}", once: false },
    } as const;
    expect(await t.apply(action("grant", perk))).toEqual({ kind: "granted" });
    expect(s.rcon.commands).toEqual(["say bob paymenthub:mem_1 plan_premium"]);
  });

  it("preflight shows the version, RCON login, LuckPerms and each group", async () => {
    const s = await server({ status: true, groups: ["vip", "mvp"] });
    s.world.luckperms.groups.delete("mvp");
    const t = await target({ survival: s.config });
    const checks = await t.preflight();
    expect(checks.map((c) => [c.ok, c.name])).toEqual([
      [true, `minecraft survival: reachable at ${s.config.status?.host}:${s.config.status?.port}`],
      [true, `minecraft survival: RCON login at ${s.rcon.host}:${s.rcon.port}`],
      [true, "minecraft survival: LuckPerms present"],
      [true, "minecraft survival: group vip exists"],
      [false, "minecraft survival: group mvp exists"],
    ]);
    expect(checks[0]?.detail).toMatch(/^Paper 1\.21\.1, 0\/20 online$/);
    expect(checks[4]?.fix).toContain("lp creategroup mvp");
  });

  it("preflight names a refused password without showing it", async () => {
    const s = await server();
    const t = await target({ survival: { ...s.config, rcon: { ...s.config.rcon, password: "hunter2-wrong" } } });
    const checks = await t.preflight();
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ ok: false });
    expect(checks[0]?.detail).toMatch(/refused the password/);
    expect(JSON.stringify(checks)).not.toContain("hunter2-wrong");
  });

  it("rejects a configured template with an unknown placeholder at creation", async () => {
    const s = await server();
    await expect(
      createMinecraftTarget({ servers: { survival: { ...s.config, commands: { whitelist_add: "whitelist add {player}" } } } }),
    ).rejects.toMatchObject({ code: "ERR_CONFIG" });
  });
});
