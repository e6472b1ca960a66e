import { afterEach, describe, expect, it, vi } from "vitest";
import type { PerkAction } from "../../src/core/ports.js";
import { createDiscordTarget, type DiscordTarget, type DiscordTargetOptions, type RoleChangeContext } from "../../src/adapters/discord/create-discord-target.js";
import { createDiscordEmulator, type DiscordEmulator, type DiscordEmulatorOptions } from "../../src/sandbox/discord/create-discord-emulator.js";

const TOKEN = "emulated-bot-token";
const GUILD = "100000000000000100";
const OWNER = "100000000000000900";
const ROLE = { premium: "100000000000000301", vip: "100000000000000302", event: "100000000000000303", bot: "100000000000000310", legend: "100000000000000320", booster: "100000000000000330" };
const USER = { alice: "100000000000000401", bob: "100000000000000402", carol: "100000000000000403", dave: "100000000000000404" };
const MANAGE_ROLES = (1n << 28n).toString();

function emulatorOptions(overrides: Partial<DiscordEmulatorOptions> = {}): DiscordEmulatorOptions {
  return {
    botToken: TOKEN,
    guilds: [
      {
        id: GUILD,
        name: "Test Server",
        ownerId: OWNER,
        roles: [
          { id: ROLE.event, name: "Event", position: 1, permissions: "0" },
          { id: ROLE.premium, name: "Premium", position: 2, permissions: "0" },
          { id: ROLE.vip, name: "VIP", position: 3, permissions: "0" },
          { id: ROLE.booster, name: "Server Booster", position: 4, permissions: "0", managed: true, tags: { premium_subscriber: null } },
          { id: ROLE.bot, name: "perkbridge", position: 5, permissions: MANAGE_ROLES },
          { id: ROLE.legend, name: "Legend", position: 10, permissions: "0" },
        ],
        members: [
          { user: { id: USER.alice, username: "alice" }, roles: [] },
          { user: { id: USER.bob, username: "bob" }, roles: [ROLE.event] },
          { user: { id: USER.carol, username: "carol" }, roles: [ROLE.vip] },
          { user: { id: OWNER, username: "owner" }, roles: [] },
        ],
        botMemberRoles: [ROLE.bot],
      },
    ],
    ...overrides,
  };
}

function action(type: "grant" | "revoke", userId: string, roleId: string): PerkAction {
  return {
    id: `act_${type}_${userId}_${roleId}`,
    type,
    subject: `discord:${userId}`,
    perk: { target: "discord", scope: GUILD, kind: "role", value: roleId },
    members: ["paymenthub:mem_123"],
    reason: type === "grant" ? "plan_premium active" : "plan_premium canceled",
    identities: { discord: userId },
  };
}

interface Harness {
  emulator: DiscordEmulator;
  target: DiscordTarget;
  managed: Set<string>;
  joins: string[];
  leaves: string[];
  roleChanges: { userId: string; added: readonly string[]; removed: readonly string[]; context: RoleChangeContext }[];
}

let open: Harness[] = [];
let extraTargets: DiscordTarget[] = [];

async function setup(
  emulatorOverrides: Partial<DiscordEmulatorOptions> = {},
  targetOverrides: Partial<Omit<DiscordTargetOptions, "guilds" | "managedRoles">> = {},
): Promise<Harness> {
  const emulator = createDiscordEmulator(emulatorOptions(emulatorOverrides));
  await emulator.start();
  const managed = new Set([ROLE.premium, ROLE.vip]);
  const harness: Harness = { emulator, target: undefined as unknown as DiscordTarget, managed, joins: [], leaves: [], roleChanges: [] };
  harness.target = await createDiscordTarget({
    token: TOKEN,
    restApi: `${emulator.url}/api`,
    guilds: [{ id: GUILD, enforce: "restore" }],
    managedRoles: () => managed,
    onMemberJoin: (_guildId, userId) => void harness.joins.push(userId),
    onMemberLeave: (_guildId, userId) => void harness.leaves.push(userId),
    onRolesChanged: (_guildId, userId, added, removed, context) => void harness.roleChanges.push({ userId, added, removed, context }),
    ...targetOverrides,
  });
  open.push(harness);
  await harness.target.start();
  return harness;
}

