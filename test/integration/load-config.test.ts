import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerkbridgeError } from "../../src/core/errors.js";
import type { Perk } from "../../src/core/perk.js";
import { ConfigError } from "../../src/daemon/config/config-error.js";
import { configSchema } from "../../src/daemon/config/config-schema.js";
import { formatConfigProblem } from "../../src/daemon/config/format-config-errors.js";
import { loadConfig, parseConfig, type Env } from "../../src/daemon/config/load-config.js";

const EXAMPLE = join(import.meta.dirname, "../../config/perkbridge.example.yaml");
const EXAMPLE_ENV = {
  PAYMENTHUB_API_KEY: "ph_live_key_0001",
  PAYMENTHUB_WEBHOOK_SECRET: "whsec_0002",
  DISCORD_TOKEN: "discord.token.0003",
  MINECRAFT_RCON_PASSWORD: "rcon-pass-0004",
  SHOP_WEBHOOK_SECRET: "shop-secret-0005",
};

/** The formatted problems of an invalid config; fails the test if it loads. */
function problemsOf(text: string, env: Env = {}): string[] {
  try {
    parseConfig(text, env, "test.yaml");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map(formatConfigProblem);
  }
  throw new Error("expected the config to be rejected");
}

function messageOf(text: string, env: Env = {}): string {
  try {
    parseConfig(text, env, "test.yaml");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error("expected the config to be rejected");
}

const TARGETS = `targets:
  discord:
    token: bot-token
    guilds: [{ id: "111" }]
  minecraft:
    servers:
      survival:
        rcon: { password: rcon-pw }
  http:
    endpoints:
      shop: { url: "http://127.0.0.1:4030/x", secret: shop-secret }
`;

describe("parseConfig: valid files", () => {
  it("fills every default into an empty file", () => {
    const { config, plans, secrets } = parseConfig("", {}, "empty.yaml");
    expect(config).toEqual({
      server: { host: "127.0.0.1", port: 8787, body_limit: 1024 * 1024 },
      state: { dir: "./state", retention: 7 * 24 * 3600 * 1000 },
      log: { level: "info", format: "auto" },
      admin: { socket: join("./state", "admin.sock") },
      sources: {},
      targets: {},
      plans: {},
      policy: { adopt_existing: false, mass_revoke: { window: 600_000, share: 0.1, min: 25 } },
    });
    expect(plans.size).toBe(0);
    expect(secrets).toEqual([]);
  });

  it("accepts a file of comments only, and one with no sources and no targets", () => {
    expect(parseConfig("# nothing yet\n", {}, "c.yaml").config.server.port).toBe(8787);
    expect(parseConfig("server: { port: 9000 }\nlog: { level: debug }\n", {}, "c.yaml").config.server.port).toBe(9000);
  });

  it("turns a minimal plan into core rules", () => {
    const { plans } = parseConfig(
      `targets:
  minecraft:
    servers:
      survival: { rcon: { password: pw } }
plans:
  plan_basic:
    perks:
      - minecraft: { server: survival, whitelist: true }
`,
      {},
      "minimal.yaml",
    );
    expect([...plans.values()]).toEqual([
      { id: "plan_basic", perks: [{ target: "minecraft", scope: "survival", kind: "whitelist", value: "" }], graceMs: 0, honorPaidPeriod: false },
    ]);
  });

  it("normalizes sizes, shares, durations, secret lists and the admin socket", () => {
    const { config } = parseConfig(
      `server: { body_limit: 512kb }
state: { dir: /var/lib/perkbridge, retention: 1h30m }
policy: { mass_revoke: { share: "5%", window: 90s } }
sources:
  paymenthub: { api_key: k, webhook_secrets: only-one }
`,
      {},
      "n.yaml",
    );
    expect(config.server.body_limit).toBe(512 * 1024);
    expect(config.state.retention).toBe(90 * 60_000);
    expect(config.policy.mass_revoke).toEqual({ window: 90_000, share: 0.05, min: 25 });
    expect(config.sources.paymenthub?.webhook_secrets).toEqual(["only-one"]);
    expect(config.admin.socket).toBe("/var/lib/perkbridge/admin.sock");
  });
});

describe("loadConfig: the example file", () => {
  it("loads with its environment variables set and points at loopback emulators", async () => {
    const { config, plans, secrets, source } = await loadConfig(EXAMPLE, EXAMPLE_ENV);
    expect(source).toBe(EXAMPLE);
    expect(config.sources.paymenthub?.base_url).toBe("http://127.0.0.1:4010/v1");
    expect(config.sources.paymenthub?.api_key).toBe(EXAMPLE_ENV.PAYMENTHUB_API_KEY);
    expect(config.targets.discord?.api_base).toBe("http://127.0.0.1:4020/api");
    expect(config.targets.minecraft?.servers["survival"]?.rcon).toEqual({ host: "127.0.0.1", port: 25575, password: EXAMPLE_ENV.MINECRAFT_RCON_PASSWORD });
    expect(config.policy.mass_revoke.share).toBeCloseTo(0.1);
    expect(new Set(secrets)).toEqual(new Set(Object.values(EXAMPLE_ENV)));
    expect(secrets.map((s) => s.length)).toEqual([...secrets.map((s) => s.length)].sort((a, b) => b - a));

    const premium = plans.get("plan_premium");
    expect(premium?.graceMs).toBe(3 * 24 * 3600 * 1000);
    expect(premium?.honorPaidPeriod).toBe(true);
    expect(premium?.perks).toEqual<Perk[]>([
      { target: "discord", scope: "111111111111111111", kind: "role", value: "222222222222222222" },
      { target: "discord", scope: "111111111111111111", kind: "role", value: "444444444444444444" },
      { target: "discord", scope: "111111111111111111", kind: "role", value: "555555555555555555" },
      { target: "minecraft", scope: "survival", kind: "group", value: "vip" },
      { target: "minecraft", scope: "survival", kind: "whitelist", value: "" },
      { target: "minecraft", scope: "survival", kind: "command", value: "welcome_kit", params: { grant: "give {name} diamond 5", once: true, online_only: true } },
      { target: "http", scope: "shop", kind: "event", value: "" },
    ]);
    expect(premium?.trialPerks).toEqual([{ target: "discord", scope: "111111111111111111", kind: "role", value: "333333333333333333" }]);
    expect(plans.get("plan_basic")?.trialPerks).toBeUndefined();
  });

  it("names every unset variable and where it is used", async () => {
    const error = await loadConfig(EXAMPLE, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems).toEqual([
      "sources.paymenthub.api_key: environment variable PAYMENTHUB_API_KEY is not set",
      "sources.paymenthub.webhook_secrets[0]: environment variable PAYMENTHUB_WEBHOOK_SECRET is not set",
      "targets.discord.token: environment variable DISCORD_TOKEN is not set",
      "targets.minecraft.servers.survival.rcon.password: environment variable MINECRAFT_RCON_PASSWORD is not set",
      "targets.http.endpoints.shop.secret: environment variable SHOP_WEBHOOK_SECRET is not set",
    ]);
  });
});

describe("loadConfig: files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perkbridge-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file from disk", async () => {
    const path = join(dir, "ok.yaml");
    await writeFile(path, "server:\n  port: ${PORT}\n");
    expect((await loadConfig(path, { PORT: "9100" })).config.server.port).toBe(9100);
  });

  it("rejects a missing file with ERR_CONFIG and a way out", async () => {
    const path = join(dir, "absent.yaml");
    const error = await loadConfig(path, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PerkbridgeError);
    expect((error as ConfigError).code).toBe("ERR_CONFIG");
    expect((error as ConfigError).message).toBe(
      `${path}: 1 problem in the configuration:\n  - file not found; copy config/perkbridge.example.yaml there, or pass --config <file>`,
    );
  });

  it("rejects a directory", async () => {
    const error = await loadConfig(dir, {}).catch((e: unknown) => e);
    expect((error as ConfigError).problems[0]?.message).toBe("this is a directory; pass --config <file>");
  });

  it("names line and column of a YAML syntax error in the file", async () => {
    const path = join(dir, "broken.yaml");
    await writeFile(path, "server:\n  host: 127.0.0.1\n port: 8787\n");
    const error = await loadConfig(path, {}).catch((e: unknown) => e);
    expect((error as ConfigError).message).toBe(`${path}: 1 problem in the configuration:\n  - line 3, column 1: YAML syntax error: All mapping items must start at the same column`);
  });
});

