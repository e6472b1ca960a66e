import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  classifyReply,
  parentInfoHas,
  parsePlayerList,
  whitelistHas,
  type ReplyVerdict,
} from "../../src/adapters/minecraft/classify-reply.js";

const U = "069a79f4-44e9-4726-a5be-fca90e38aaf5";

describe("classifyReply", () => {
  it.each<[string, string, Partial<ReplyVerdict>]>([
    ["LuckPerms parent add", `[LP] ${U} now inherits permissions from vip in context global.`, { kind: "done", state: "present", changed: true }],
    ["LuckPerms already inherits", "[LP] bob already inherits from vip in context global.", { kind: "done", state: "present", changed: false }],
    ["LuckPerms parent remove", "[LP] bob no longer inherits permissions from vip in context global.", { kind: "done", state: "absent", changed: true }],
    ["LuckPerms does not inherit", "[LP] bob does not inherit from vip in context global.", { kind: "done", state: "absent", changed: false }],
    ["coloured LuckPerms reply", "§3[LP] §bbob§a now inherits permissions from §bvip§a in context §eglobal§a.", { kind: "done", state: "present" }],
    ["vanilla whitelist add", "Added bob to the whitelist", { kind: "done", state: "present", changed: true }],
    ["vanilla already whitelisted", "Player is already whitelisted", { kind: "done", state: "present", changed: false }],
    ["vanilla whitelist remove", "Removed bob from the whitelist", { kind: "done", state: "absent", changed: true }],
    ["vanilla not whitelisted", "Player is not whitelisted", { kind: "done", state: "absent", changed: false }],
    ["empty (async LuckPerms)", "", { kind: "empty" }],
    ["only whitespace", " \n ", { kind: "empty" }],
    ["a plugin's own text", "Gave 1 [Diamond] to bob", { kind: "unrecognized", text: "Gave 1 [Diamond] to bob" }],
    ["unknown command (vanilla)", "Unknown or incomplete command, see below for error\nlp user x<--[HERE]", { kind: "failed", retryable: false }],
    ["unknown command (Bukkit)", 'Unknown command. Type "/help" for help.', { kind: "failed", retryable: false }],
    ["group not found (LuckPerms 5)", "[LP] A group named mvp could not be found.", { kind: "failed", retryable: false }],
    ["group not found (LuckPerms 4)", "[LP] A group could not be found with that name.", { kind: "failed", retryable: false }],
    ["invalid group name", "[LP] vip;op is not a valid group name.", { kind: "failed", retryable: false }],
    ["console lacks permission", "[LP] You do not have permission to use this command!", { kind: "failed", retryable: false }],
    ["storage error", "[LP] There was an error whilst saving user data for bob.", { kind: "failed", retryable: true }],
    ["user not found", "[LP] A user for bob could not be found.", { kind: "needs-online" }],
    ["user not online", "[LP] User bob is not online.", { kind: "needs-online" }],
    ["give to an offline player", "No player was found", { kind: "needs-online" }],
    ["unknown profile", "That player does not exist", { kind: "failed", retryable: false }],
  ])("%s", (_label, reply, expected) => {
    expect(classifyReply(reply)).toMatchObject(expected);
  });

  it("names the missing group and how to create it", () => {
    const verdict = classifyReply("[LP] A group named mvp could not be found.");
    expect(verdict).toMatchObject({ kind: "failed", reason: "the group mvp does not exist on the server" });
    expect(verdict.kind === "failed" && verdict.fix).toContain("lp creategroup mvp");
  });

  it("lets a failure line win over a success line in the same reply", () => {
    const reply = "[LP] bob now inherits permissions from vip in context global.\n[LP] There was an error whilst saving user data for bob.";
    expect(classifyReply(reply)).toMatchObject({ kind: "failed", retryable: true });
  });

  it("never calls a reply containing a known failure line a success (property)", () => {
    const failures = fc.constantFrom(
      "Unknown or incomplete command, see below for error",
      "[LP] A group named vip could not be found.",
      "[LP] There was an error whilst saving user data for bob.",
      "That player does not exist",
    );
    fc.assert(
      fc.property(fc.array(fc.string().filter((s) => !s.includes("\n"))), failures, fc.nat(), (noise, failure, at) => {
        const lines = [...noise];
        lines.splice(at % (lines.length + 1), 0, failure);
        expect(["failed", "needs-online"]).toContain(classifyReply(lines.join("\n")).kind);
      }),
    );
  });
});

describe("read-back parsers", () => {
  it.each<[string, string, "present" | "absent" | "unknown"]>([
    ["[LP] bob's Parents:  (page 1 of 1 - 2 entries)\n> default\n> vip", "vip", "present"],
    ["[LP] bob's Parents:  (page 1 of 1 - 2 entries)\n> default\n> vip", "VIP", "present"],
    ["[LP] bob's Parents:  (page 1 of 1 - 1 entries)\n> default", "vip", "absent"],
    ["[LP] bob's Parents:  (page 1 of 1 - 1 entries)\n> vipplus", "vip", "absent"],
    ["[LP] bob does not have any parents defined.", "vip", "absent"],
    ["", "vip", "unknown"],
    ["Unknown or incomplete command, see below for error", "vip", "unknown"],
  ])("parent info %j has %s: %s", (reply, group, expected) => {
    expect(parentInfoHas(reply, group)).toBe(expected);
  });

  it.each<[string, string, "present" | "absent" | "unknown"]>([
    ["There are 2 whitelisted player(s): alice, Bob", "bob", "present"],
    ["There are 1 whitelisted player(s): alice", "bob", "absent"],
    ["There are no whitelisted players", "bob", "absent"],
    ["", "bob", "unknown"],
  ])("whitelist %j has %s: %s", (reply, name, expected) => {
    expect(whitelistHas(reply, name)).toBe(expected);
  });

  it.each([
    ["There are 0 of a max of 20 players online: ", []],
    [`There are 2 of a max of 20 players online: bob (${U}), alice`, [{ name: "bob", uuid: U }, { name: "alice" }]],
    ["There are 1/20 players online:\nbob", [{ name: "bob" }]],
    ["There are 2 out of maximum 20 players online.\ndefault: bob, alice", [{ name: "bob" }, { name: "alice" }]],
  ])("reads the player list %j", (reply, players) => {
    expect(parsePlayerList(reply)).toEqual(players);
  });

  it("returns null for a reply that is not a player list", () => {
    expect(parsePlayerList("Unknown or incomplete command, see below for error")).toBeNull();
    expect(parsePlayerList("")).toBeNull();
  });
});
