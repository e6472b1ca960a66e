import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { PerkbridgeError } from "../../src/core/errors.js";
import { createStore } from "../../src/daemon/store/create-store.js";

const child = fileURLToPath(new URL("./fixtures/store-crash-child.ts", import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "perkbridge-store-proc-"));
  dirs.push(d);
  return d;
}

interface Running {
  readonly proc: ChildProcess;
  /** Resolves with the pid once the child has opened the store. */
  readonly ready: Promise<number>;
  /** Resolves with every complete stdout line once the child is gone. */
  readonly exited: Promise<string[]>;
}

function startChild(dir: string, mode: "loop" | "hold", cached = false): Running {
  const proc = spawn(process.execPath, ["--import", "tsx", child, dir, mode, ...(cached ? ["cached"] : [])], {
    cwd: fileURLToPath(new URL("../../", import.meta.url)), // where tsx resolves from
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  let out = "";
  let err = "";
  let onReady: (pid: number) => void = () => undefined;
  let onFail: (error: Error) => void = () => undefined;
  const ready = new Promise<number>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  proc.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    const match = /^ready (\d+)$/m.exec(out);
    if (match) onReady(Number(match[1]));
  });
  proc.stderr?.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const exited = new Promise<string[]>((resolve) => {
    proc.on("close", () => {
      onFail(new Error(`child exited before it was ready: ${err}`));
      // A line without its newline may have been cut by the kill: only complete lines count.
      resolve(out.split("\n").slice(0, -1));
    });
  });
  return { proc, ready, exited };
}

describe("store across processes", () => {
  it.each([
    ["in memory", false],
    ["read on demand", true],
  ])("keeps every acknowledged commit when the process is killed with SIGKILL at random moments (members %s)", async (_mode, cached) => {
    const dir = await tempDir();
    let acknowledged = 0;
    for (let round = 0; round < 3; round++) {
      const running = startChild(dir, "loop", cached);
      await running.ready;
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 300)));
      running.proc.kill("SIGKILL");
      const lines = await running.exited;
      const numbers = lines.filter((l) => /^\d+$/.test(l)).map(Number);
      expect(numbers.length).toBeGreaterThan(0);
      acknowledged = numbers.at(-1) ?? acknowledged;

      const store = createStore({ dir });
      const counter = store.collection<number>("counter");
      const members = store.collection<{ n: number }>("members", { shards: 16, ...(cached ? { cacheShards: 2 } : {}) });
      const report = await store.open(); // the child's lock is stale now: taken over
      expect(report.tookOverStaleLock?.holder?.pid).toBe(running.proc.pid);
      const n = counter.get("n") ?? 0;
      // Every acknowledged commit is there, and the state is exactly that of
      // commit n (n may be one ahead: durable, killed before it was printed).
      expect(n).toBeGreaterThanOrEqual(acknowledged);
      expect(n).toBeLessThanOrEqual(acknowledged + 1);
      for (let i = 1; i <= n; i++) {
        expect(members.get(`m${i}`)?.n).toBe(i);
        for (let j = 0; j < 8; j++) expect(members.has(`p${i}-${j}`)).toBe(true);
      }
      expect(members.has(`m${n + 1}`)).toBe(false);
      for (let j = 0; j < 8; j++) expect(members.has(`p${n + 1}-${j}`)).toBe(false);
      for (let r = 0; r < 7; r++) {
        const latest = n - ((((n - r) % 7) + 7) % 7);
        expect(members.get(`last-${r}`)?.n).toBe(latest >= 1 ? latest : undefined);
      }
      await store.close();
    }
  });

  it("refuses a second daemon on the same directory while the first is alive", async () => {
    const dir = await tempDir();
    const running = startChild(dir, "hold");
    const pid = await running.ready;
    const store = createStore({ dir });
    store.collection("counter");
    const error = await store.open().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PerkbridgeError);
    expect((error as PerkbridgeError).code).toBe("ERR_STATE_LOCKED");
    expect((error as Error).message).toContain(`state directory ${dir} is in use by another perkbridge (pid ${pid}). Stop it first`);
    // The refused store left the holder's lock alone.
    expect(JSON.parse(await readFile(join(dir, "perkbridge.lock"), "utf8"))).toMatchObject({ pid });
    running.proc.kill("SIGKILL");
    await running.exited;
  });
});
