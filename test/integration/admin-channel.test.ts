import { lstat, mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommanderError } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PerkbridgeError } from "../../src/core/errors.js";
import type { AdminApi, AdminSession, ConfirmOptions, RetryFilter, StatusReport, SyncOptions, SyncReport } from "../../src/daemon/admin/admin-api.js";
import { AdminCallError, connectAdmin } from "../../src/daemon/admin/connect-admin.js";
import { createAdminServer, type AdminServer } from "../../src/daemon/admin/create-admin-server.js";
import { createLogger } from "../../src/daemon/create-logger.js";
import { acquireStateLock, type StateLock } from "../../src/daemon/store/state-lock.js";
import type { CliIo } from "../../src/cli/cli-io.js";
import { createProgram } from "../../src/cli/create-program.js";
import type { Terminal } from "../../src/cli/progress.js";
import type { AdminCommandDeps } from "../../src/cli/status-command.js";

const NOW = Date.UTC(2025, 0, 31, 12, 0, 0);
const MINUTE = 60_000;

const STATUS: StatusReport = {
  queue: [
    { lane: "discord", queued: 3, waiting: 1, parked: 1, inFlight: 0 },
    { lane: "minecraft:survival", queued: 1200, waiting: 0, parked: 0, inFlight: 2 },
  ],
  parked: [
    {
      id: "act-1",
      lane: "discord",
      subject: "discord:111",
      perk: "discord role 222 in guild 333",
      reason: "Missing Permissions",
      fix: "move the bot's role above role 222",
      since: NOW - 5 * MINUTE,
    },
  ],
  held: [
    { id: "held-1", subject: "discord:444", perk: "discord role 222 in guild 333", members: ["paymenthub:m1"], heldAt: NOW - 12 * MINUTE, reason: "plan_gold canceled" },
    { id: "held-2", subject: "minecraft:uuid-5", perk: "minecraft group vip on survival", members: ["paymenthub:m2", "paymenthub:m3"], heldAt: NOW - 3 * MINUTE, reason: "plan_gold canceled" },
  ],
  budget: [
    {
      source: "paymenthub",
      windows: [
        { limit: 1000, remaining: 950, windowMs: 3_600_000 },
        { limit: 100, remaining: 99, windowMs: 60_000 },
      ],
      blockedUntil: NOW + 2 * MINUTE,
    },
  ],
  lastSweep: { source: "paymenthub", startedAt: NOW - 20 * MINUTE, finishedAt: NOW - 19 * MINUTE, members: 1204, requests: 13, complete: true },
  targets: [
    { name: "discord", healthy: true },
    { name: "minecraft:survival", healthy: false, detail: "RCON connection refused" },
  ],
};

const PLAN: SyncReport = {
  planned: [
    { type: "grant", subject: "discord:111", perk: "discord role 222 in guild 333", members: ["paymenthub:m1"], reason: "plan_gold active" },
    { type: "revoke", subject: "minecraft:uuid-5", perk: "minecraft group vip on survival", members: ["paymenthub:m2"], reason: "plan_gold canceled" },
  ],
  held: 1,
  members: 1204,
  dryRun: true,
};

/** A canned AdminApi that records what it was asked: the unit under test is the channel, not the engine. */
function createFakeAdmin(): AdminApi & {
  calls: { method: string; args: unknown }[];
  progressSteps: number;
  progressStage: string | undefined;
  failWith: Error | undefined;
} {
  const fake = {
    calls: [] as { method: string; args: unknown }[],
    progressSteps: 4,
    progressStage: undefined,
    failWith: undefined as Error | undefined,
    async status() {
      fake.calls.push({ method: "status", args: undefined });
      if (fake.failWith) throw fake.failWith;
      return STATUS;
    },
    async sync(options: SyncOptions, progress?: (done: number, total: number, stage?: string) => void) {
      fake.calls.push({ method: "sync", args: options });
      if (fake.failWith) throw fake.failWith;
      for (let i = 1; i <= fake.progressSteps; i++) progress?.(i, fake.progressSteps, fake.progressStage);
      return { ...PLAN, dryRun: options.dryRun };
    },
    async retry(filter: RetryFilter) {
      fake.calls.push({ method: "retry", args: filter });
      return { requeued: filter.target === "discord" ? 1 : 0 };
    },
    async confirm(options: ConfirmOptions) {
      fake.calls.push({ method: "confirm", args: options });
      return { released: (options.ids ?? []).filter((id) => STATUS.held.some((h) => h.id === id)).length };
    },
  };
  return fake;
}

