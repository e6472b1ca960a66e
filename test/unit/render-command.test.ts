import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkTemplate,
  DEFAULT_COMMANDS,
  isValidPlaceholderValue,
  renderCommand,
  type PlaceholderValues,
} from "../../src/adapters/minecraft/render-command.js";

const UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5";
const ALL: PlaceholderValues = { uuid: UUID, name: "bob", group: "vip", member: "paymenthub:mem_1", plan: "plan_premium" };

describe("renderCommand", () => {
  it.each([
    [DEFAULT_COMMANDS.group_add, `lp user ${UUID} parent add vip`],
    [DEFAULT_COMMANDS.group_remove, `lp user ${UUID} parent remove vip`],
    [DEFAULT_COMMANDS.group_info, `lp user ${UUID} parent info`],
    [DEFAULT_COMMANDS.whitelist_add, "whitelist add bob"],
    [DEFAULT_COMMANDS.whitelist_remove, "whitelist remove bob"],
    ["lpv user {uuid} parent add {group}", `lpv user ${UUID} parent add vip`],
    ["say {name} bought {plan} ({member})", "say bob bought plan_premium (paymenthub:mem_1)"],
    ["give {name} diamond 3", "give bob diamond 3"],
  ])("renders %s", (template, expected) => {
    expect(renderCommand(template, ALL)).toEqual({ ok: true, command: expected });
  });

  it.each<[string, PlaceholderValues, string, "missing" | "invalid" | "template"]>([
    ["a name with a newline", { ...ALL, name: "bob\nop eve" }, "name", "invalid"],
    ["a name with a space", { ...ALL, name: "bob op" }, "name", "invalid"],
    ["a 40-character name", { ...ALL, name: "a".repeat(40) }, "name", "invalid"],
    ["a 2-character name", { ...ALL, name: "ab" }, "name", "invalid"],
    ["a name with a section sign", { ...ALL, name: "bob§c" }, "name", "invalid"],
    ["a UUID with spaces", { ...ALL, uuid: "069a79f4 44e9 4726 a5be fca90e38aaf5" }, "uuid", "invalid"],
    ["a UUID without dashes", { ...ALL, uuid: "069a79f444e94726a5befca90e38aaf5" }, "uuid", "invalid"],
    ["a UUID with a trailing command", { ...ALL, uuid: `${UUID}\nop eve` }, "uuid", "invalid"],
    ["a group with a semicolon", { ...ALL, group: "vip;op" }, "group", "invalid"],
    ["no name yet", { uuid: UUID }, "name", "missing"],
    ["an empty name", { ...ALL, name: "" }, "name", "missing"],
  ])("refuses %s", (_label, values, placeholder, problem) => {
    const template = placeholder === "name" ? "whitelist add {name}" : placeholder === "uuid" ? DEFAULT_COMMANDS.group_add : "lp user {uuid} parent add {group}";
    const result = renderCommand(template, values);
    expect(result).toMatchObject({ ok: false, problem, placeholder });
  });

  it("quotes a refused value safely in the reason", () => {
    const result = renderCommand("whitelist add {name}", { name: "bob\nop eve" });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toContain('"bob\\nop eve"');
    expect(!result.ok && result.reason).not.toContain("\n");
  });

  it.each([
    ["an unknown placeholder", "whitelist add {player}"],
    ["a newline in the template", "say hi\nop eve"],
    ["an empty template", "  "],
  ])("rejects a template with %s", (_label, template) => {
    expect(checkTemplate(template)).toMatchObject({ ok: false, problem: "template" });
    expect(renderCommand(template, ALL)).toMatchObject({ ok: false, problem: "template" });
  });

  it("never renders a command with a control character, whatever the values (property)", () => {
    fc.assert(
      fc.property(
        fc.record({ uuid: fc.string(), name: fc.string(), group: fc.string(), member: fc.string(), plan: fc.string() }),
        fc.constantFrom(...Object.values(DEFAULT_COMMANDS), "say {name} {member} {plan}"),
        (values, template) => {
          const result = renderCommand(template, values);
          if (result.ok) {
            // eslint-disable-next-line no-control-regex
            expect(result.command).not.toMatch(/[\u0000-\u001f\u007f]/);
            expect(result.command.split(" ").length).toBe(template.split(" ").length);
          }
        },
      ),
    );
  });

  it("accepts exactly the names Minecraft accepts (property)", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_]{3,16}$/), (name) => {
        expect(renderCommand("whitelist add {name}", { name })).toEqual({ ok: true, command: `whitelist add ${name}` });
      }),
    );
    fc.assert(
      fc.property(fc.string(), (name) => {
        expect(isValidPlaceholderValue("name", name)).toBe(/^[A-Za-z0-9_]{3,16}$/.test(name));
      }),
    );
  });

  it("accepts any dashed UUID (property)", () => {
    fc.assert(
      fc.property(fc.uuid(), (uuid) => {
        expect(renderCommand(DEFAULT_COMMANDS.group_info, { uuid })).toEqual({ ok: true, command: `lp user ${uuid} parent info` });
      }),
    );
  });
});
