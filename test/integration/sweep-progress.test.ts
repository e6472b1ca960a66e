// Issue #6: "long operations (a first sweep of thousands of members) show progress on a terminal
// and stay quiet in logs". Real sweeps against the PaymentHub emulator drive the progress line
// through the sweeper's listener, and `perkbridge start` (runStart, in-process) draws its own.
import { reconcileDigest } from "../../src/daemon/member-digest.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Member } from "../../src/core/member.js";
import type { CliIo } from "../../src/cli/cli-io.js";
import { createSweepProgress } from "../../src/cli/progress.js";
import { runStart } from "../../src/cli/start-command.js";
import { createSweeper, type SweepEngine, type SweeperLogger, type SweepProgress } from "../../src/daemon/paymenthub/create-sweeper.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { createPaymentHubClient } from "../../src/sources/paymenthub/create-paymenthub-client.js";
import { paymentHubYaml, TEST_ENV_NAMES } from "./support/test-daemon.js";

const API_KEY = "sk_test_progress_4f0e";
const WEBHOOK_SECRET = "whsec_progress_8a1b";
const CLEAR_LINE = "\r\x1b[2K";
const clock = { now: () => Date.parse("2024-01-15T10:30:00Z") };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startEmulator(members: number): Promise<PaymentHubEmulator> {
  const emulator = createPaymentHubEmulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, clock, rateLimit: { perHour: 100_000, perMinute: 100_000 } });
  await emulator.start();
  cleanups.push(() => emulator.close());
  for (let i = 0; i < members; i++) {
    emulator.addMember({ id: `mem_${String(i).padStart(4, "0")}`, email: `m${i}@example.com`, plan_id: "plan_premium", metadata: {} }, { emit: false });
  }
  return emulator;
}

/** A real sweeper on the emulator; the engine only takes what is scheduled (it is not under test). */
function sweeperOn(
  emulator: PaymentHubEmulator,
  onProgress: (progress: SweepProgress) => void,
  logger: SweeperLogger = { info: () => undefined, warn: () => undefined },
) {
  const members = new Map<string, Member>();
  const engine: SweepEngine = { schedule: () => undefined, member: (key) => members.get(key) };
  const client = createPaymentHubClient({ baseUrl: emulator.url, apiKey: API_KEY, timeoutMs: 2_000, clock, retry: { limit: 1, baseDelayMs: 1, maxDelayMs: 2 } });
  const sweeper = createSweeper({
    client,
    engine,
    members: { keys: () => members.keys(), get: (key) => members.get(key), digestOf: (key) => (members.has(key) ? reconcileDigest(members.get(key) as Member) : undefined) },
    clock,
    logger,
    cron: "auto",
    rateLimit: { per_hour: 1000, per_minute: 100 },
    onProgress,
  });
  cleanups.push(() => sweeper.stop());
  return sweeper;
}

/** What the progress line writes, and whether stderr is a terminal. */
function stderrOf(tty: boolean): { text: () => string; io: Pick<CliIo, "stderr">; terminal: { stderrIsTTY: boolean } } {
  let text = "";
  return { text: () => text, io: { stderr: (t) => void (text += t) }, terminal: { stderrIsTTY: tty } };
}

