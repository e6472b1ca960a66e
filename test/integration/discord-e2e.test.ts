import { afterEach, describe, expect, it, vi } from "vitest";
import { GUILD, ROLE, rolesOf, startDiscordHarness, USER, type DiscordHarness, type DiscordHarnessOptions } from "./discord-harness.js";

const OFF = rolesOf(GUILD.off);
const EXCL = rolesOf(GUILD.exclusive);

const PLANS = `
plans:
  plan_premium:
    perks:
      - discord: { guild: "${GUILD.main}", role: "${ROLE.premium}" }
  plan_vip:
    perks:
      - discord: { guild: "${GUILD.main}", role: "${ROLE.premium}" }
  plan_everywhere:
    perks:
      - discord: { guild: "${GUILD.main}", role: "${ROLE.premium}" }
      - discord: { guild: "${GUILD.off}", role: "${OFF.premium}" }
      - discord: { guild: "${GUILD.exclusive}", role: "${EXCL.premium}" }
  plan_legend:
    perks:
      - discord: { guild: "${GUILD.main}", role: "${ROLE.legend}" }
`;

let h: DiscordHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(options: Partial<DiscordHarnessOptions> = {}): Promise<DiscordHarness> {
  h = await startDiscordHarness({ plansYaml: PLANS, ...options });
  return h;
}

const roles = (harness: DiscordHarness, guild: string, user: string) => [...(harness.discord.memberRoles(guild, user) ?? [])].sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Lets gateway echoes and anything they might trigger run, then settles again. */
async function quiet(harness: DiscordHarness): Promise<void> {
  await harness.settle();
  await sleep(150);
  await harness.settle();
}
const extraUsers = (n: number) => Array.from({ length: n }, (_, i) => `3000000000000${String(5000 + i)}`);

