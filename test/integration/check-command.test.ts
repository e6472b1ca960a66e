import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommanderError } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CliIo } from "../../src/cli/cli-io.js";
import { createProgram } from "../../src/cli/create-program.js";
import { acquireStateLock } from "../../src/daemon/store/state-lock.js";
import { createHttpReceiver, type HttpReceiver } from "../../src/sandbox/http-receiver/create-http-receiver.js";
import { createRconEmulator, type RconEmulator } from "../../src/sandbox/minecraft/create-rcon-emulator.js";
import { createMinecraftWorld } from "../../src/sandbox/minecraft/minecraft-world.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";

const API_KEY = "ph_check_key_7a1e";
const WRONG_KEY = "ph_wrong_key_0b3c";
const RCON_PASSWORD = "rcon-pass-c4d5e6";
const WRONG_PASSWORD = "rcon-wrong-f7a8b9";
const RECEIVER_SECRET = "recv_check_2d8f";

let dir: string;
let stateDir: string;
let configPath: string;
let emulator: PaymentHubEmulator;
let rcon: RconEmulator;
let receiver: HttpReceiver;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pb-check-"));
  stateDir = join(dir, "state");
  configPath = join(dir, "perkbridge.yaml");
  emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: "whsec_check" });
  await emulator.start();
  emulator.addMember({ id: "mem_1", email: "m1@example.com", name: "m1", plan_id: "plan_vip", status: "active", metadata: {} }, { emit: false });
  rcon = await createRconEmulator({ password: RCON_PASSWORD, world: createMinecraftWorld({ groups: ["vip"] }) });
  receiver = await createHttpReceiver({ secret: RECEIVER_SECRET });
  await writeFile(
    configPath,
    `
state: { dir: ${JSON.stringify(stateDir)} }
sources:
  paymenthub:
    base_url: ${emulator.url}
    api_key: \${PAYMENTHUB_API_KEY}
    webhook_secrets: ["\${PH_WEBHOOK}"]
    request_timeout: 2s
targets:
  minecraft:
    servers:
      survival:
        rcon: { host: 127.0.0.1, port: ${rcon.port}, password: "\${RCON_PASSWORD}" }
        list_interval: 0s
  http:
    endpoints:
      shop: { url: ${JSON.stringify(receiver.url)}, secret: "\${RECV_SECRET}" }
plans:
  plan_vip:
    perks:
      - minecraft: { server: survival, group: vip }
      - http: { endpoint: shop }
`,
  );
});

afterEach(async () => {
  await emulator.close();
  await rcon.close();
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
});

const GOOD_ENV = { PAYMENTHUB_API_KEY: API_KEY, PH_WEBHOOK: "whsec_check", RCON_PASSWORD, RECV_SECRET: RECEIVER_SECRET };

async function check(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env,
    onStopSignal: () => () => undefined,
    // No redaction by the io: a secret in any line would reach the assertions.
    redactSecrets: () => undefined,
  };
  let code = 0;
  try {
    await createProgram(io, (c) => (code = c)).parseAsync(["node", "perkbridge", "check", "--config", configPath]);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    code = error.exitCode === 0 ? 0 : 2;
  }
  return { code, stdout, stderr };
}

/** The table's line for a check whose name contains `name`. */
function lineOf(stdout: string, name: string): string {
  const line = stdout.split("\n").find((l) => l.includes(name));
  if (line === undefined) throw new Error(`no line for ${name} in:\n${stdout}`);
  return line;
}

describe("perkbridge check", () => {
  it("passes with every source and target reachable and exits 0, without the state directory's lock", async () => {
    // A running daemon holds the lock; check must not need it.
    await mkdir(stateDir, { recursive: true });
    const lock = await acquireStateLock(stateDir);
    try {
      const r = await check(GOOD_ENV);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(lineOf(r.stdout, "configuration")).toMatch(/^✓ {2}configuration/);
      expect(lineOf(r.stdout, "paymenthub: API key")).toMatch(/^✓ .*1 member/);
      expect(lineOf(r.stdout, "RCON login")).toMatch(/^✓ {2}minecraft survival: RCON login at 127\.0\.0\.1/);
      expect(lineOf(r.stdout, "LuckPerms present")).toMatch(/^✓/);
      expect(lineOf(r.stdout, "group vip exists")).toMatch(/^✓/);
      expect(lineOf(r.stdout, "http endpoint shop")).toMatch(/^✓/);
      expect(r.stdout).not.toContain("✗");
      expect(r.stdout).toMatch(/All 6 checks passed\.\n$/);
      expect(emulator.calls.filter((c) => c.path.endsWith("/members"))).toEqual([expect.objectContaining({ method: "GET", query: expect.objectContaining({ limit: "1" }), status: 200 })]);
      // A check sends nothing to a receiver.
      expect(receiver.received).toHaveLength(0);
    } finally {
      await lock.release();
    }
  });

  it("a refused PaymentHub key is a ✗ line naming the variable to fix, never the key, and exit 1", async () => {
    const r = await check({ ...GOOD_ENV, PAYMENTHUB_API_KEY: WRONG_KEY });
    expect(r.code).toBe(1);
    const line = lineOf(r.stdout, "paymenthub: API key");
    expect(line).toMatch(/^✗/);
    expect(line).toContain("401: the API key was refused");
    expect(line).toContain("set PAYMENTHUB_API_KEY to a key from the PaymentHub dashboard");
    expect(lineOf(r.stdout, "RCON login")).toMatch(/^✓/);
    expect(r.stdout).toContain("1 of 6 checks failed");
    expect(r.stdout + r.stderr).not.toContain(WRONG_KEY);
  });

  it("a wrong RCON password is a ✗ line with the fix, without the password, and exit 1", async () => {
    const r = await check({ ...GOOD_ENV, RCON_PASSWORD: WRONG_PASSWORD });
    expect(r.code).toBe(1);
    const line = lineOf(r.stdout, "RCON login");
    expect(line).toMatch(/^✗ {2}minecraft survival: RCON login/);
    expect(line).toContain("rcon.password");
    expect(rcon.logins.refused).toBeGreaterThan(0);
    expect(r.stdout + r.stderr).not.toContain(WRONG_PASSWORD);
    expect(r.stdout + r.stderr).not.toContain(RCON_PASSWORD);
    expect(lineOf(r.stdout, "paymenthub: API key")).toMatch(/^✓/);
  });

  it("an unreachable RCON port fails the check instead of hanging", async () => {
    await rcon.setRefusing(true);
    const r = await check(GOOD_ENV);
    expect(r.code).toBe(1);
    expect(lineOf(r.stdout, "RCON login")).toMatch(/^✗ .*enable-rcon=true/);
  });

  it("a config error prints the problem list and exits 2 before probing anything", async () => {
    const { PAYMENTHUB_API_KEY: _unset, ...env } = GOOD_ENV;
    const r = await check(env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("sources.paymenthub.api_key");
    expect(r.stderr).toContain("PAYMENTHUB_API_KEY is not set");
    expect(emulator.calls).toHaveLength(0);
    expect(rcon.logins.ok + rcon.logins.refused).toBe(0);
  });
});