describe("sweep progress", () => {
  it("reports each page of a real sweep, then its end", async () => {
    const emulator = await startEmulator(250);
    const seen: SweepProgress[] = [];
    const report = await sweeperOn(emulator, (p) => seen.push(p)).sweep();
    expect(report).toMatchObject({ complete: true, members: 250, pages: 3 });
    expect(seen).toEqual([
      { pages: 1, totalPages: 3, members: 100, total: 250, finished: false },
      { pages: 2, totalPages: 3, members: 200, total: 250, finished: false },
      { pages: 3, totalPages: 3, members: 250, total: 250, finished: false },
      { pages: 3, totalPages: 3, members: 250, total: 250, finished: true },
    ]);
  });

  it("draws one line on a terminal, redrawn per page and cleared at the end", async () => {
    const emulator = await startEmulator(250);
    const stderr = stderrOf(true);
    const line = createSweepProgress(stderr.io, stderr.terminal);
    await sweeperOn(emulator, line.observe).sweep();
    expect(stderr.text()).toBe(
      [
        "listing PaymentHub members: 100/250 (40%), page 1/3",
        "listing PaymentHub members: 200/250 (80%), page 2/3",
        "listing PaymentHub members: 250/250 (100%), page 3/3",
      ]
        .map((text) => `${CLEAR_LINE}${text}\r`)
        .join("") + CLEAR_LINE,
    );
  });

  it("writes nothing at all when stderr is not a terminal", async () => {
    const emulator = await startEmulator(250);
    const seen: SweepProgress[] = [];
    const stderr = stderrOf(false);
    const line = createSweepProgress(stderr.io, stderr.terminal);
    await sweeperOn(emulator, (p) => {
      seen.push(p);
      line.observe(p);
    }).sweep();
    line.close();
    expect(seen).toHaveLength(4);
    expect(stderr.text()).toBe("");
  });

  it("clears the line when a sweep stops early, and draws no more once closed", async () => {
    const emulator = await startEmulator(250);
    const stderr = stderrOf(true);
    const line = createSweepProgress(stderr.io, stderr.terminal);
    const seen: SweepProgress[] = [];
    const sweeper = sweeperOn(emulator, (p) => {
      seen.push(p);
      line.observe(p);
      // Page 2 and its retry fail: the listing stops after one page.
      if (p.pages === 1 && !p.finished) emulator.faults.failNext(2, 500);
    });
    const report = await sweeper.sweep();
    expect(report.complete).toBe(false);
    expect(seen.at(-1)).toEqual({ pages: 1, totalPages: 3, members: 100, total: 250, finished: true });
    expect(stderr.text()).toBe(`${CLEAR_LINE}listing PaymentHub members: 100/250 (40%), page 1/3\r${CLEAR_LINE}`);

    line.close();
    const before = stderr.text();
    await sweeper.sweep();
    expect(stderr.text()).toBe(before);
  });

  it("reports the end before the sweep's own log lines, so a terminal's line is gone when they are written", async () => {
    const emulator = await startEmulator(150);
    const order: string[] = [];
    const log = (_obj: object, msg: string): void => void order.push(`log: ${msg}`);
    await sweeperOn(emulator, (p) => order.push(p.finished ? "end" : `page ${p.pages}`), { info: log, warn: log }).sweep();
    expect(order).toEqual(["page 1", "page 2", "end", "log: PaymentHub sweep complete"]);
  });

  it("a listener that throws does not abort the sweep", async () => {
    const emulator = await startEmulator(150);
    const report = await sweeperOn(emulator, () => {
      throw new Error("display gone");
    }).sweep();
    expect(report).toMatchObject({ complete: true, members: 150 });
  });
});

describe("perkbridge start draws the progress of its sweeps", () => {
  it("on a terminal, the first sweep's progress goes to stderr and is cleared when it ends", async () => {
    const emulator = await startEmulator(230);
    const dir = await mkdtemp(join(tmpdir(), "perkbridge-progress-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const configPath = join(dir, "perkbridge.yaml");
    // `silent`: the daemon's log would go to this test's stdout; the progress line is the point.
    await writeFile(
      configPath,
      `state: { dir: ${JSON.stringify(join(dir, "state"))} }\nserver: { host: 127.0.0.1, port: 0 }\nlog: { level: silent, format: json }\n${paymentHubYaml(emulator.url)}`,
    );

    let stderr = "";
    let stop: ((signal: NodeJS.Signals) => void) | undefined;
    let swept: (() => void) | undefined;
    const sweptOnce = new Promise<void>((resolve) => (swept = resolve));
    const io: CliIo = {
      stdout: () => undefined,
      stderr: (text) => {
        stderr += text;
        if (stderr.includes("page 3/3") && stderr.endsWith(CLEAR_LINE)) swept?.();
      },
      env: { [TEST_ENV_NAMES.apiKey]: API_KEY, [TEST_ENV_NAMES.webhook]: WEBHOOK_SECRET },
      onStopSignal: (handler) => {
        stop = handler;
        return () => (stop = undefined);
      },
      redactSecrets: () => undefined,
    };
    const exit = runStart(configPath, io, { stderrIsTTY: true });
    await sweptOnce;
    stop?.("SIGTERM");
    expect(await exit).toBe(0);
    expect(stderr).toBe(
      [
        "listing PaymentHub members: 100/230 (43%), page 1/3",
        "listing PaymentHub members: 200/230 (86%), page 2/3",
        "listing PaymentHub members: 230/230 (100%), page 3/3",
      ]
        .map((text) => `${CLEAR_LINE}${text}\r`)
        .join("") + CLEAR_LINE,
    );
    expect(stop).toBeUndefined();
  }, 20_000);
});
