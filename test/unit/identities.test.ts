import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  extractIdentities,
  missingIdentityReason,
  normalizeFivemIdentifier,
  normalizeMinecraftUuid,
  subjectFor,
} from "../../src/core/identities.js";
import type { Identities } from "../../src/core/member.js";
import type { Perk, SubjectKind } from "../../src/core/perk.js";

const UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5";

describe("extractIdentities", () => {
  it.each<[string, Record<string, unknown>, Identities]>([
    ["empty metadata", {}, {}],
    ["flat discord id (doc example)", { discord_id: "123456789", custom_field: "value" }, { discord: "123456789" }],
    ["nested discord user id", { discord: { user_id: "123456789012345678", level: 25 } }, { discord: "123456789012345678" }],
    ["discord id as a safe JSON number", { discord_id: 123456789 }, { discord: "123456789" }],
    ["flat minecraft uuid and name", { minecraft_uuid: UUID, minecraft_name: "Notch" }, { minecraft: { uuid: UUID, name: "Notch" } }],
    ["nested minecraft uuid (doc example)", { minecraft: { uuid: UUID, rank: "vip" } }, { minecraft: { uuid: UUID } }],
    ["undashed upper-case uuid", { minecraft_uuid: "069A79F444E94726A5BEFCA90E38AAF5" }, { minecraft: { uuid: UUID } }],
    ["a name alone", { minecraft: { name: "jeb_" } }, { minecraft: { name: "jeb_" } }],
    ["a Floodgate name", { minecraft_name: ".Bedrock_Guy" }, { minecraft: { name: ".Bedrock_Guy" } }],
    ["fivem steam id (doc example)", { fivem: { steam_id: "steam:110000132c6b978" } }, { fivem: ["steam:110000132c6b978"] }],
    ["bare steam id gets its prefix", { fivem: { steam_id: "110000132C6B978" } }, { fivem: ["steam:110000132c6b978"] }],
    ["decimal Steam64 becomes hex", { fivem_steam_id: "76561197960265728" }, { fivem: ["steam:110000100000000" ] }],
    [
      "all fivem fields, sorted license first",
      {
        fivem: {
          steam_id: "steam:110000132c6b978",
          discord: 123456789,
          license: "ab12",
          identifiers: ["fivem:99", "xbl:5", "license:ab12", "Discord:123456789"],
        },
      },
      { fivem: ["license:ab12", "steam:110000132c6b978", "discord:123456789", "fivem:99", "xbl:5"] },
    ],
    ["flat fivem license", { fivem_license: "license:ff00" }, { fivem: ["license:ff00"] }],
    ["whitespace and empty strings are absent", { discord_id: "  ", minecraft_uuid: "", fivem: { steam_id: null } }, {}],
    ["values are trimmed", { discord_id: " 42 " }, { discord: "42" }],
  ])("%s", (_name, metadata, identities) => {
    const out = extractIdentities(metadata);
    expect(out.identities).toEqual(identities);
    expect(out.conflicts).toEqual([]);
    expect(out.problems).toEqual([]);
  });

  it.each([
    ["discord", { discord_id: "111", discord: { user_id: "222" } }, { discord: "222" }, "discord_id", "discord.user_id"],
    [
      "minecraft.uuid",
      { minecraft_uuid: "11111111-1111-1111-1111-111111111111", minecraft: { uuid: UUID } },
      { minecraft: { uuid: UUID } },
      "minecraft_uuid",
      "minecraft.uuid",
    ],
    ["minecraft.name", { minecraft_name: "Old", minecraft: { name: "New" } }, { minecraft: { name: "New" } }, "minecraft_name", "minecraft.name"],
    ["fivem.steam", { fivem_steam_id: "steam:1", fivem: { steam_id: "steam:2" } }, { fivem: ["steam:2"] }, "fivem_steam_id", "fivem.steam_id"],
    ["fivem.license", { fivem_license: "license:a", fivem: { license: "license:b" } }, { fivem: ["license:b"] }, "fivem_license", "fivem.license"],
  ] as const)("nested %s wins over flat and the conflict is reported", (identity, metadata, identities, flatKey, nestedKey) => {
    const out = extractIdentities(metadata);
    expect(out.identities).toEqual(identities);
    expect(out.conflicts).toEqual([expect.objectContaining({ identity, flatKey, nestedKey })]);
    expect(out.problems).toEqual([]);
  });

  it("reports no conflict when both forms name the same id in different spellings", () => {
    const out = extractIdentities({ minecraft_uuid: UUID.replaceAll("-", "").toUpperCase(), minecraft: { uuid: UUID } });
    expect(out.conflicts).toEqual([]);
    expect(out.identities).toEqual({ minecraft: { uuid: UUID } });
  });

  it.each<[string, Record<string, unknown>, Identities, RegExp]>([
    ["unsafe snowflake number", JSON.parse(`{"discord_id": 123456789012345678}`) as Record<string, unknown>, {}, /discord_id: .*too large.*string/],
    ["negative number", { discord_id: -5 }, {}, /discord_id: expected a string of digits, got number -5/],
    ["non-digit discord id", { discord: { user_id: "abc" } }, {}, /discord.user_id: "abc" is not a Discord user id/],
    ["doc's placeholder uuid", { discord_id: "1", minecraft_uuid: "abc-def-ghi" }, { discord: "1" }, /minecraft_uuid: "abc-def-ghi" is not a Minecraft UUID/],
    ["uuid as a number", { minecraft_uuid: 5 }, {}, /minecraft_uuid: expected a string, got number 5/],
    ["name with a space", { minecraft_name: "a b" }, {}, /minecraft_name: "a b" is not a Minecraft name/],
    ["name that injects a command", { minecraft: { name: "x\nop x" } }, {}, /minecraft.name: "x\nop x" is not a Minecraft name/],
    ["unknown fivem prefix", { fivem: { identifiers: ["ip:1.2.3.4"] } }, {}, /fivem.identifiers\[0\]: "ip:1.2.3.4" is not a FiveM identifier/],
    ["bare identifier in the list", { fivem: { identifiers: ["abc"] } }, {}, /fivem.identifiers\[0\]/],
    ["non-hex steam", { fivem: { steam_id: "steam:xyz" } }, {}, /fivem.steam_id: "steam:xyz"/],
    ["identifiers not a list", { fivem: { identifiers: "license:ab" } }, {}, /fivem.identifiers: expected a list/],
    ["namespace not an object", { discord: "123" }, {}, /discord: expected an object/],
    ["namespace a list", { minecraft: [UUID] }, {}, /minecraft: expected an object.*got a list/],
    ["object where an id belongs", { discord_id: { id: "1" } }, {}, /discord_id: expected a string of digits, got an object/],
    ["boolean where an id belongs", { minecraft_uuid: true }, {}, /minecraft_uuid: expected a string, got boolean true/],
  ])("%s is no identity and is reported", (_name, metadata, identities, problem) => {
    const out = extractIdentities(metadata);
    expect(out.identities).toEqual(identities);
    expect(out.problems).toHaveLength(1);
    expect(out.problems[0]).toMatch(problem);
  });

  it("drops a flat name that belongs to an overridden flat UUID", () => {
    const flatUuid = "11111111-1111-1111-1111-111111111111";
    const out = extractIdentities({ minecraft_uuid: flatUuid, minecraft_name: "Old", minecraft: { uuid: UUID } });
    expect(out.identities).toEqual({ minecraft: { uuid: UUID } });
    expect(out.problems).toEqual([expect.stringMatching(/^minecraft_name: "Old" dropped/)]);
    const same = extractIdentities({ minecraft_uuid: UUID, minecraft_name: "Notch", minecraft: { uuid: UUID } });
    expect(same.identities).toEqual({ minecraft: { uuid: UUID, name: "Notch" } });
  });

  it("keeps the flat value when the nested one is malformed", () => {
    const out = extractIdentities({ discord_id: "42", discord: { user_id: "nope" } });
    expect(out.identities).toEqual({ discord: "42" });
    expect(out.conflicts).toEqual([]);
    expect(out.problems).toHaveLength(1);
  });

  it("never throws and only yields well-formed identities, whatever the metadata", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), fc.jsonValue(), (a, b, c) => {
        const out = extractIdentities({ discord_id: a, minecraft: { uuid: b, name: a }, fivem: { identifiers: c, steam_id: b }, discord: c });
        const ids = out.identities;
        if (ids.discord !== undefined) expect(ids.discord).toMatch(/^\d+$/);
        if (ids.minecraft?.uuid !== undefined) expect(ids.minecraft.uuid).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
        for (const id of ids.fivem ?? []) expect(id).toMatch(/^[a-z0-9]+:[0-9a-f]+$/);
      }),
    );
  });
});

