import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_IDENTITY_PATHS,
  DEFAULT_METADATA_LIMIT_BYTES,
  mergeOwnedMetadata,
  ownedPatch,
  utf8JsonBytes,
  validateMetadataPolicy,
  type MergeResult,
  type MetadataPolicy,
} from "../../src/core/metadata-budget.js";

type Doc = Record<string, unknown>;

const policy: MetadataPolicy = {
  ownedPaths: ["minecraft.playtime", "minecraft.homes", "discord.level", "discord.xp", "fivem.priority", "minecraft.last_seen"],
  identityPaths: DEFAULT_IDENTITY_PATHS,
  trim: { drop: ["minecraft.last_seen", "discord.xp"], arrays: "oldest-first" },
};

/** The PaymentHub doc's own examples, plus keys of other integrations. */
function memberMetadata(): Doc {
  return {
    discord_id: "123456789012345678",
    discord_roles: ["premium", "og_member"],
    game_stats: { level: 42, inventory: { coins: 5000, premium_items: ["sword_legendary", "mount_dragon"] } },
    minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", rank: "vip", balance: 10000, playtime: 4000 },
    discord: { user_id: "123456789012345678", roles: ["premium", "verified"], messages_sent: 1500 },
    last_active: "2024-01-15T10:30:00Z",
  };
}