afterEach(async () => {
  for (const target of extraTargets) await target.stop();
  extraTargets = [];
  for (const { target, emulator } of open) {
    await target.stop();
    await emulator.close();
  }
  open = [];
});

const roleCalls = (emulator: DiscordEmulator) => emulator.calls.filter((call) => call.path.includes("/roles/"));

describe("discord target against the emulated Discord", () => {
  it("logs in with the real discord.js client and reports a clean preflight", async () => {
    const { target, emulator } = await setup();
    expect(target.connected).toBe(true);
    expect(emulator.sessions).toBe(1);
    const checks = await target.preflight();
    expect(checks.filter((check) => !check.ok)).toEqual([]);
    expect(checks.map((check) => check.name)).toEqual(
      expect.arrayContaining([`discord guild ${GUILD}: Manage Roles`, `discord guild ${GUILD}: role Premium (${ROLE.premium})`]),
    );
  });

  it("grants and revokes the role on the emulated member, with an audit-log reason, idempotently", async () => {
    const { target, emulator } = await setup();
    expect(await target.apply(action("grant", USER.alice, ROLE.premium))).toEqual({ kind: "granted" });
    expect(emulator.memberRoles(GUILD, USER.alice)).toEqual([ROLE.premium]);
    expect(roleCalls(emulator)).toEqual([expect.objectContaining({ method: "PUT", status: 204, auditLogReason: "perkbridge: plan_premium active (mem_123)" })]);

    expect(await target.apply(action("grant", USER.alice, ROLE.premium))).toEqual({ kind: "granted", preExisting: true });
    expect(roleCalls(emulator)).toHaveLength(1);

    expect(await target.apply(action("revoke", USER.alice, ROLE.premium))).toEqual({ kind: "revoked" });
    expect(emulator.memberRoles(GUILD, USER.alice)).toEqual([]);
    expect(await target.apply(action("revoke", USER.alice, ROLE.premium))).toEqual({ kind: "revoked", wasAbsent: true });
    expect(roleCalls(emulator).map((call) => call.method)).toEqual(["PUT", "DELETE"]);
  });

  it("reports a role the member already had as pre-existing and keeps roles set by hand", async () => {
    const { target, emulator } = await setup();
    expect(await target.apply(action("grant", USER.carol, ROLE.vip))).toEqual({ kind: "granted", preExisting: true });
    await target.apply(action("grant", USER.bob, ROLE.premium));
    await target.apply(action("revoke", USER.bob, ROLE.premium));
    expect(emulator.memberRoles(GUILD, USER.bob)).toEqual([ROLE.event]);
  });

  it("turns a hierarchy refusal into a terminal failure with the fix, then fails fast without calling Discord", async () => {
    const { target, emulator, managed } = await setup();
    managed.add(ROLE.legend);
    const first = await target.apply(action("grant", USER.alice, ROLE.legend));
    expect(first).toMatchObject({ kind: "failed", retryable: false, fix: "move the perkbridge bot's role above Legend in Server Settings → Roles" });
    const callsAfterFirst = emulator.calls.length;

    const second = await target.apply(action("grant", USER.bob, ROLE.legend));
    expect(second).toEqual(first);
    expect(emulator.calls.length).toBe(callsAfterFirst);
    expect(emulator.memberRoles(GUILD, USER.bob)).toEqual([ROLE.event]);

    const failing = (await target.preflight()).filter((check) => !check.ok);
    expect(failing).toEqual([expect.objectContaining({ name: `discord guild ${GUILD}: role Legend (${ROLE.legend})`, fix: first.kind === "failed" ? first.fix : "" })]);

    // The admin moves the bot's role up; a passing preflight lifts the block.
    emulator.updateRole(GUILD, ROLE.bot, { position: 20 });
    await vi.waitFor(async () => expect((await target.preflight()).every((check) => check.ok)).toBe(true));
    expect(await target.apply(action("grant", USER.bob, ROLE.legend))).toEqual({ kind: "granted" });
    expect(emulator.memberRoles(GUILD, USER.bob)).toEqual([ROLE.event, ROLE.legend]);
  });

  it("names Manage Roles when the bot lacks it, and refuses integration-managed roles", async () => {
    const { target, emulator, managed } = await setup();
    managed.add(ROLE.booster);
    const booster = await target.apply(action("grant", USER.alice, ROLE.booster));
    expect(booster).toMatchObject({ kind: "failed", retryable: false });
    expect(booster.kind === "failed" && booster.fix).toContain("cannot be assigned");

    emulator.updateRole(GUILD, ROLE.bot, { permissions: "0" });
    await vi.waitFor(async () => {
      const checks = await target.preflight();
      expect(checks).toContainEqual(expect.objectContaining({ ok: false, name: `discord guild ${GUILD}: Manage Roles`, fix: expect.stringContaining("Manage Roles") }));
    });
    const refused = await target.apply(action("grant", USER.alice, ROLE.premium));
    expect(refused).toMatchObject({ kind: "failed", retryable: false, fix: expect.stringContaining("Manage Roles") });
  });

  it("reports a configured guild the bot is not in, and refuses guilds outside the config", async () => {
    const absent = "100000000000000777";
    const { target, emulator } = await setup();
    const other = await createDiscordTarget({
      token: TOKEN,
      restApi: `${emulator.url}/api`,
      guilds: [{ id: GUILD, enforce: "off" }, { id: absent, enforce: "restore" }],
      managedRoles: () => new Set([ROLE.premium]),
    });
    extraTargets.push(other);
    await other.start();
    expect(await other.preflight()).toContainEqual(expect.objectContaining({ ok: false, name: `discord guild ${absent}: bot is a member`, fix: expect.stringContaining("invite the perkbridge bot") }));
    expect(await other.apply({ ...action("grant", USER.alice, ROLE.premium), perk: { target: "discord", scope: absent, kind: "role", value: ROLE.premium } })).toMatchObject({ kind: "failed", retryable: false });
    expect(await target.apply({ ...action("grant", USER.alice, ROLE.premium), perk: { target: "discord", scope: absent, kind: "role", value: ROLE.premium } })).toMatchObject({
      kind: "failed",
      retryable: false,
      fix: `add guild ${absent} under discord.guilds in the config`,
    });
    expect(await target.apply({ ...action("grant", USER.alice, ROLE.premium), subject: "minecraft:abc" })).toMatchObject({ kind: "not-linked" });
    expect(emulator.memberRoles(GUILD, USER.alice)).toEqual([]);
  });

  it("answers target-missing for a user outside the guild, and a revoke for them is already done", async () => {
    const { target } = await setup();
    expect(await target.apply(action("grant", USER.dave, ROLE.premium))).toEqual({ kind: "target-missing", reason: "not in the guild: applied when they join" });
    expect(await target.apply(action("revoke", USER.dave, ROLE.premium))).toEqual({ kind: "revoked", wasAbsent: true });
  });

  it("fails terminally on a role that does not exist, naming it", async () => {
    const { target, emulator } = await setup();
    const result = await target.apply(action("grant", USER.alice, "100000000000000999"));
    expect(result).toMatchObject({ kind: "failed", retryable: false });
    expect(result.kind === "failed" && result.fix).toContain(`role 100000000000000999 does not exist in guild ${GUILD}: fix the plan in the config`);
    expect(roleCalls(emulator)).toEqual([expect.objectContaining({ status: 404 })]);
  });

  it("rides out a 429 storm and a 500, ending with the right roles", async () => {
    const { target, emulator } = await setup();
    emulator.rateLimitNext(5, 0.2);
    const results = await Promise.all([
      target.apply(action("grant", USER.alice, ROLE.premium)),
      target.apply(action("grant", USER.alice, ROLE.vip)),
      target.apply(action("grant", USER.bob, ROLE.premium)),
      target.apply(action("revoke", USER.carol, ROLE.vip)),
    ]);
    expect(results.map((result) => result.kind)).toEqual(["granted", "granted", "granted", "revoked"]);
    expect(emulator.calls.filter((call) => call.status === 429)).toHaveLength(5);
    expect([...(emulator.memberRoles(GUILD, USER.alice) ?? [])].sort()).toEqual([ROLE.premium, ROLE.vip]);
    expect(emulator.memberRoles(GUILD, USER.bob)).toEqual([ROLE.event, ROLE.premium]);
    expect(emulator.memberRoles(GUILD, USER.carol)).toEqual([]);

    emulator.failNext(1, 500);
    expect(await target.apply(action("revoke", USER.bob, ROLE.premium))).toEqual({ kind: "revoked" });
    expect(emulator.memberRoles(GUILD, USER.bob)).toEqual([ROLE.event]);
  });

  it("gives up retryably when Discord keeps failing", async () => {
    const { target, emulator } = await setup();
    emulator.failNext(10, 502);
    const result = await target.apply(action("grant", USER.alice, ROLE.premium));
    expect(result).toMatchObject({ kind: "failed", retryable: true });
    expect(emulator.memberRoles(GUILD, USER.alice)).toEqual([]);
  });

  it("reports joins, leaves and human plan-role edits, but not its own changes or non-plan roles", async () => {
    const h = await setup();
    await h.target.apply(action("grant", USER.alice, ROLE.premium));
    h.emulator.setMemberRoles(GUILD, USER.alice, [ROLE.premium, ROLE.event]);
    h.emulator.setMemberRoles(GUILD, USER.alice, [ROLE.event]);
    h.emulator.addMember(GUILD, { id: USER.dave, username: "dave" });
    h.emulator.removeMember(GUILD, USER.bob);
    await vi.waitFor(() => expect(h.leaves).toEqual([USER.bob]));
    expect(h.joins).toEqual([USER.dave]);
    expect(h.roleChanges).toEqual([
      { userId: USER.alice, added: [], removed: [ROLE.premium], context: { before: [ROLE.premium, ROLE.event], after: [ROLE.event] } },
    ]);
  });

  it("reports a human edit of a member outside the bounded cache with unknown earlier roles", async () => {
    const h = await setup({}, { memberCacheSize: 1 });
    h.emulator.setMemberRoles(GUILD, USER.carol, []);
    await vi.waitFor(() => expect(h.roleChanges).toHaveLength(1));
    expect(h.roleChanges[0]).toEqual({ userId: USER.carol, added: [], removed: [], context: { before: null, after: [] } });
  });

  it("starts without throwing when the Server Members intent is disabled, and says how to enable it", async () => {
    const { target } = await setup({ privilegedIntents: { guildMembers: false } });
    expect(target.connected).toBe(false);
    const checks = await target.preflight();
    expect(checks).toEqual([
      expect.objectContaining({ ok: false, fix: "enable the Server Members Intent in the Discord Developer Portal → your app → Bot → Privileged Gateway Intents" }),
    ]);
    expect(await target.apply(action("grant", USER.alice, ROLE.premium))).toMatchObject({ kind: "failed", retryable: true, reason: expect.stringContaining("discord not connected") });
  });

  it("starts without throwing on a refused token, keeps the token out of the report", async () => {
    const { target } = await setup({}, { token: "wrong-token-value" });
    const checks = await target.preflight();
    expect(checks).toEqual([expect.objectContaining({ ok: false, name: "discord: login", detail: expect.stringContaining("refused the bot token") })]);
    expect(JSON.stringify(checks)).not.toContain("wrong-token-value");
    expect(await target.apply(action("grant", USER.alice, ROLE.premium))).toMatchObject({ kind: "failed", retryable: true });
  });

  it("registers /perks and answers it ephemerally with the injected description", async () => {
    const asked: string[] = [];
    const { emulator, target } = await setup(
      {},
      {
        describePerks: async (userId, guildId) => {
          asked.push(`${guildId}/${userId}`);
          return "Premium until 2025-07-01";
        },
      },
    );
    expect(emulator.commands(GUILD)).toEqual(["perks"]);
    const reply = await emulator.sendInteraction(GUILD, USER.alice, "perks");
    expect(reply).toEqual({ type: 4, data: expect.objectContaining({ content: "Premium until 2025-07-01", flags: 64 }) });
    expect(asked).toEqual([`${GUILD}/${USER.alice}`]);
    expect(await target.preflight()).toContainEqual(expect.objectContaining({ ok: true, name: `discord guild ${GUILD}: /perks command` }));
  });
});
