import { afterEach, describe, expect, it } from "vitest";
import { createRconClient, RconError, type RconClient } from "../../src/adapters/minecraft/rcon-client.js";
import { createRconEmulator, type RconEmulator } from "../../src/sandbox/minecraft/create-rcon-emulator.js";
import { createMinecraftWorld } from "../../src/sandbox/minecraft/minecraft-world.js";

const PASSWORD = "s3cret-rcon-pw";
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(
  options: { groups?: string[]; clientOptions?: Partial<Parameters<typeof createRconClient>[0]> } = {},
): Promise<{ emulator: RconEmulator; client: RconClient }> {
  const world = createMinecraftWorld({ groups: options.groups ?? ["vip"] });
  const emulator = await createRconEmulator({ password: PASSWORD, world });
  cleanup.push(() => emulator.close());
  const client = createRconClient({
    host: emulator.host,
    port: emulator.port,
    password: PASSWORD,
    commandTimeoutMs: 2000,
    ...options.clientOptions,
  });
  cleanup.push(() => client.close());
  return { emulator, client };
}

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("rcon client", () => {
  it("logs in, runs a command and returns its reply", async () => {
    const { emulator, client } = await setup();
    const reply = await client.command(`lp user ${uuid(1)} parent add vip`);
    expect(reply).toBe(`[LP] ${uuid(1)} now inherits permissions from vip in context global.`);
    expect(emulator.commands).toEqual([`lp user ${uuid(1)} parent add vip`]);
    expect(emulator.logins).toEqual({ ok: 1, refused: 0 });
  });

  it("reads a reply longer than one 4096-byte packet whole", async () => {
    const groups = Array.from({ length: 600 }, (_, i) => `group_number_${String(i).padStart(4, "0")}`);
    const { emulator, client } = await setup({ groups });
    const reply = await client.command("lp listgroups");
    expect(Buffer.byteLength(reply)).toBeGreaterThan(3 * 4096);
    for (const g of groups) expect(reply).toContain(`-  ${g} - 0`);
    expect(reply).toBe(emulator.world.execute("lp listgroups"));
    // The sentinel came after the last fragment, in a read of its own.
    expect(emulator.protocolViolations).toBe(0);
    // The connection is still usable after a multi-packet reply.
    expect(await client.command("list")).toMatch(/^There are 0 of a max of 20 players online/);
  });

  it("gives parallel commands their own replies", async () => {
    const { emulator, client } = await setup({ clientOptions: { connections: 3 } });
    emulator.faults.replyDelayMs = 5;
    const ids = Array.from({ length: 24 }, (_, i) => uuid(i + 1));
    const replies = await Promise.all(ids.map((id) => client.command(`lp user ${id} parent add vip`)));
    replies.forEach((reply, i) => expect(reply).toBe(`[LP] ${ids[i]} now inherits permissions from vip in context global.`));
    expect(emulator.commands).toHaveLength(24);
    expect(emulator.protocolViolations).toBe(0);
    expect(emulator.logins.ok).toBeLessThanOrEqual(3);
  });

  it("fails clearly on a wrong password, naming host:port and never the password", async () => {
    const { emulator, client } = await setup({ clientOptions: { password: "wrong-password-123" } });
    const error = await client.command("list").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RconError);
    const rcon = error as RconError;
    expect(rcon.code).toBe("ERR_RCON_AUTH");
    expect(rcon.message).toContain(`${emulator.host}:${emulator.port}`);
    expect(rcon.message).toMatch(/refused the password/);
    expect(JSON.stringify({ message: rcon.message, stack: rcon.stack })).not.toContain("wrong-password-123");
    expect(emulator.commands).toEqual([]);
    // Within the backoff window the same reason is given again, without another login attempt.
    const again = (await client.command("list").catch((e: unknown) => e)) as RconError;
    expect(again.code).toBe("ERR_RCON_AUTH");
    expect(again.retryAfterMs).toBeGreaterThan(0);
    expect(emulator.logins.refused).toBe(1);
  });

  it("reconnects after the server drops the connection", async () => {
    const { emulator, client } = await setup();
    emulator.faults.dropAfterCommands = 1;
    for (let i = 1; i <= 4; i++) {
      // A server may close right after a reply, racing our next write: idempotent commands go again.
      expect(await client.command(`lp user ${uuid(i)} parent add vip`, { idempotent: true })).toContain("now inherits permissions from vip");
    }
    expect(emulator.logins.ok).toBeGreaterThanOrEqual(4);
    expect(emulator.world.luckperms.parentsOf(uuid(4))).toEqual(["default", "vip"]);
  });

  it("sends an idempotent command again when the connection drops before the reply", async () => {
    const { emulator, client } = await setup();
    emulator.faults.dropOnCommand = 1;
    const reply = await client.command(`lp user ${uuid(1)} parent add vip`, { idempotent: true });
    expect(reply).toContain("now inherits permissions from vip");
    expect(emulator.commands).toHaveLength(2);
  });

  it("does not resend a non-idempotent command whose connection dropped", async () => {
    const { emulator, client } = await setup();
    emulator.faults.dropOnCommand = 1;
    const error = (await client.command("give bob diamond 1").catch((e: unknown) => e)) as RconError;
    expect(error.code).toBe("ERR_RCON_CLOSED");
    expect(error.sent).toBe(true);
    expect(emulator.commands).toEqual(["give bob diamond 1"]);
  });

  it("times out a command that gets no answer, then works again", async () => {
    const { emulator, client } = await setup({ clientOptions: { commandTimeoutMs: 100 } });
    emulator.faults.replyDelayMs = 400;
    const error = (await client.command("list").catch((e: unknown) => e)) as RconError;
    expect(error.code).toBe("ERR_RCON_TIMEOUT");
    expect(error.sent).toBe(true);
    emulator.faults.replyDelayMs = 0;
    expect(await client.command("list")).toMatch(/players online/);
  });

  it("fails fast while the server refuses connections and backs off, then recovers", async () => {
    let now = 1_000;
    const { emulator, client } = await setup({ clientOptions: { clock: { now: () => now }, backoff: () => 5_000 } });
    await emulator.setRefusing(true);
    const first = (await client.command("list").catch((e: unknown) => e)) as RconError;
    expect(first.code).toBe("ERR_RCON_UNREACHABLE");
    expect(first.message).toContain("ECONNREFUSED");
    expect(first.retryAfterMs).toBe(5_000);
    // Within the backoff window no connection is even attempted.
    const second = (await client.command("list").catch((e: unknown) => e)) as RconError;
    expect(second.code).toBe("ERR_RCON_UNREACHABLE");
    expect(second.retryAfterMs).toBe(5_000);
    await emulator.setRefusing(false);
    now += 5_000;
    expect(await client.command("list")).toMatch(/players online/);
  });

  it("refuses a command longer than the server reads in one packet, sending nothing", async () => {
    const { emulator, client } = await setup();
    const error = (await client.command(`say ${"a".repeat(1500)}`).catch((e: unknown) => e)) as RconError;
    expect(error.code).toBe("ERR_RCON_COMMAND_TOO_LONG");
    expect(emulator.commands).toEqual([]);
  });
});
