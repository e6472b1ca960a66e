import { DiscordAPIError, HTTPError, RateLimitError } from "discord.js";
import { describe, expect, it } from "vitest";
import { classifyDiscordError, missingPermissionFix, type DiscordErrorContext } from "../../src/adapters/discord/classify-discord-error.js";

const URL = "http://127.0.0.1/api/v10/guilds/1/members/2/roles/3";

function apiError(status: number, code: number, message: string): DiscordAPIError {
  return new DiscordAPIError({ code, message }, code, status, "PUT", URL, { body: undefined, files: undefined });
}

const context: DiscordErrorContext = { guildId: "1", roleId: "3", roleName: "Premium" };

describe("classifyDiscordError", () => {
  const cases: [string, unknown, DiscordErrorContext, Record<string, unknown>][] = [
    [
      "50013 with the bot's role too low",
      apiError(403, 50013, "Missing Permissions"),
      { ...context, permissionCause: "role-too-high" },
      { kind: "failed", retryable: false, fix: "move the perkbridge bot's role above Premium in Server Settings → Roles" },
    ],
    [
      "50013 without Manage Roles",
      apiError(403, 50013, "Missing Permissions"),
      { ...context, permissionCause: "no-manage-roles" },
      { kind: "failed", retryable: false, fix: "give the perkbridge bot's role the Manage Roles permission in Server Settings → Roles" },
    ],
    ["10007 unknown member", apiError(404, 10007, "Unknown Member"), context, { kind: "target-missing", reason: "not in the guild: applied when they join" }],
    [
      "10011 unknown role",
      apiError(404, 10011, "Unknown Role"),
      context,
      { kind: "failed", retryable: false, reason: "role 3 does not exist in guild 1", fix: "role 3 does not exist in guild 1: fix the plan in the config" },
    ],
    ["10004 unknown guild", apiError(404, 10004, "Unknown Guild"), context, { kind: "failed", retryable: false, fix: expect.stringContaining("invite the perkbridge bot") }],
    ["50001 missing access", apiError(403, 50001, "Missing Access"), context, { kind: "failed", retryable: false, fix: expect.stringContaining("invite the perkbridge bot") }],
    ["401 token refused", apiError(401, 0, "401: Unauthorized"), context, { kind: "failed", retryable: false, fix: expect.stringContaining("reset the bot token") }],
    ["5xx that reached us", apiError(502, 0, "Bad Gateway"), context, { kind: "failed", retryable: true }],
    ["other 4xx", apiError(400, 50035, "Invalid Form Body"), context, { kind: "failed", retryable: false, reason: expect.stringContaining("50035") }],
    ["HTTPError after retries", new HTTPError(503, "Service Unavailable", "PUT", URL, { body: undefined, files: undefined }), context, { kind: "failed", retryable: true }],
    [
      "RateLimitError",
      new RateLimitError({ timeToReset: 1000, limit: 5, method: "PUT", hash: "h", url: URL, route: "/guilds/:id/members/:id/roles/:id", majorParameter: "1", global: false, retryAfter: 1200, sublimitTimeout: 0, scope: "user" }),
      context,
      { kind: "failed", retryable: true, retryAfterMs: 1200 },
    ],
    ["network error", Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } }), context, { kind: "failed", retryable: true, reason: "discord request failed: TypeError: fetch failed" }],
    ["a thrown string", "boom", context, { kind: "failed", retryable: true }],
  ];

  it.each(cases)("%s", (_name, error, ctx, expected) => {
    expect(classifyDiscordError(error, ctx)).toMatchObject(expected);
  });

  it("names the role by id when its name is unknown, and never echoes the request URL", () => {
    const result = classifyDiscordError(apiError(403, 50013, "Missing Permissions"), { guildId: "1", roleId: "3" });
    expect(result).toMatchObject({ reason: "discord refused to change role 3 in guild 1: Missing Permissions (50013)" });
    expect(JSON.stringify(result)).not.toContain(URL);
  });
});

describe("missingPermissionFix", () => {
  it.each([
    ["role-too-high", "move the perkbridge bot's role above Premium in Server Settings → Roles"],
    ["role-not-assignable", "Premium is @everyone or managed by an integration (bot, booster or linked role) and cannot be assigned: pick another role in the plan"],
    ["unknown", "give the bot Manage Roles and move the perkbridge bot's role above Premium in Server Settings → Roles"],
  ] as const)("%s", (permissionCause, fix) => {
    expect(missingPermissionFix({ ...context, permissionCause })).toBe(fix);
  });
});
