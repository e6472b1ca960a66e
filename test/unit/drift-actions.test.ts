import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { diffMemberRoles } from "../../src/adapters/discord/diff-member-roles.js";
import { driftActions, type EnforceMode } from "../../src/adapters/discord/drift-actions.js";
import { ExpectedChanges } from "../../src/adapters/discord/expected-changes.js";

const set = (...roles: string[]) => new Set(roles);

describe("driftActions", () => {
  const managed = set("premium", "vip");
  const cases: [string, EnforceMode, Set<string>, Set<string> | null, Set<string>, { grant: string[]; revoke: string[] }][] = [
    ["restore puts back a removed entitled role", "restore", set("premium"), set("premium", "event"), set("event"), { grant: ["premium"], revoke: [] }],
    ["restore leaves a plan role added by hand", "restore", set(), set(), set("vip"), { grant: [], revoke: [] }],
    ["restore with unknown before grants every missing entitled role", "restore", set("premium", "vip"), null, set("vip"), { grant: ["premium"], revoke: [] }],
    ["restore ignores an entitled role that was never there", "restore", set("premium"), set("event"), set(), { grant: [], revoke: [] }],
    ["exclusive removes a plan role added by hand", "exclusive", set("premium"), set("premium"), set("premium", "vip", "event"), { grant: [], revoke: ["vip"] }],
    ["exclusive also restores", "exclusive", set("premium"), set("premium", "vip"), set("vip"), { grant: ["premium"], revoke: ["vip"] }],
    ["off does nothing", "off", set("premium"), set("premium"), set("vip"), { grant: [], revoke: [] }],
  ];
  it.each(cases)("%s", (_name, enforce, entitled, before, after, expected) => {
    expect(driftActions(enforce, entitled, managed, before, after)).toEqual(expected);
  });

  const roles = fc.constantFrom("premium", "vip", "legend", "event", "staff");
  const roleSet = fc.uniqueArray(roles).map((list) => new Set<string>(list));
  it("never touches a role outside the plans, and restore never revokes", () => {
    fc.assert(
      fc.property(fc.constantFrom<EnforceMode>("restore", "exclusive", "off"), roleSet, roleSet, fc.option(roleSet, { nil: null }), roleSet, (enforce, entitled, managedRoles, before, after) => {
        const { grant, revoke } = driftActions(enforce, entitled, managedRoles, before, after);
        for (const role of [...grant, ...revoke]) expect(managedRoles.has(role)).toBe(true);
        for (const role of grant) expect(after.has(role)).toBe(false);
        for (const role of revoke) expect(after.has(role) && !entitled.has(role)).toBe(true);
        if (enforce !== "exclusive") expect(revoke).toEqual([]);
        if (enforce === "off") expect(grant).toEqual([]);
      }),
    );
  });
});

describe("diffMemberRoles with expected changes", () => {
  const ids = { guildId: "g", userId: "u" };
  const managed = set("premium", "vip");

  it("drops the echo of an own change within its lifetime, not after", () => {
    let now = 0;
    const expected = new ExpectedChanges({ now: () => now }, 1000);
    expected.record({ ...ids, roleId: "premium", add: true });
    expect(diffMemberRoles(ids, [], ["premium"], managed, expected)).toBeNull();
    expected.record({ ...ids, roleId: "premium", add: true });
    now = 1000;
    expect(diffMemberRoles(ids, [], ["premium"], managed, expected)).toEqual({ added: ["premium"], removed: [], before: [], after: ["premium"] });
  });

  it("reports only plan roles and nothing for non-plan edits", () => {
    const expected = new ExpectedChanges({ now: () => 0 }, 1000);
    expect(diffMemberRoles(ids, ["premium"], ["premium", "event"], managed, expected)).toBeNull();
    expect(diffMemberRoles(ids, ["premium", "event"], ["event", "vip"], managed, expected)).toEqual({ added: ["vip"], removed: ["premium"], before: ["premium", "event"], after: ["event", "vip"] });
  });

  it("an expected add does not hide a removal by hand of the same role", () => {
    const expected = new ExpectedChanges({ now: () => 0 }, 1000);
    expected.record({ ...ids, roleId: "premium", add: true });
    expect(diffMemberRoles(ids, ["premium"], [], managed, expected)).toMatchObject({ removed: ["premium"] });
    expect(expected.size).toBe(1);
  });

  it("with unknown earlier roles, skips an echo and reports anything else", () => {
    const expected = new ExpectedChanges({ now: () => 0 }, 1000);
    expected.record({ ...ids, roleId: "vip", add: false });
    expect(diffMemberRoles(ids, null, ["event"], managed, expected)).toBeNull();
    expect(diffMemberRoles(ids, null, ["event", "premium"], managed, expected)).toEqual({ added: ["premium"], removed: [], before: null, after: ["event", "premium"] });
  });
});