describe("Discord end to end: signed PaymentHub webhooks → daemon → emulated Discord (real discord.js)", () => {
  it("grants on purchase and revokes on cancellation with an audit-log reason, keeps hand-set roles, and its own changes cause no repairs", async () => {
    const harness = await start();
    const drift = () => [...harness.engine.queue.all()].filter((r) => r.cause === "drift");
    harness.discord.setMemberRoles(GUILD.main, USER.alice, [ROLE.event, ROLE.vip]);
    harness.discord.setMemberRoles(GUILD.exclusive, USER.carol, [EXCL.vip]);
    harness.buy("mem_1", USER.alice);
    // In every drift mode, so that an echo of our own change mistaken for a human's would show.
    harness.buy("mem_2", USER.carol, "plan_everywhere");
    await quiet(harness);
    expect(harness.emulator.deliveries.every((d) => d.delivered)).toBe(true);
    expect(roles(harness, GUILD.main, USER.alice)).toEqual([ROLE.event, ROLE.premium, ROLE.vip].sort());
    expect(roles(harness, GUILD.exclusive, USER.carol)).toEqual([EXCL.premium, EXCL.vip].sort());
    const alice = () => harness.roleCalls().filter((c) => c.path.includes(`/members/${USER.alice}/`));
    expect(alice()).toEqual([
      expect.objectContaining({ method: "PUT", status: 204, path: `/guilds/${GUILD.main}/members/${USER.alice}/roles/${ROLE.premium}`, auditLogReason: "perkbridge: plan_premium active (mem_1)" }),
    ]);
    expect(harness.roleCalls()).toHaveLength(4);

    // A sync of the same member (an unrelated update) touches nothing.
    harness.emulator.updateMember("mem_1", { name: "Alice" });
    await quiet(harness);
    expect(harness.roleCalls()).toHaveLength(4);

    harness.emulator.cancelSubscription("mem_1", "requested");
    harness.emulator.cancelSubscription("mem_2", "requested");
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.alice)).toEqual([ROLE.event, ROLE.vip].sort());
    expect(roles(harness, GUILD.exclusive, USER.carol)).toEqual([EXCL.vip]);
    expect(alice().map((c) => `${c.method} ${c.status}`)).toEqual(["PUT 204", "DELETE 204"]);
    expect(alice()[1]?.auditLogReason).toBe("perkbridge: plan_premium canceled (mem_1)");
    expect(harness.roleCalls().map((c) => c.method).sort()).toEqual(["DELETE", "DELETE", "DELETE", "DELETE", "PUT", "PUT", "PUT", "PUT"]);
    expect(drift()).toEqual([]);
    expect(harness.logs.join("")).not.toMatch(/restore: plan role removed by hand|exclusive: plan role/);
  });

  it("keeps a role two members justify until both let go", async () => {
    const harness = await start();
    harness.buy("mem_u1", USER.bob, "plan_premium");
    harness.buy("mem_u2", USER.bob, "plan_vip");
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.bob)).toEqual([ROLE.premium]);
    expect(harness.roleCalls()).toHaveLength(1);

    harness.emulator.cancelSubscription("mem_u1");
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.bob)).toEqual([ROLE.premium]);
    expect(harness.engine.entriesOf(`discord:${USER.bob}`).map((e) => e.members)).toEqual([["paymenthub:mem_u2"]]);

    harness.emulator.cancelSubscription("mem_u2");
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.bob)).toEqual([]);
    expect(harness.roleCalls().map((c) => c.method)).toEqual(["PUT", "DELETE"]);
  });

  it("parks every action for a role above the bot's with the fix naming the role, without a retry storm", async () => {
    const users = extraUsers(12);
    const harness = await start({ extraUsers: users });
    users.forEach((user, i) => harness.buy(`mem_h${i}`, user, "plan_legend"));
    await quiet(harness);
    const recs = [...harness.engine.queue.all()].filter((r) => r.action.perk.value === ROLE.legend);
    expect(recs).toHaveLength(12);
    for (const rec of recs) {
      expect(rec.state).toBe("parked");
      expect(rec.last?.fix).toBe("move the perkbridge bot's role above Legend in Server Settings → Roles");
      expect(rec.attempts).toBe(1);
    }
    expect(harness.roleCalls().filter((c) => c.path.endsWith(`/roles/${ROLE.legend}`)).length).toBeLessThanOrEqual(1);
    for (const user of users) expect(roles(harness, GUILD.main, user)).toEqual([]);
  });

  it("restores roles on rejoin within seconds, and applies a grant that waited for the user to join", async () => {
    const harness = await start();
    harness.buy("mem_r1", USER.alice);
    harness.buy("mem_r2", USER.dave);
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.alice)).toEqual([ROLE.premium]);
    const waiting = [...harness.engine.queue.all()].find((r) => r.action.subject === `discord:${USER.dave}`);
    expect(waiting).toMatchObject({ state: "waiting", last: { kind: "target-missing" } });

    harness.discord.removeMember(GUILD.main, USER.alice);
    await quiet(harness);
    // Leaving took the role; the ledger keeps it, nothing is revoked.
    expect(harness.engine.entriesOf(`discord:${USER.alice}`)).toHaveLength(1);
    harness.discord.addMember(GUILD.main, { id: USER.alice, username: "alice" });
    harness.discord.addMember(GUILD.main, { id: USER.dave, username: "dave" });
    const joinedAt = Date.now();
    await vi.waitFor(() => {
      expect(roles(harness, GUILD.main, USER.alice)).toEqual([ROLE.premium]);
      expect(roles(harness, GUILD.main, USER.dave)).toEqual([ROLE.premium]);
    }, { timeout: 3000, interval: 10 });
    expect(Date.now() - joinedAt).toBeLessThan(3000);
    await quiet(harness);
    expect(harness.roleCalls().filter((c) => c.method === "PUT" && c.status === 204)).toHaveLength(3);
    expect(harness.roleCalls().filter((c) => c.method === "DELETE")).toHaveLength(0);
  });

  it("repairs a plan role removed by hand with restore and exclusive, leaves it with off, and logs each repair", async () => {
    const harness = await start();
    harness.buy("mem_d1", USER.bob, "plan_everywhere");
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.bob)).toEqual([ROLE.premium]);
    expect(roles(harness, GUILD.off, USER.bob)).toEqual([OFF.premium]);
    expect(roles(harness, GUILD.exclusive, USER.bob)).toEqual([EXCL.premium]);

    harness.discord.setMemberRoles(GUILD.main, USER.bob, [ROLE.event]);
    harness.discord.setMemberRoles(GUILD.off, USER.bob, [OFF.event]);
    harness.discord.setMemberRoles(GUILD.exclusive, USER.bob, [EXCL.event]);
    await vi.waitFor(() => {
      expect(roles(harness, GUILD.main, USER.bob)).toEqual([ROLE.event, ROLE.premium].sort());
      expect(roles(harness, GUILD.exclusive, USER.bob)).toEqual([EXCL.event, EXCL.premium].sort());
    }, { timeout: 3000, interval: 10 });
    await quiet(harness);
    expect(roles(harness, GUILD.off, USER.bob)).toEqual([OFF.event]);
    const repairs = harness.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["msg"] === "restore: plan role removed by hand");
    expect(repairs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ guild: GUILD.main, user: USER.bob, role: ROLE.premium, mode: "restore" }),
        expect.objectContaining({ guild: GUILD.exclusive, user: USER.bob, role: EXCL.premium, mode: "exclusive" }),
      ]),
    );
    expect(repairs).toHaveLength(2);
    // The restored grants went out with the repair's reason, and nothing else followed.
    const puts = harness.roleCalls().filter((c) => c.method === "PUT");
    expect(puts).toHaveLength(5);
    expect(puts.slice(3).map((c) => c.auditLogReason)).toEqual(["perkbridge: restore: plan role removed by hand (mem_d1)", "perkbridge: restore: plan role removed by hand (mem_d1)"]);
  });

  it("removes a plan role added by hand to a member who is not entitled only in an exclusive guild", async () => {
    const harness = await start();
    harness.buy("mem_x1", USER.bob, "plan_everywhere");
    await quiet(harness);
    harness.discord.setMemberRoles(GUILD.main, USER.carol, [ROLE.premium, ROLE.vip]);
    harness.discord.setMemberRoles(GUILD.off, USER.carol, [OFF.premium, OFF.vip]);
    harness.discord.setMemberRoles(GUILD.exclusive, USER.carol, [EXCL.premium, EXCL.vip]);
    await vi.waitFor(() => expect(roles(harness, GUILD.exclusive, USER.carol)).toEqual([EXCL.vip]), { timeout: 3000, interval: 10 });
    await quiet(harness);
    expect(roles(harness, GUILD.main, USER.carol)).toEqual([ROLE.premium, ROLE.vip].sort());
    expect(roles(harness, GUILD.off, USER.carol)).toEqual([OFF.premium, OFF.vip].sort());
    // The entitled member keeps the role in the exclusive guild.
    expect(roles(harness, GUILD.exclusive, USER.bob)).toEqual([EXCL.premium]);
    const deletes = harness.roleCalls().filter((c) => c.method === "DELETE");
    expect(deletes).toEqual([expect.objectContaining({ path: `/guilds/${GUILD.exclusive}/members/${USER.carol}/roles/${EXCL.premium}`, auditLogReason: "perkbridge: exclusive: plan role not justified by any member" })]);
    expect(harness.logs.join("")).toMatch(/"mode":"exclusive"/);
  });

  it("gets every role right while Discord answers a storm of 429s during 20 purchases", async () => {
    const users = extraUsers(20);
    const harness = await start({ extraUsers: users });
    // Both kinds Discord sends: per-route and global.
    harness.discord.rateLimitNext(10, 0.01);
    harness.discord.rateLimitNext(5, 0.01, true);
    users.forEach((user, i) => harness.buy(`mem_s${i}`, user));
    await quiet(harness);
    for (const user of users) expect(roles(harness, GUILD.main, user)).toEqual([ROLE.premium]);
    expect(harness.discord.calls.filter((c) => c.status === 429)).toHaveLength(15);
    expect(harness.roleCalls().filter((c) => c.status === 204)).toHaveLength(20);
    expect([...harness.engine.queue.all()].every((r) => r.state === "done")).toBe(true);
  });

  it("answers /perks privately with the plan and what is pending, and tells an unknown user how to link", async () => {
    const harness = await start({
      minecraft: true,
      plansYaml: `
plans:
  plan_combo:
    perks:
      - discord: { guild: "${GUILD.main}", role: "${ROLE.premium}" }
      - minecraft: { server: survival, group: vip }
`,
    });
    harness.buy("mem_p1", USER.alice, "plan_combo");
    await quiet(harness);
    expect(harness.discord.commands(GUILD.main)).toContain("perks");
    const reply = await harness.discord.sendInteraction(GUILD.main, USER.alice, "perks");
    expect(reply.data?.flags).toBe(64);
    const text = reply.data?.content ?? "";
    expect(text).toContain("plan_combo, active (paymenthub mem_p1)");
    // The client shows a role mention as the role's name; the reply pings nobody.
    expect(text).toContain(`Perks now: Discord role <@&${ROLE.premium}> here`);
    expect(reply.data?.["allowed_mentions"]).toEqual({ parse: [] });
    expect(text).toContain("Minecraft group vip on survival: waiting: no Minecraft account on your member record");

    // A member whose record names the user but who holds nothing (found without any grant).
    harness.buy("mem_p2", USER.bob, "plan_combo", { status: "canceled" });
    await quiet(harness);
    const lapsed = (await harness.discord.sendInteraction(GUILD.main, USER.bob, "perks")).data?.content ?? "";
    expect(lapsed).toContain("plan_combo, canceled (paymenthub mem_p2)");
    expect(lapsed).toContain("Perks now: none");

    const unknown = await harness.discord.sendInteraction(GUILD.main, USER.carol, "perks");
    expect(unknown.data?.flags).toBe(64);
    expect(unknown.data?.content).toContain(`put your Discord user id (${USER.carol}) in your member record`);
  });

  it("finds a missing Manage Roles in the preflight of the daemon's target and parks grants with that fix", async () => {
    const harness = await start();
    expect((await harness.target.preflight()).filter((c) => !c.ok)).toEqual([
      expect.objectContaining({ name: `discord guild ${GUILD.main}: role Legend (${ROLE.legend})` }),
    ]);
    harness.discord.updateRole(GUILD.main, ROLE.bot, { permissions: "0" });
    await vi.waitFor(async () => {
      expect(await harness.target.preflight()).toContainEqual(expect.objectContaining({ ok: false, name: `discord guild ${GUILD.main}: Manage Roles`, fix: expect.stringContaining("Manage Roles") }));
    });
    harness.buy("mem_m1", USER.alice);
    await quiet(harness);
    const rec = [...harness.engine.queue.all()].find((r) => r.action.subject === `discord:${USER.alice}`);
    expect(rec).toMatchObject({ state: "parked", last: { fix: expect.stringContaining("Manage Roles") } });
    expect(roles(harness, GUILD.main, USER.alice)).toEqual([]);
  });
});