describe("parseConfig: problems, each at its path", () => {
  it.each<[string, string, string]>([
    ["a duration that is not one", "plans:\n  plan_premium:\n    grace: soon\n", 'plans.plan_premium.grace: expected a duration such as 3d or 12h, got "soon" (line 3)'],
    ["a typo in a key", "plans:\n  p:\n    grcae: 3d\n", "plans.p.grcae: unknown key (did you mean grace?) (line 3)"],
    ["a typo at the top", "plan: {}\n", "plan: unknown key (did you mean plans?) (line 1)"],
    ["an unknown key far from any known one", "server:\n  colour: red\n", "server.colour: unknown key; expected one of host, port, public_url or body_limit (line 2)"],
    ["a typo inside a named server", "targets:\n  minecraft:\n    servers:\n      s1:\n        rcon: { pasword: pw, password: pw }\n",
      "targets.minecraft.servers.s1.rcon.pasword: unknown key (did you mean password?) (line 5)"],
    ["an unquoted role id", `${TARGETS}plans:\n  p:\n    perks:\n      - discord: { guild: "111", roles: ["123451", 222333444555666777] }\n`,
      'plans.p.perks[0].discord.roles[1]: a Discord role id must be quoted, e.g. "123456789012345678": as a YAML number it loses precision (line 15)'],
    ["an empty list of webhook secrets", "sources:\n  paymenthub:\n    api_key: k\n    webhook_secrets: []\n",
      "sources.paymenthub.webhook_secrets: expected a webhook secret, or a list of at least one (for rotation), got a list (value hidden) (line 4)"],
    ["a section of the wrong shape", "plans: [a, b]\n", "plans: expected a mapping (key: value), got a list (line 1)"],
    ["an unquoted Discord id", `${TARGETS}plans:\n  p:\n    perks:\n      - discord: { guild: 111, role: "12345" }\n`,
      'plans.p.perks[0].discord.guild: a Discord id must be quoted, e.g. "123456789012345678": as a YAML number it loses precision (line 15)'],
    ["an unquoted Discord id among the guilds", "targets:\n  discord:\n    token: t\n    guilds:\n      - id: 123456789012345678\n",
      'targets.discord.guilds[0].id: a Discord id must be quoted, e.g. "123456789012345678": as a YAML number it loses precision (line 5)'],
    ["a Discord id with letters", "targets:\n  discord:\n    token: t\n    guilds: [{ id: abc }]\n",
      'targets.discord.guilds[0].id: expected a Discord id (digits only, quoted), got "abc" (line 4)'],
    ["a guild not listed", `${TARGETS}plans:\n  p:\n    perks:\n      - discord: { guild: "222", role: "12345" }\n`,
      'plans.p.perks[0].discord.guild: Discord guild "222" is not defined in targets.discord.guilds (line 15)'],
    ["a guild with no discord section", "plans:\n  p:\n    trial_perks:\n      - discord: { guild: \"222\", roles: [\"12345\"] }\n",
      'plans.p.trial_perks[0].discord.guild: Discord guild "222" is not defined in targets.discord.guilds (there is no targets.discord section) (line 4)'],
    ["a guild listed twice", 'targets:\n  discord:\n    token: t\n    guilds: [{ id: "1" }, { id: "1" }]\n', 'targets.discord.guilds[1].id: guild "1" is listed twice (line 4)'],
    ["a Minecraft server not defined", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: creative, group: vip }\n`,
      'plans.p.perks[0].minecraft.server: Minecraft server "creative" is not defined in targets.minecraft.servers (line 15)'],
    ["an HTTP endpoint not defined", `${TARGETS}plans:\n  p:\n    perks:\n      - http: { endpoint: store }\n`,
      'plans.p.perks[0].http.endpoint: HTTP endpoint "store" is not defined in targets.http.endpoints (line 15)'],
    ["an unknown placeholder in a perk", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: survival, command: kit, grant: "give {player} x" }\n`,
      "plans.p.perks[0].minecraft.grant: unknown placeholder {player} in command template; use {uuid} {name} {group} {member} {plan} (line 15)"],
    ["an unknown placeholder in a server command", "targets:\n  minecraft:\n    servers:\n      s1:\n        rcon: { password: pw }\n        commands:\n          group_add: lp user {user} parent add {group}\n",
      "targets.minecraft.servers.s1.commands.group_add: unknown placeholder {user} in command template; use {uuid} {name} {group} {member} {plan} (line 7)"],
    ["a command perk without grant", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: survival, command: kit }\n`,
      "plans.p.perks[0].minecraft.grant: a command perk needs grant: the command to run (line 15)"],
    ["command settings on a group perk", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: survival, group: vip, once: true }\n`,
      "plans.p.perks[0].minecraft.once: only allowed together with command (line 15)"],
    ["two kinds in one Minecraft perk", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: survival, group: vip, whitelist: true }\n`,
      "plans.p.perks[0].minecraft: use only one of group, whitelist or command, not group and whitelist (line 15)"],
    ["whitelist: false", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: survival, whitelist: false }\n`,
      "plans.p.perks[0].minecraft.whitelist: expected true, got false (line 15)"],
    ["a perk of no kind", "plans:\n  p:\n    perks:\n      - {}\n", "plans.p.perks[0]: expected one of discord, minecraft, fivem or http (line 4)"],
    ["a perk of two kinds", `${TARGETS}plans:\n  p:\n    perks:\n      - http: { endpoint: shop }\n        fivem: { server: main, ace: x }\n`,
      "plans.p.perks[0]: use only one of discord, minecraft, fivem or http, not fivem and http (line 15)"],
    ["a FiveM priority of 0", "plans:\n  p:\n    perks:\n      - fivem: { server: main, priority: 0 }\n", "plans.p.perks[0].fivem.priority: expected a whole number of at least 1, got 0 (line 4)"],
    ["a Discord perk with role and roles", `${TARGETS}plans:\n  p:\n    perks:\n      - discord: { guild: "111", role: "12345", roles: ["12346"] }\n`,
      "plans.p.perks[0].discord: use only one of role or roles, not role and roles (line 15)"],
    ["an empty roles list", `${TARGETS}plans:\n  p:\n    perks:\n      - discord: { guild: "111", roles: [] }\n`,
      "plans.p.perks[0].discord.roles: expected a list of at least 1 item (line 15)"],
    ["an enum value out of its set", 'targets:\n  discord:\n    token: t\n    guilds:\n      - { id: "1", enforce: always }\n',
      'targets.discord.guilds[0].enforce: expected one of restore, exclusive or off, got "always" (line 5)'],
    ["a port out of range", "server:\n  port: 70000\n", "server.port: expected a port number from 0 to 65535, got 70000 (line 2)"],
    ["a body limit in unknown units", "server:\n  body_limit: 1 lightyear\n", 'server.body_limit: expected a size in bytes such as 1048576 or "1mb", got "1 lightyear" (line 2)'],
    ["a URL that is not http", "sources:\n  paymenthub:\n    base_url: ftp://x\n    api_key: k\n    webhook_secrets: [w]\n",
      'sources.paymenthub.base_url: expected an http:// or https:// URL, got "ftp://x" (line 3)'],
    ["a share over 100 %", 'policy:\n  mass_revoke:\n    share: "150%"\n', 'policy.mass_revoke.share: expected a share such as 0.10 or "10%", got "150%" (line 3)'],
    ["a cron expression that is not one", "sources:\n  paymenthub:\n    api_key: k\n    webhook_secrets: w\n    poll: { cron: every hour }\n",
      'sources.paymenthub.poll.cron: expected "auto" or a cron expression such as "*/15 * * * *", got "every hour" (line 5)'],
    ["a metadata path outside the namespaces", "sources:\n  paymenthub:\n    api_key: k\n    webhook_secrets: w\n    metadata:\n      owned: [network.score]\n",
      'sources.paymenthub.metadata.owned[0]: expected a dotted path inside discord., minecraft. or fivem. such as minecraft.playtime, got "network.score" (line 6)'],
    ["a trimmed path not owned", "sources:\n  paymenthub:\n    api_key: k\n    webhook_secrets: w\n    metadata:\n      owned: [minecraft.stats]\n      trim_drop: [minecraft.stats.week, discord.level]\n",
      'sources.paymenthub.metadata.trim_drop[1]: "discord.level" is not among the owned paths: perkbridge only trims keys it owns (line 7)'],
    ["a server name with a colon", 'targets:\n  minecraft:\n    servers:\n      "a:b": { rcon: { password: pw } }\n', 'targets.minecraft.servers["a:b"]: invalid name: use letters, digits, _, - and . only (line 4)'],
    ["a missing required field", "targets:\n  minecraft:\n    servers:\n      s1:\n        rcon: { host: 127.0.0.1 }\n",
      "targets.minecraft.servers.s1.rcon.password: required: expected a non-empty string (quote it, or use ${NAME} from the environment) (line 5)"],
    ["a missing required section", "targets:\n  minecraft:\n    servers:\n      s1: {}\n", "targets.minecraft.servers.s1.rcon: required: expected a mapping (key: value) (line 4)"],
    ["a __proto__ key", "server:\n  __proto__: { port: 1 }\n", "server.__proto__: unknown key; expected one of host, port, public_url or body_limit (line 2)"],
    ["a duplicate key", "server:\n  port: 1\n  port: 2\n", "line 3, column 3: YAML syntax error: Map keys must be unique"],
    ["an unclosed quote", 'server:\n  host: "127.0.0.1\n', 'line 3, column 1: YAML syntax error: Missing closing "quote'],
    ["two YAML documents", "server: {}\n---\nlog: {}\n", "line 2, column 1: YAML syntax error: Source contains multiple documents; please use YAML.parseAllDocuments()"],
  ])("%s", (_name, text, problem) => {
    expect(problemsOf(text)).toEqual([problem]);
  });

  it("names line and column of a YAML syntax error, with a hint for ${NAME} in flow style", () => {
    expect(problemsOf("server: { port: ${PORT} }\n", { PORT: "1" })[0]).toBe(
      'line 1, column 18: YAML syntax error: Unexpected flow-map-start at node end (inside { } or [ ], quote values that use ${NAME}: "${NAME}")',
    );
  });

  it("lists every problem at once, in the order of the file", () => {
    const message = messageOf(`server:
  port: -1
  bogus: 1
plans:
  plan_premium:
    grace: soon
    perks:
      - discord: { guild: 123, role: "12345" }
      - minecraft: { server: nowhere, group: vip }
log:
  level: loud
`);
    expect(message).toBe(`test.yaml: 6 problems in the configuration:
  - server.port: expected a port number from 0 to 65535, got -1 (line 2)
  - server.bogus: unknown key; expected one of host, port, public_url or body_limit (line 3)
  - plans.plan_premium.grace: expected a duration such as 3d or 12h, got "soon" (line 6)
  - plans.plan_premium.perks[0].discord.guild: a Discord id must be quoted, e.g. "123456789012345678": as a YAML number it loses precision (line 8)
  - plans.plan_premium.perks[1].minecraft.server: Minecraft server "nowhere" is not defined in targets.minecraft.servers (there is no targets.minecraft section) (line 9)
  - log.level: expected one of fatal, error, warn, info, debug, trace or silent, got "loud" (line 11)`);
    expect(message).not.toMatch(/\n\s+at /);
  });
});

