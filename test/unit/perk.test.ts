import { describe, expect, it } from "vitest";
import { perkKey, subjectKindOf, type Perk } from "../../src/core/perk.js";
import { memberKey } from "../../src/core/member.js";
import { PerkbridgeError } from "../../src/core/errors.js";

describe("perkKey", () => {
  it.each<[Perk, string]>([
    [{ target: "discord", scope: "111", kind: "role", value: "222" }, "discord:111:role:222"],
    [{ target: "minecraft", scope: "survival", kind: "whitelist", value: "" }, "minecraft:survival:whitelist:"],
  ])("keys %o as %s", (perk, key) => {
    expect(perkKey(perk)).toBe(key);
  });

  it("ignores params, so changing a template does not orphan a grant", () => {
    const a: Perk = { target: "minecraft", scope: "s", kind: "group", value: "vip", params: { grant: "x" } };
    const b: Perk = { ...a, params: { grant: "y" } };
    expect(perkKey(a)).toBe(perkKey(b));
  });
});

describe("subjectKindOf", () => {
  it.each([
    ["discord", "discord"],
    ["minecraft", "minecraft"],
    ["fivem", "fivem"],
    ["http", "member"],
  ] as const)("%s perks go to the %s identity", (target, subject) => {
    expect(subjectKindOf({ target })).toBe(subject);
  });
});

describe("memberKey", () => {
  it("joins source and id", () => {
    expect(memberKey({ source: "paymenthub", id: "mem_1" })).toBe("paymenthub:mem_1");
  });
});

describe("PerkbridgeError", () => {
  it("carries code and cause, and shows the code in its name", () => {
    const cause = new Error("inner");
    const err = new PerkbridgeError("ERR_TEST", "outer", { cause });
    expect(err.code).toBe("ERR_TEST");
    expect(err.cause).toBe(cause);
    expect(err.name).toBe("PerkbridgeError [ERR_TEST]");
    expect(err).toBeInstanceOf(Error);
  });
});