describe("normalizers", () => {
  it("normalizes any UUID spelling to dashed lower-case, idempotently", () => {
    fc.assert(
      fc.property(fc.uuid(), fc.boolean(), fc.boolean(), (uuid, dashed, upper) => {
        let v = dashed ? uuid : uuid.replaceAll("-", "");
        v = upper ? v.toUpperCase() : v;
        const n = normalizeMinecraftUuid(v);
        expect(n).toBe(uuid.toLowerCase());
        expect(normalizeMinecraftUuid(n as string)).toBe(n);
      }),
    );
  });

  it.each([
    ["069a79f4-44e9-4726-a5be-fca90e38aaf", undefined],
    ["069a79f444e9-4726-a5be-fca90e38aaf5", undefined],
    ["g69a79f4-44e9-4726-a5be-fca90e38aaf5", undefined],
  ])("refuses %s", (v, out) => {
    expect(normalizeMinecraftUuid(v)).toBe(out);
  });

  it.each([
    ["STEAM:110000132C6B978", undefined, "steam:110000132c6b978"],
    ["110000132c6b978", "steam", "steam:110000132c6b978"],
    ["110000132c6b978", undefined, undefined],
    ["license:ab:cd", undefined, undefined],
    ["discord:12a", undefined, undefined],
    ["steam:76561197960265728", undefined, "steam:110000100000000"],
  ] as const)("normalizes FiveM identifier %s (bare prefix %s) to %s", (v, bare, out) => {
    expect(normalizeFivemIdentifier(v, bare)).toBe(out);
  });
});