describe("parseConfig: environment interpolation", () => {
  it("substitutes variables in any string, and reads numbers and booleans from them", () => {
    const { config, secrets } = parseConfig(
      "server:\n  host: ${HOST}\n  port: ${PORT}\npolicy:\n  adopt_existing: ${ADOPT}\nstate:\n  dir: /srv/${NAME}/state\n",
      { HOST: "0.0.0.0", PORT: "9001", ADOPT: "true", NAME: "pb" },
      "env.yaml",
    );
    expect(config.server).toMatchObject({ host: "0.0.0.0", port: 9001 });
    expect(config.policy.adopt_existing).toBe(true);
    expect(config.state.dir).toBe("/srv/pb/state");
    expect(secrets).toEqual(["0.0.0.0", "9001", "true", "pb"]);
  });

  it("names an unset variable and where it is used, without a second complaint about the field", () => {
    expect(problemsOf("server:\n  port: ${PORT}\n")).toEqual(["server.port: environment variable PORT is not set (line 2)"]);
  });

  it("reads $${NAME} as a literal ${NAME}, which needs no variable", () => {
    const { config, secrets } = parseConfig('state:\n  dir: "/srv/$${HOME}/${SITE}"\n', { SITE: "eu" }, "esc.yaml");
    expect(config.state.dir).toBe("/srv/${HOME}/eu");
    expect(secrets).toEqual(["eu"]);
  });

  it("hands secrets written into the file to the logger too", () => {
    const { secrets } = parseConfig(`${TARGETS}sources:\n  paymenthub: { api_key: literal-key, webhook_secrets: [old-secret, new-secret] }\n`, {}, "s.yaml");
    expect(new Set(secrets)).toEqual(new Set(["literal-key", "old-secret", "new-secret", "bot-token", "rcon-pw", "shop-secret"]));
  });
});