let dir: string;
let stateDir: string;
let socketPath: string;
let configPath: string;
let api: ReturnType<typeof createFakeAdmin>;
let logLines: string[];
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pb-admin-"));
  stateDir = join(dir, "state");
  socketPath = join(stateDir, "admin.sock");
  configPath = join(dir, "perkbridge.yaml");
  await writeFile(configPath, ["state:", `  dir: ${stateDir}`, "log:", "  format: json"].join("\n"));
  api = createFakeAdmin();
  logLines = [];
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function startServer(path = socketPath): Promise<AdminServer> {
  const server = createAdminServer({
    path,
    api,
    logger: createLogger({ level: "debug", format: "json", destination: { write: (line: string) => void logLines.push(line) } }),
  });
  await server.start();
  cleanups.push(() => server.stop());
  return server;
}

async function connected(): Promise<AdminSession> {
  const result = await connectAdmin(socketPath);
  if (result.kind !== "connected") throw new Error(`expected a connection, got ${result.kind}: ${result.reason}`);
  cleanups.push(() => result.admin.close());
  return result.admin;
}

/** A raw connection speaking the wire protocol by hand, for what the typed client never sends. */
async function rawConnection(): Promise<{ send: (line: string) => void; next: () => Promise<Record<string, unknown>>; socket: Socket }> {
  const socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  cleanups.push(async () => void socket.destroy());
  socket.setEncoding("utf8");
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let buffered = "";
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    let i: number;
    while ((i = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  return {
    socket,
    send: (line) => void socket.write(line + "\n"),
    next: () => {
      const line = lines.shift();
      const text = line !== undefined ? Promise.resolve(line) : new Promise<string>((resolve) => waiters.push(resolve));
      return text.then((t) => JSON.parse(t) as Record<string, unknown>);
    },
  };
}

describe("admin server", () => {
  it("listens on a socket only its owner can open, and leaves no temp files", async () => {
    await startServer();
    const stat = await lstat(socketPath);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(await readdir(stateDir)).toEqual(["admin.sock"]);
  });

  it("round-trips status, sync, retry and confirm", async () => {
    await startServer();
    const admin = await connected();
    expect(await admin.status()).toEqual(STATUS);
    expect(await admin.sync({ dryRun: true, member: "paymenthub:m1" })).toEqual(PLAN);
    expect(await admin.retry({ target: "discord" })).toEqual({ requeued: 1 });
    expect(await admin.confirm({ ids: ["held-1", "gone"] })).toEqual({ released: 1 });
    expect(api.calls).toEqual([
      { method: "status", args: undefined },
      { method: "sync", args: { dryRun: true, member: "paymenthub:m1" } },
      { method: "retry", args: { target: "discord" } },
      { method: "confirm", args: { ids: ["held-1", "gone"] } },
    ]);
  });

  it("answers concurrent requests on one connection by id", async () => {
    await startServer();
    const admin = await connected();
    const [status, retry, sync] = await Promise.all([admin.status(), admin.retry({}), admin.sync({ dryRun: false })]);
    expect(status).toEqual(STATUS);
    expect(retry).toEqual({ requeued: 0 });
    expect(sync.dryRun).toBe(false);
  });

  it("sends sync progress before the result, at most about a thousand updates, always the last", async () => {
    await startServer();
    const admin = await connected();
    const seen: [number, number][] = [];
    await admin.sync({ dryRun: true }, (done, total) => seen.push([done, total]));
    expect(seen).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);

    // A stage passes through as it is, and a new stage is sent even at the same count.
    api.progressStage = "listing PaymentHub members";
    const staged: [number, number, string | undefined][] = [];
    await admin.sync({ dryRun: true }, (done, total, stage) => staged.push([done, total, stage]));
    expect(staged).toEqual([1, 2, 3, 4].map((i) => [i, 4, "listing PaymentHub members"]));
    api.progressStage = undefined;

    api.progressSteps = 50_000;
    const many: [number, number][] = [];
    await admin.sync({ dryRun: true }, (done, total) => many.push([done, total]));
    expect(many.length).toBeGreaterThan(10);
    expect(many.length).toBeLessThanOrEqual(1001);
    expect(many.at(-1)).toEqual([50_000, 50_000]);
  });

  it("answers a malformed line with an error and keeps serving the connection", async () => {
    await startServer();
    const raw = await rawConnection();
    raw.send("{not json");
    expect(await raw.next()).toEqual({ id: null, error: { code: "ERR_ADMIN_BAD_REQUEST", message: expect.stringContaining("not JSON") } });
    raw.send(JSON.stringify({ id: 7, params: {} }));
    expect(await raw.next()).toMatchObject({ id: 7, error: { code: "ERR_ADMIN_BAD_REQUEST" } });
    raw.send(JSON.stringify({ id: "s", method: "sync", params: { dry_run: true } }));
    expect(await raw.next()).toMatchObject({ id: "s", error: { code: "ERR_ADMIN_BAD_REQUEST", message: expect.stringContaining("sync") } });
    raw.send(JSON.stringify({ id: "c", method: "confirm", params: {} }));
    expect(await raw.next()).toMatchObject({ id: "c", error: { code: "ERR_ADMIN_BAD_REQUEST", message: expect.stringContaining("all: true") } });
    raw.send(JSON.stringify({ id: 8, method: "status" }));
    expect(await raw.next()).toEqual({ id: 8, result: STATUS });
  });

  it("refuses an unknown method by name and lists the known ones", async () => {
    await startServer();
    const raw = await rawConnection();
    raw.send(JSON.stringify({ id: 1, method: "shutdown", params: {} }));
    const reply = await raw.next();
    expect(reply).toMatchObject({ id: 1, error: { code: "ERR_ADMIN_UNKNOWN_METHOD" } });
    expect(JSON.stringify(reply)).toContain("status, sync, retry, confirm");
    expect(api.calls).toEqual([]);
  });

  it("passes an engine error's code and message, but hides an unexpected error's message", async () => {
    await startServer();
    const admin = await connected();
    api.failWith = new PerkbridgeError("ERR_SYNC_RUNNING", "a sync is already running; wait for it");
    const expected = await admin.status().catch((error: unknown) => error);
    expect(expected).toBeInstanceOf(AdminCallError);
    expect(expected).toMatchObject({ code: "ERR_SYNC_RUNNING", message: "a sync is already running; wait for it" });

    api.failWith = new Error("connect ECONNREFUSED https://user:hunter2@billing.example");
    const unexpected = await admin.status().catch((error: unknown) => error);
    expect(unexpected).toMatchObject({ code: "ERR_ADMIN_INTERNAL" });
    expect((unexpected as Error).message).not.toContain("hunter2");
    expect(logLines.some((line) => line.includes("admin request failed"))).toBe(true);
    // The connection survives both.
    api.failWith = undefined;
    expect(await admin.status()).toEqual(STATUS);
  });

  it("removes its socket file on stop, and a stopped daemon reads as not running", async () => {
    const server = await startServer();
    await server.stop();
    await expect(lstat(socketPath)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await connectAdmin(socketPath)).toMatchObject({ kind: "not-running" });
  });

  it("replaces a stale socket file that nobody answers on", async () => {
    await leaveStaleSocket(socketPath);
    expect(await connectAdmin(socketPath)).toMatchObject({ kind: "not-running", reason: expect.stringContaining("nothing answers") });
    await startServer();
    const admin = await connected();
    expect(await admin.retry({})).toEqual({ requeued: 0 });
  });

  it("refuses to start where another process answers, and leaves that socket alone", async () => {
    await startServer();
    const second = createAdminServer({ path: socketPath, api, logger: createLogger({ level: "silent", format: "json" }) });
    await expect(second.start()).rejects.toMatchObject({ code: "ERR_ADMIN_IN_USE" });
    const admin = await connected();
    expect(await admin.status()).toEqual(STATUS);
  });

  it("refuses to remove a file at the socket path that is not a socket", async () => {
    await mkdir(stateDir, { recursive: true });
    await writeFile(socketPath, "precious");
    const server = createAdminServer({ path: socketPath, api, logger: createLogger({ level: "silent", format: "json" }) });
    await expect(server.start()).rejects.toMatchObject({ code: "ERR_ADMIN_SOCKET" });
    expect((await lstat(socketPath)).isFile()).toBe(true);
  });

  it("fails the calls in flight when the daemon goes away", async () => {
    const server = await startServer();
    let release: (() => void) | undefined;
    api.sync = () => new Promise<SyncReport>((resolve) => (release = () => resolve(PLAN)));
    const admin = await connected();
    const outcome = admin.sync({ dryRun: true }).catch((error: unknown) => error);
    await waitFor(() => release !== undefined);
    await server.stop();
    expect(await outcome).toMatchObject({ code: "ERR_ADMIN_DISCONNECTED" });
    await expect(admin.status()).rejects.toMatchObject({ code: "ERR_ADMIN_DISCONNECTED" });
    release?.();
  });
});

describe("connectAdmin", () => {
  it("reports a missing socket as not running", async () => {
    expect(await connectAdmin(join(dir, "nowhere.sock"))).toEqual({ kind: "not-running", reason: expect.stringContaining("no admin socket") });
  });
});

/** Leaves a socket file with no listener behind, as a daemon killed with -9 does. */
async function leaveStaleSocket(path: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const server: Server = createServer();
  const bound = join(dir, "bound.sock");
  await new Promise<void>((resolve) => server.listen(bound, resolve));
  // Closing would unlink the file; moved away first, it stays behind with nobody listening.
  await rename(bound, path);
  await new Promise((resolve) => server.close(resolve));
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}

// ── CLI ───────────────────────────────────────────────────────────────────

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function fakeTerminal(options: { tty: boolean; answer?: string }): Terminal & { asked: number } {
  const terminal = {
    stderrIsTTY: options.tty,
    stdinIsTTY: options.tty,
    asked: 0,
    async readLine() {
      terminal.asked += 1;
      return options.answer;
    },
  };
  return terminal;
}

async function runCli(args: readonly string[], deps: Partial<AdminCommandDeps> = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env: {},
    onStopSignal: () => () => undefined,
    redactSecrets: () => undefined,
  };
  let code = 0;
  const program = createProgram(io, (c) => (code = c), { terminal: fakeTerminal({ tty: false }), clock: { now: () => NOW }, ...deps });
  try {
    await program.parseAsync(["node", "perkbridge", ...args]);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    code = error.exitCode === 0 ? 0 : 2;
  }
  return { code, stdout, stderr };
}