describe("subjectFor", () => {
  const perk = (target: Perk["target"]): Perk => ({ target, scope: "s", kind: "k", value: "v" });
  const member = (identities: Identities) => ({ source: "paymenthub", id: "mem_1", identities });

  it.each<[string, Perk["target"], Identities, string | undefined]>([
    ["discord", "discord", { discord: "42" }, "discord:42"],
    ["discord missing", "discord", { minecraft: { uuid: UUID } }, undefined],
    ["minecraft", "minecraft", { minecraft: { uuid: UUID, name: "Notch" } }, `minecraft:${UUID}`],
    ["minecraft by name only", "minecraft", { minecraft: { name: "Notch" } }, undefined],
    ["fivem prefers license", "fivem", { fivem: ["steam:1", "discord:2", "license:ab", "fivem:3"] }, "fivem:license:ab"],
    ["fivem then steam", "fivem", { fivem: ["fivem:3", "discord:2", "steam:1"] }, "fivem:steam:1"],
    ["fivem then discord", "fivem", { fivem: ["fivem:3", "discord:2"] }, "fivem:discord:2"],
    ["fivem then fivem", "fivem", { fivem: ["xbl:4", "fivem:3"] }, "fivem:fivem:3"],
    ["fivem with no usable identifier", "fivem", { fivem: ["xbl:4", "license2:aa"] }, undefined],
    ["fivem missing", "fivem", {}, undefined],
    ["http uses the member", "http", {}, "member:paymenthub:mem_1"],
  ])("%s", (_name, target, identities, subject) => {
    expect(subjectFor(perk(target), member(identities))).toBe(subject);
  });

  it.each<SubjectKind>(["discord", "minecraft", "fivem", "member"])("says what a %s perk waits for", (kind) => {
    expect(missingIdentityReason(kind)).toMatch(/^waiting: no /);
  });
});