describe("parseConfig: secrets never appear in errors", () => {
  it.each<[string, string, Env, string, string]>([
    ["an api_key written as a number", "sources:\n  paymenthub:\n    api_key: 8675309123\n    webhook_secrets: [w]\n", {}, "8675309123",
      "sources.paymenthub.api_key: expected a non-empty string (quote it, or use ${NAME} from the environment), got a number (value hidden) (line 3)"],
    ["webhook_secrets of the wrong type after interpolation", "sources:\n  paymenthub:\n    api_key: k\n    webhook_secrets: { current: \"${WH}\" }\n", { WH: "whsec_top_secret" }, "whsec_top_secret",
      "sources.paymenthub.webhook_secrets: expected a webhook secret, or a list of at least one (for rotation), got a mapping (value hidden) (line 4)"],
    ["an empty webhook secret from the environment", "sources:\n  paymenthub:\n    api_key: k\n    webhook_secrets: [ok, \"${WH}\"]\n", { WH: "" }, "\"\"",
      "sources.paymenthub.webhook_secrets: expected a webhook secret, or a list of at least one (for rotation), got a list (value hidden) (line 4)"],
    ["a Discord token written as a list", "targets:\n  discord:\n    token: [tok-abcdef]\n", {}, "tok-abcdef",
      "targets.discord.token: expected a non-empty string (quote it, or use ${NAME} from the environment), got a list (value hidden) (line 3)"],
    ["an interpolated value in a field that is not secret", "server:\n  port: ${PORT}\n", { PORT: "hunter2-port" }, "hunter2-port",
      "server.port: expected a port number from 0 to 65535, got a string (value hidden) (line 2)"],
    ["an interpolated guild id that is not listed", `${TARGETS}plans:\n  p:\n    perks:\n      - discord: { guild: "\${GUILD}", role: "12345" }\n`, { GUILD: "987654321" }, "987654321",
      "plans.p.perks[0].discord.guild: this Discord guild is not defined in targets.discord.guilds (line 15)"],
    ["an interpolated template with an unknown placeholder", `${TARGETS}plans:\n  p:\n    perks:\n      - minecraft: { server: survival, command: c, grant: "\${CMD}" }\n`, { CMD: "secret-{cmd}" }, "secret-",
      "plans.p.perks[0].minecraft.grant: unknown placeholder in command template; use {uuid} {name} {group} {member} {plan} (line 15)"],
    ["a secret pasted into another field", `${TARGETS}plans:\n  p:\n    perks:\n      - http: { endpoint: shop-secret }\n`, {}, "shop-secret\"",
      'plans.p.perks[0].http.endpoint: HTTP endpoint "***" is not defined in targets.http.endpoints (line 15)'],
  ])("%s", (_name, text, env, secret, problem) => {
    const message = messageOf(text, env);
    expect(message).not.toContain(secret);
    expect(problemsOf(text, env)).toEqual([problem]);
  });

  it("strips credentials from URLs it shows", () => {
    expect(problemsOf("server:\n  public_url: ftp://admin:pa55word@example.org/\n")).toEqual([
      'server.public_url: expected an http:// or https:// URL, got "ftp://***@example.org/" (line 2)',
    ]);
  });
});

describe("configSchema", () => {
  it("is exported for reuse and parses raw objects the same way", () => {
    const config = configSchema.parse({ plans: { p: { grace: "1d" } } });
    expect(config.plans["p"]?.grace).toBe(86_400_000);
  });
});