describe("perkbridge status | sync | retry | confirm", () => {
  it("status prints every section as aligned tables and exits 0 even with a target down", async () => {
    await startServer();
    const r = await runCli(["status", "--config", configPath]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "Queue",
        "  LANE                QUEUED  WAITING  PARKED  IN FLIGHT",
        "  discord                  3        1       1          0",
        "  minecraft:survival   1,200        0       0          2",
        "",
        "Parked (1): fix the cause, then run `perkbridge retry`",
        "  ID     LANE     SUBJECT      PERK                           SINCE   REASON               FIX",
        "  act-1  discord  discord:111  discord role 222 in guild 333  5m ago  Missing Permissions  move the bot's role above role 222",
        "",
        "Held revocations (2): review, then run `perkbridge confirm`",
        "  ID      SUBJECT           PERK                             MEMBERS                       HELD     REASON",
        "  held-1  discord:444       discord role 222 in guild 333    paymenthub:m1                 12m ago  plan_gold canceled",
        "  held-2  minecraft:uuid-5  minecraft group vip on survival  paymenthub:m2, paymenthub:m3  3m ago   plan_gold canceled",
        "",
        "Rate budget",
        "  SOURCE      WINDOW  REMAINING  LIMIT",
        "  paymenthub  1h            950  1,000",
        "  paymenthub  1m             99    100",
        "  ✗ paymenthub is paused until 2025-01-31 12:02:00Z (in 2m): the platform asked us to wait",
        "",
        "Last sweep",
        "  paymenthub: finished 2025-01-31 11:41:00Z (19m ago), 1,204 members, 13 requests, ✓ complete",
        "",
        "Targets",
        "     TARGET              DETAIL",
        "  ✓  discord             ok",
        "  ✗  minecraft:survival  RCON connection refused",
        "",
      ].join("\n"),
    );
  });

  it("status shows empty sections plainly", async () => {
    api.status = async () => ({ queue: [], parked: [], held: [], budget: [], targets: [] });
    await startServer();
    const r = await runCli(["status", "--config", configPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Parked\n  nothing parked\n");
    expect(r.stdout).toContain("Held revocations\n  none held\n");
    expect(r.stdout).toContain("Last sweep\n  no sweep yet\n");
  });

  it("sync --dry-run prints the plan and a summary, with progress only on a terminal", async () => {
    await startServer();
    const quiet = await runCli(["sync", "--dry-run", "--member", "paymenthub:m1", "--config", configPath]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");
    expect(quiet.stdout).toBe(
      [
        "ACTION  SUBJECT           PERK                             MEMBERS        REASON",
        "grant   discord:111       discord role 222 in guild 333    paymenthub:m1  plan_gold active",
        "revoke  minecraft:uuid-5  minecraft group vip on survival  paymenthub:m2  plan_gold canceled",
        "",
        "Dry run over 1,204 members: would queue 1 grant and 1 revoke; 1 revocation would be held for `perkbridge confirm`. Nothing was changed.",
        "",
      ].join("\n"),
    );
    expect(api.calls).toEqual([{ method: "sync", args: { dryRun: true, member: "paymenthub:m1" } }]);

    const onTty = await runCli(["sync", "--dry-run", "--config", configPath], { terminal: fakeTerminal({ tty: true }) });
    expect(onTty.code).toBe(0);
    expect(onTty.stderr).toContain("planning: 4/4 (100%)");
    // One updating line: redrawn with carriage returns, cleared at the end, never a newline.
    expect(onTty.stderr).not.toContain("\n");
    expect(onTty.stderr.endsWith("\r\x1b[2K")).toBe(true);
  });

  it("sync without --dry-run says what was queued", async () => {
    await startServer();
    const r = await runCli(["sync", "--config", configPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Synced 1,204 members: queued 1 grant and 1 revoke; 1 revocation held, see `perkbridge confirm`.\n");
    expect(api.calls).toEqual([{ method: "sync", args: { dryRun: false } }]);
  });

  it("retry passes its filter and says how many were re-queued", async () => {
    await startServer();
    const r = await runCli(["retry", "--target", "discord", "--config", configPath]);
    expect(r).toEqual({ code: 0, stdout: "Re-queued 1 parked action.\n", stderr: "" });
    const none = await runCli(["retry", "--member", "paymenthub:m9", "--config", configPath]);
    expect(none.stdout).toBe("No parked actions matched: nothing re-queued.\n");
    expect(api.calls).toEqual([
      { method: "retry", args: { target: "discord" } },
      { method: "retry", args: { member: "paymenthub:m9" } },
    ]);
  });

  it("confirm refuses without a terminal and without --yes, after showing what is held", async () => {
    await startServer();
    const r = await runCli(["confirm", "--config", configPath]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("held-1");
    expect(r.stdout).toContain("held-2");
    expect(r.stderr).toContain("pass --yes");
    expect(api.calls.map((c) => c.method)).toEqual(["status"]);
  });

  it("confirm --yes releases exactly the revocations it showed", async () => {
    await startServer();
    const r = await runCli(["confirm", "held-2", "--yes", "--config", configPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("held-2");
    expect(r.stdout).not.toContain("held-1");
    expect(r.stdout).toContain("Released 1 revocation.");
    expect(api.calls).toEqual([
      { method: "status", args: undefined },
      { method: "confirm", args: { ids: ["held-2"] } },
    ]);
  });

  it("confirm on a terminal asks, and releases only on yes", async () => {
    await startServer();
    const declined = fakeTerminal({ tty: true, answer: "n" });
    const no = await runCli(["confirm", "--config", configPath], { terminal: declined });
    expect(declined.asked).toBe(1);
    expect(no.stderr).toContain("Release these 2 revocations?");
    expect(no.stdout).toContain("Nothing released.");
    expect(no.code).toBe(1);
    expect(api.calls.map((c) => c.method)).toEqual(["status"]);

    const yes = await runCli(["confirm", "--config", configPath], { terminal: fakeTerminal({ tty: true, answer: "yes" }) });
    expect(yes.code).toBe(0);
    expect(yes.stdout).toContain("Released 2 revocations.");
    expect(api.calls.at(-1)).toEqual({ method: "confirm", args: { ids: ["held-1", "held-2"] } });
  });

  it("confirm names ids that are not held and releases nothing", async () => {
    await startServer();
    const r = await runCli(["confirm", "held-9", "--yes", "--config", configPath]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("held-9");
    expect(api.calls.map((c) => c.method)).toEqual(["status"]);
  });

  it("with the daemon stopped, opens the state directory through the offline opener and closes it", async () => {
    let opened: string | undefined;
    let closed = false;
    const r = await runCli(["retry", "--target", "discord", "--config", configPath], {
      openOfflineAdmin: async (path) => {
        opened = path;
        return { ...api, close: async () => void (closed = true) };
      },
    });
    expect(r).toEqual({ code: 0, stdout: "Re-queued 1 parked action.\n", stderr: "" });
    expect(opened).toBe(configPath);
    expect(closed).toBe(true);
  });

  it("says so when a live daemon holds the state directory but does not answer", async () => {
    const lock: StateLock = await acquireStateLock(await mkdir(stateDir, { recursive: true }).then(() => stateDir));
    cleanups.push(() => lock.release());
    const r = await runCli(["status", "--config", configPath], {
      openOfflineAdmin: async () => {
        await acquireStateLock(stateDir);
        throw new Error("unreachable: the lock is held");
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`pid ${process.pid}`);
    expect(r.stderr).toContain("does not answer on its admin socket");
    expect(r.stdout).toBe("");
  });

  it("says the daemon is not running when it cannot open the state directory itself", async () => {
    const r = await runCli(["status", "--config", configPath]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("perkbridge: the daemon is not running");
    expect(r.stderr).toContain("perkbridge start");
  });

  it("exits 2 on a config error", async () => {
    await writeFile(configPath, "state:\n  colour: blue\n");
    const r = await runCli(["status", "--config", configPath]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("state.colour");
  });

  it.each(["status", "sync", "retry", "confirm"])("%s --help describes the command and its --config", async (command) => {
    const r = await runCli([command, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: perkbridge ${command}`);
    expect(r.stdout).toContain("--config <file>");
    expect(r.stdout).toContain("config/perkbridge.yaml");
  });
});