function ok(result: MergeResult): Extract<MergeResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got: ${result.reason}`);
  return result;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function getPath(doc: unknown, path: string): unknown {
  let node = doc;
  for (const key of path.split(".")) {
    if (typeof node !== "object" || node === null || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined;
    node = (node as Doc)[key];
  }
  return node;
}

/** Every path down to a non-object value (arrays are values). */
function leafPaths(doc: Doc, prefix = ""): string[] {
  return Object.entries(doc).flatMap(([key, value]) => {
    const path = prefix + key;
    return isPlainObject(value) && Object.keys(value).length > 0 ? leafPaths(value as Doc, `${path}.`) : [path];
  });
}

const encoder = new TextEncoder();

function isPlainObject(value: unknown): value is Doc {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

describe("utf8JsonBytes", () => {
  it.each<[unknown, number]>([
    [undefined, 0],
    [{}, 2],
    ["a", 3],
    ["ä", 4], // 2-byte
    ["€", 5], // 3-byte
    ["中文", 8], // CJK, 3 bytes each
    ["😀", 6], // 4-byte, a surrogate pair in JS
    ["\ud800", 8], // lone surrogate: JSON.stringify escapes it as \ud800
    ["\n", 4], // escaped as \n
    [{ a: [1, "ä"] }, 14],
  ])("%j takes %i bytes", (value, bytes) => {
    expect(utf8JsonBytes(value)).toBe(bytes);
  });

  it("property: equals the length TextEncoder gives, for any string or nested value", () => {
    const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });
    fc.assert(
      fc.property(fc.oneof(codeUnits, fc.string({ unit: "binary" }), fc.jsonValue()), (value) => {
        expect(utf8JsonBytes(value)).toBe(encoder.encode(JSON.stringify(value)).length);
      }),
    );
  });
});

describe("validateMetadataPolicy", () => {
  it("accepts the example policy and the defaults", () => {
    expect(validateMetadataPolicy(policy)).toEqual([]);
    expect(DEFAULT_METADATA_LIMIT_BYTES).toBe(16_000);
  });

  it.each<[string, Partial<MetadataPolicy>, RegExp]>([
    ["a path outside the namespaces", { ownedPaths: ["game_stats.level"] }, /not a dotted path inside discord, minecraft, fivem/],
    ["a whole namespace", { ownedPaths: ["minecraft"] }, /not a dotted path inside/],
    ["an empty segment", { ownedPaths: ["minecraft..x"] }, /not a dotted path inside/],
    ["__proto__", { ownedPaths: ["minecraft.__proto__"] }, /not a dotted path inside/],
    ["a duplicate", { ownedPaths: ["discord.level", "discord.level"] }, /listed twice/],
    ["nested owned paths", { ownedPaths: ["discord.stats", "discord.stats.xp"] }, /discord.stats.xp lies inside owned path discord.stats/],
    ["an owned path containing an identity", { ownedPaths: ["minecraft.profile"], identityPaths: ["minecraft.profile.uuid"] }, /contains identity key/],
    ["an owned path inside an identity", { ownedPaths: ["minecraft.uuid.short"] }, /lies inside identity key minecraft.uuid/],
    ["a bad identity path", { identityPaths: ["discord."] }, /identity path "discord." is not a dotted path/],
    ["a trim path that is not owned", { trim: { drop: ["minecraft.rank"], arrays: "oldest-first" } }, /trim path minecraft.rank is not among the owned paths/],
    [
      "a trim path that is an identity",
      { ownedPaths: ["minecraft.uuid"], trim: { drop: ["minecraft.uuid"], arrays: "oldest-first" } },
      /identity key, which is never trimmed/,
    ],
    ["a limit below 2 bytes", { limitBytes: 1 }, /limit 1 is not a whole number/],
    ["a fractional limit", { limitBytes: 100.5 }, /limit 100.5/],
  ])("reports %s", (_name, change, problem) => {
    const bad = { ...policy, ...change };
    expect(validateMetadataPolicy(bad).join("\n")).toMatch(problem);
    const result = mergeOwnedMetadata({}, {}, bad);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^metadata policy: /);
  });

  it("allows a trim path inside an owned path", () => {
    expect(validateMetadataPolicy({ ...policy, ownedPaths: ["minecraft.stats"], trim: { drop: ["minecraft.stats.homes"], arrays: "oldest-first" } })).toEqual([]);
  });
});

describe("mergeOwnedMetadata", () => {
  it("writes owned keys into existing namespaces and keeps every other key as it was", () => {
    const current = deepFreeze(memberMetadata());
    const result = ok(mergeOwnedMetadata(current, { "minecraft.playtime": 4320, "discord.level": 25 }, policy));
    expect(result.changed).toBe(true);
    expect(result.trimmed).toEqual([]);
    expect(result.bytes).toBe(utf8JsonBytes(result.document));
    expect(result.document).toEqual({
      ...current,
      minecraft: { ...(current["minecraft"] as Doc), playtime: 4320 },
      discord: { ...(current["discord"] as Doc), level: 25 },
    });
    // Untouched subtrees are the very same values, and key order is kept.
    expect(result.document["game_stats"]).toBe(current["game_stats"]);
    expect(Object.keys(result.document)).toEqual(Object.keys(current));
    expect(Object.keys(result.document["minecraft"] as Doc)).toEqual(["uuid", "rank", "balance", "playtime"]);
    expect(Object.keys(result.document["discord"] as Doc)).toEqual(["user_id", "roles", "messages_sent", "level"]);
  });

  it("creates a missing namespace", () => {
    const result = ok(mergeOwnedMetadata({ note: "hi" }, { "fivem.priority": 10 }, policy));
    expect(JSON.stringify(result.document)).toBe('{"note":"hi","fivem":{"priority":10}}');
  });

  it("reports no change when the owned values are already there, so no PATCH is sent", () => {
    const current = memberMetadata();
    const result = ok(mergeOwnedMetadata(current, { "minecraft.playtime": 4000 }, policy));
    expect(result.changed).toBe(false);
    expect(JSON.stringify(result.document)).toBe(JSON.stringify(current));
    expect(ok(mergeOwnedMetadata(current, {}, policy)).changed).toBe(false);
  });

  it("compares nested values structurally for the change flag", () => {
    const current = { minecraft: { homes: [{ name: "base", x: 1 }] } };
    expect(ok(mergeOwnedMetadata(current, { "minecraft.homes": [{ x: 1, name: "base" }] }, policy)).changed).toBe(false);
    expect(ok(mergeOwnedMetadata(current, { "minecraft.homes": [{ name: "base", x: 2 }] }, policy)).changed).toBe(true);
    expect(ok(mergeOwnedMetadata(current, { "minecraft.homes": [{ name: "base" }] }, policy)).changed).toBe(true);
    expect(ok(mergeOwnedMetadata(current, { "minecraft.homes": { name: "base" } }, policy)).changed).toBe(true);
  });

  it("removes an owned key whose value is undefined, and a namespace only it created", () => {
    const current = { minecraft: { playtime: 5 }, other: 1 };
    expect(ok(mergeOwnedMetadata(current, { "minecraft.playtime": undefined }, policy)).document).toEqual({ minecraft: {}, other: 1 });
    const nothing = ok(mergeOwnedMetadata({ other: 1 }, { "fivem.priority": undefined }, policy));
    expect(nothing.document).toEqual({ other: 1 });
    expect(nothing.changed).toBe(false);
  });

  it.each<[string, Doc]>([
    ["a string", { minecraft: "x" }],
    ["null", { minecraft: null }],
    ["an array", { minecraft: ["a"] }],
    ["a number", { minecraft: 3 }],
  ])("refuses to replace a namespace that holds %s", (what, current) => {
    const result = mergeOwnedMetadata(current, { "minecraft.playtime": 1 }, policy);
    expect(result).toEqual({
      ok: false,
      reason: `metadata key minecraft holds ${what}, not an object; perkbridge will not replace it to write minecraft.playtime`,
      bytes: utf8JsonBytes(current),
    });
  });

  it("refuses a non-object in the middle of a deeper owned path", () => {
    const deep: MetadataPolicy = { ...policy, ownedPaths: ["discord.stats.xp"], trim: { drop: [], arrays: "oldest-first" } };
    const result = mergeOwnedMetadata({ discord: { stats: 7 } }, { "discord.stats.xp": 1 }, deep);
    expect(!result.ok && result.reason).toMatch(/^metadata key discord.stats holds a number/);
    expect(ok(mergeOwnedMetadata({ discord: { stats: { kept: true } } }, { "discord.stats.xp": 1 }, deep)).document).toEqual({
      discord: { stats: { kept: true, xp: 1 } },
    });
  });

  it("leaves a namespace that is not an object alone when nothing is written into it", () => {
    const result = ok(mergeOwnedMetadata({ minecraft: "x" }, { "discord.level": 3, "minecraft.playtime": undefined }, policy));
    expect(result.document).toEqual({ minecraft: "x", discord: { level: 3 } });
  });

  it("refuses a key it does not own", () => {
    const result = mergeOwnedMetadata(memberMetadata(), { "minecraft.rank": "mvp" }, policy);
    expect(!result.ok && result.reason).toBe("perkbridge does not own metadata key minecraft.rank: it is not among the owned paths");
  });

  it.each<[string, unknown]>([
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a Date", new Date(0)],
    ["a function", () => 1],
    ["a bigint", 1n],
    ["a nested undefined", { a: undefined }],
    ["a class instance", new Map()],
  ])("refuses %s as a value", (_name, value) => {
    const result = mergeOwnedMetadata({}, { "discord.level": value }, policy);
    expect(!result.ok && result.reason).toMatch(/^value for metadata key discord.level is not plain JSON/);
  });

  it("refuses a cyclic value but accepts a shared one", () => {
    const cyclic: Doc = {};
    cyclic["self"] = cyclic;
    expect(mergeOwnedMetadata({}, { "discord.level": cyclic }, policy).ok).toBe(false);
    const shared = { n: 1 };
    expect(ok(mergeOwnedMetadata({}, { "discord.level": [shared, shared, Object.create(null) as Doc] }, policy)).document).toEqual({
      discord: { level: [{ n: 1 }, { n: 1 }, {}] },
    });
  });

  it("copies owned values, so a caller changing them later does not change the document", () => {
    const homes = ["spawn"];
    const result = ok(mergeOwnedMetadata({}, { "minecraft.homes": homes }, policy));
    homes.push("shop");
    expect(result.document).toEqual({ minecraft: { homes: ["spawn"] } });
  });

  it("keeps a user key named __proto__ as data", () => {
    const current = JSON.parse('{"__proto__":{"x":1},"minecraft":{"__proto__":2}}') as Doc;
    const result = ok(mergeOwnedMetadata(current, { "minecraft.playtime": 1 }, policy));
    expect(JSON.stringify(result.document)).toBe('{"__proto__":{"x":1},"minecraft":{"__proto__":2,"playtime":1}}');
    expect(Object.getPrototypeOf(result.document)).toBe(Object.prototype);
  });

  describe("identity keys", () => {
    const linking: MetadataPolicy = { ...policy, ownedPaths: [...policy.ownedPaths, "minecraft.uuid", "minecraft.name"] };
    const uuid = "069a79f4-44e9-4726-a5be-fca90e38aaf5";

    it("writes an owned identity key where it is absent", () => {
      const result = ok(mergeOwnedMetadata({ minecraft: { rank: "vip" } }, { "minecraft.uuid": uuid }, linking));
      expect(result.document).toEqual({ minecraft: { rank: "vip", uuid } });
    });

    it("leaves an equal one unchanged and ignores a removal", () => {
      const current = { minecraft: { uuid } };
      const result = ok(mergeOwnedMetadata(current, { "minecraft.uuid": uuid, "minecraft.name": undefined }, linking));
      expect(result.changed).toBe(false);
    });

    it("never overwrites a different one", () => {
      const result = mergeOwnedMetadata({ minecraft: { uuid } }, { "minecraft.uuid": "00000000-0000-0000-0000-000000000000" }, linking);
      expect(!result.ok && result.reason).toBe("identity key minecraft.uuid already holds a different value; perkbridge never overwrites identity keys");
    });

    it("never trims them: they count as other keys", () => {
      const current = { minecraft: { name: "Notch" } };
      const limit = utf8JsonBytes({ minecraft: { name: "Notch", uuid } });
      const result = ok(mergeOwnedMetadata(current, { "minecraft.uuid": uuid, "minecraft.playtime": 12 }, { ...linking, limitBytes: limit }));
      expect(result.document).toEqual({ minecraft: { name: "Notch", uuid } });
      expect(result.trimmed).toEqual(["dropped minecraft.playtime"]);
      const tooSmall = mergeOwnedMetadata(current, { "minecraft.uuid": uuid }, { ...linking, limitBytes: limit - 1 });
      expect(tooSmall).toEqual({
        ok: false,
        reason: `other keys already take ${limit} bytes of the ${limit - 1}-byte limit; perkbridge's write is skipped`,
        bytes: limit,
      });
    });
  });
});

describe("the byte budget", () => {
  /** `current` padded with an ASCII key so that merging `owned` gives exactly `target` bytes. */
  function padded(current: Doc, owned: Doc, target: number, pol: MetadataPolicy = policy): Doc {
    const base = ok(mergeOwnedMetadata({ pad: "", ...current }, owned, { ...pol, limitBytes: 1e9 })).bytes;
    expect(target - base).toBeGreaterThanOrEqual(0);
    return { pad: "x".repeat(target - base), ...current };
  }

  it("sends a document of exactly the limit untrimmed, and trims at one byte more", () => {
    const owned = { "minecraft.playtime": 4320, "minecraft.homes": ["spawn", "shop", "base"] };
    const atLimit = padded(memberMetadata(), owned, 16_000);
    const exact = ok(mergeOwnedMetadata(atLimit, owned, policy));
    expect(exact.bytes).toBe(16_000);
    expect(encoder.encode(JSON.stringify(exact.document)).length).toBe(16_000);
    expect(exact.trimmed).toEqual([]);

    const over = padded(memberMetadata(), owned, 16_001);
    const trimmed = ok(mergeOwnedMetadata(over, owned, policy));
    expect(trimmed.trimmed).toEqual(["shortened minecraft.homes by 1 of 3 (oldest first)"]);
    expect(getPath(trimmed.document, "minecraft.homes")).toEqual(["shop", "base"]);
    expect(trimmed.bytes).toBe(16_001 - utf8JsonBytes("spawn") - 1);
    expect(trimmed.bytes).toBe(encoder.encode(JSON.stringify(trimmed.document)).length);
  });

  it.each([
    ["ä (2 bytes)", "ä"],
    ["€ (3 bytes)", "€"],
    ["中 (CJK, 3 bytes)", "中"],
    ["😀 (4 bytes, 2 UTF-16 units)", "😀"],
  ])("counts bytes, not characters: %s at the boundary", (_name, char) => {
    const limit = 300;
    const pol = { ...policy, limitBytes: limit };
    const owned = { "discord.level": 25 };
    const fits = padded({ bio: char.repeat(20) }, owned, limit);
    const exact = ok(mergeOwnedMetadata(fits, owned, pol));
    expect(exact.bytes).toBe(limit);
    expect(exact.trimmed).toEqual([]);

    // One more character: still well under the limit in UTF-16 units, over it in bytes.
    const over = { ...fits, bio: char.repeat(21) };
    const result = ok(mergeOwnedMetadata(over, owned, pol));
    expect(result.trimmed).toEqual(["dropped discord.level"]);
    expect(result.document).toEqual(over);
    expect(JSON.stringify(result.document).length).toBeLessThan(limit);
    expect(result.bytes).toBe(encoder.encode(JSON.stringify(result.document)).length);
    expect(result.bytes).toBeLessThanOrEqual(limit);
  });

  it("a multibyte character in an owned value is trimmed whole, never split", () => {
    const owned = { "minecraft.homes": ["😀😀", "中中", "ää"] };
    const limit = utf8JsonBytes({ minecraft: { homes: ["中中", "ää"] } });
    for (const l of [limit, limit + 1, limit + 7]) {
      const result = ok(mergeOwnedMetadata({}, owned, { ...policy, limitBytes: l }));
      expect(getPath(result.document, "minecraft.homes")).toEqual(["中中", "ää"]);
    }
    const less = ok(mergeOwnedMetadata({}, owned, { ...policy, limitBytes: limit - 1 }));
    expect(getPath(less.document, "minecraft.homes")).toEqual(["ää"]);
  });

  describe("trims in a fixed order: drop list, arrays oldest-first, then the last owned paths first", () => {
    const current: Doc = {
      network: { total_score: 5000 },
      minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", rank: "vip" },
    };
    const owned = {
      "minecraft.playtime": 4320,
      "minecraft.homes": ["h1", "h2", "h3", "h4"],
      "discord.level": 25,
      "discord.xp": 12500,
      "fivem.priority": 10,
      "minecraft.last_seen": "2024-01-15",
    };
    const full = ok(mergeOwnedMetadata(current, owned, { ...policy, limitBytes: 1e6 })).document;
    const without = (...paths: string[]): Doc => {
      const doc = structuredClone(full);
      for (const p of paths) {
        const [ns, key] = p.split(".") as [string, string];
        const obj = doc[ns] as Doc;
        delete obj[key];
        if (Object.keys(obj).length === 0 && !(ns in current)) delete doc[ns];
      }
      return doc;
    };
    const withHomes = (doc: Doc, homes: string[]): Doc => ({ ...doc, minecraft: { ...(doc["minecraft"] as Doc), homes } });

    it.each<[string, Doc, string[]]>([
      ["fits: nothing", full, []],
      ["first the drop list's first entry", without("minecraft.last_seen"), ["dropped minecraft.last_seen"]],
      ["then its second", without("minecraft.last_seen", "discord.xp"), ["dropped minecraft.last_seen", "dropped discord.xp"]],
      [
        "then arrays from the oldest end",
        withHomes(without("minecraft.last_seen", "discord.xp"), ["h3", "h4"]),
        ["dropped minecraft.last_seen", "dropped discord.xp", "shortened minecraft.homes by 2 of 4 (oldest first)"],
      ],
      [
        "then the last owned paths first (fivem.priority), namespace and all",
        withHomes(without("minecraft.last_seen", "discord.xp", "fivem.priority"), []),
        ["dropped minecraft.last_seen", "dropped discord.xp", "shortened minecraft.homes by 4 of 4 (oldest first)", "dropped fivem.priority"],
      ],
      [
        "down to the other keys alone",
        without("minecraft.last_seen", "discord.xp", "fivem.priority", "discord.level", "minecraft.homes", "minecraft.playtime"),
        [
          "dropped minecraft.last_seen",
          "dropped discord.xp",
          "shortened minecraft.homes by 4 of 4 (oldest first)",
          "dropped fivem.priority",
          "dropped discord.level",
          "dropped minecraft.homes",
          "dropped minecraft.playtime",
        ],
      ],
    ])("%s", (_name, expected, trimmed) => {
      const limit = utf8JsonBytes(expected);
      const result = ok(mergeOwnedMetadata(current, owned, { ...policy, limitBytes: limit }));
      expect(result.document).toEqual(expected);
      expect(result.trimmed).toEqual(trimmed);
      expect(result.bytes).toBe(limit);
      // Deterministic: the same input gives the same bytes in the same order.
      expect(JSON.stringify(ok(mergeOwnedMetadata(current, owned, { ...policy, limitBytes: limit })).document)).toBe(JSON.stringify(result.document));
      expect(result.document["network"]).toBe(current["network"]);
    });

    it("and refuses when the other keys alone are over the limit", () => {
      const others = utf8JsonBytes(without("minecraft.last_seen", "discord.xp", "fivem.priority", "discord.level", "minecraft.homes", "minecraft.playtime"));
      expect(mergeOwnedMetadata(current, owned, { ...policy, limitBytes: others - 1 })).toEqual({
        ok: false,
        reason: `other keys already take ${others} bytes of the ${others - 1}-byte limit; perkbridge's write is skipped`,
        bytes: others,
      });
    });
  });

  it("trims stale owned keys (not in this write) before the ones being written", () => {
    const current = { minecraft: { homes: ["a", "b", "c", "d"], playtime: 1 } };
    const owned = { "discord.level": 30, "minecraft.playtime": 2 };
    const limit = utf8JsonBytes({ minecraft: { homes: ["d"], playtime: 2 }, discord: { level: 30 } });
    const result = ok(mergeOwnedMetadata(current, owned, { ...policy, limitBytes: limit }));
    expect(result.document).toEqual({ minecraft: { homes: ["d"], playtime: 2 }, discord: { level: 30 } });
    expect(result.trimmed).toEqual(["shortened minecraft.homes by 3 of 4 (oldest first)"]);
  });

  it("shrinks a stale document that is over the limit even when nothing new is written", () => {
    const current = { keep: "x", minecraft: { homes: ["a", "b", "c"] } };
    const result = ok(mergeOwnedMetadata(current, {}, { ...policy, limitBytes: utf8JsonBytes(current) - 4 }));
    expect(result.changed).toBe(true);
    expect(result.document).toEqual({ keep: "x", minecraft: { homes: ["b", "c"] } });
  });

  it("drops a configured path inside an owned object", () => {
    const pol: MetadataPolicy = {
      ...policy,
      ownedPaths: ["minecraft.stats"],
      trim: { drop: ["minecraft.stats.homes"], arrays: "oldest-first" },
    };
    const owned = { "minecraft.stats": { kills: 3, homes: ["a", "b"] } };
    const limit = utf8JsonBytes({ minecraft: { stats: { kills: 3 } } });
    const result = ok(mergeOwnedMetadata({}, owned, { ...pol, limitBytes: limit }));
    expect(result.document).toEqual({ minecraft: { stats: { kills: 3 } } });
    expect(result.trimmed).toEqual(["dropped minecraft.stats.homes"]);
    // A stale one, too, copying on the way rather than changing the caller's document.
    const current = deepFreeze({ minecraft: { stats: { kills: 3, homes: ["a", "b"] } } });
    expect(ok(mergeOwnedMetadata(current, {}, { ...pol, limitBytes: limit })).document).toEqual({ minecraft: { stats: { kills: 3 } } });
  });
});

describe("ownedPatch", () => {
  it("holds only perkbridge's keys, nested by path", () => {
    const result = ownedPatch({ "minecraft.playtime": 4320, "discord.level": 25, "fivem.priority": undefined }, policy);
    expect(result).toEqual({
      ok: true,
      patch: { minecraft: { playtime: 4320 }, discord: { level: 25 } },
      bytes: utf8JsonBytes({ minecraft: { playtime: 4320 }, discord: { level: 25 } }),
      trimmed: [],
    });
  });

  it("fits the patch itself into the limit", () => {
    const limit = utf8JsonBytes({ minecraft: { homes: ["c"] } });
    const result = ownedPatch({ "minecraft.homes": ["a", "b", "c"], "minecraft.last_seen": "today" }, { ...policy, limitBytes: limit });
    expect(result.ok && result.patch).toEqual({ minecraft: { homes: ["c"] } });
    expect(result.ok && result.trimmed).toEqual(["dropped minecraft.last_seen", "shortened minecraft.homes by 2 of 3 (oldest first)"]);
  });

  it("refuses unowned keys", () => {
    expect(ownedPatch({ "game_stats.level": 1 }, policy).ok).toBe(false);
  });
});

describe("properties", () => {
  const ownedPaths = ["minecraft.playtime", "minecraft.homes", "discord.level", "discord.stats.xp", "fivem.priority"];
  const pol = (limitBytes: number): MetadataPolicy => ({
    limitBytes,
    ownedPaths,
    identityPaths: DEFAULT_IDENTITY_PATHS,
    trim: { drop: ["discord.level"], arrays: "oldest-first" },
  });
  const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: "binary", maxLength: 8 }), fc.constantFrom("ä", "😀", "中文"));
  const leaf = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null), fc.array(text, { maxLength: 6 }));
  const keys = fc.constantFrom("playtime", "homes", "level", "uuid", "name", "user_id", "stats", "rank", "other");
  const namespace = fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(keys, fc.oneof(leaf, fc.dictionary(fc.constantFrom("xp", "kills"), leaf, { maxKeys: 2 })), { maxKeys: 5 }) },
    { weight: 1, arbitrary: leaf },
  );
  const current = fc.record(
    {
      minecraft: namespace,
      discord: namespace,
      fivem: namespace,
      discord_id: fc.string({ maxLength: 20 }),
      game_stats: fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 4 }),
      notes: text,
    },
    { requiredKeys: [] },
  );
  const owned = fc.record(
    {
      "minecraft.playtime": fc.option(fc.integer(), { nil: undefined }),
      "minecraft.homes": fc.option(fc.array(text, { maxLength: 12 }), { nil: undefined }),
      "discord.level": fc.option(fc.oneof(fc.integer(), text), { nil: undefined }),
      "discord.stats.xp": fc.option(fc.integer(), { nil: undefined }),
      "fivem.priority": fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
    },
    { requiredKeys: [] },
  );
  const limit = fc.integer({ min: 2, max: 700 });
  const isOwned = (path: string): boolean => ownedPaths.some((o) => path === o || path.startsWith(`${o}.`));

  it("ok ⇒ within the limit, every non-owned path as it was, and merging twice = merging once", () => {
    fc.assert(
      fc.property(current, owned, limit, (cur, own, limitBytes) => {
        const first = mergeOwnedMetadata(cur, own, pol(limitBytes));
        if (!first.ok) return;
        expect(first.bytes).toBeLessThanOrEqual(limitBytes);
        expect(first.bytes).toBe(encoder.encode(JSON.stringify(first.document)).length);
        // Both ways, so nothing is lost and nothing unowned appears. An object stays an
        // object, though perkbridge may have written into it or removed its own keys from it.
        for (const path of [...leafPaths(cur), ...leafPaths(first.document)]) {
          if (isOwned(path)) continue;
          const before = getPath(cur, path);
          const after = getPath(first.document, path);
          if (isPlainObject(before) || isPlainObject(after)) expect(isPlainObject(before) && isPlainObject(after)).toBe(true);
          else expect(after).toEqual(before);
        }
        const second = ok(mergeOwnedMetadata(first.document, own, pol(limitBytes)));
        expect(JSON.stringify(second.document)).toBe(JSON.stringify(first.document));
        expect(second.changed).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it("refuses only for a conflict or when the other keys alone are over the limit", () => {
    fc.assert(
      fc.property(current, owned, limit, (cur, own, limitBytes) => {
        const result = mergeOwnedMetadata(cur, own, pol(limitBytes));
        if (result.ok) return;
        if (result.reason.startsWith("metadata key ")) {
          const blocked = result.reason.split(" ")[2] as string;
          expect(getPath(cur, blocked)).not.toBeUndefined();
          expect(isPlainObject(getPath(cur, blocked))).toBe(false);
          return;
        }
        expect(result.reason).toMatch(/^other keys already take \d+ bytes/);
        // The other keys: the document with every owned key taken out (namespaces that existed stay).
        const others = structuredClone(cur);
        for (const path of ownedPaths) {
          const parts = path.split(".");
          const leafKey = parts.pop() as string;
          const parent = getPath(others, parts.join("."));
          if (isPlainObject(parent)) delete parent[leafKey];
        }
        expect(result.bytes).toBe(utf8JsonBytes(others));
        expect(result.bytes).toBeGreaterThan(limitBytes);
      }),
      { numRuns: 400 },
    );
  });
});
