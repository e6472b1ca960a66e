import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/perkbridge.js", import.meta.url));

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "perkbridge-cli-"));
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

function run(args: readonly string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Resolves with the first JSON log line that has `msg`, or rejects if the process exits first. */
function waitForLog(r: Run, msg: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      for (const line of r.stdout().split("\n")) {
        if (!line.startsWith("{")) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === msg) {
          r.child.stdout?.off("data", check);
          resolve(entry);
          return true;
        }
      }
      return false;
    };
    if (check()) return;
    r.child.stdout?.on("data", check);
    void r.exited.then((code) => reject(new Error(`exited with ${code} before logging "${msg}": ${r.stderr()}`)));
  });
}

async function writeConfig(text: string): Promise<string> {
  const path = join(dir, "perkbridge.yaml");
  await writeFile(path, text);
  return path;
}

function expectNoStackTrace(text: string): void {
  expect(text).not.toMatch(/^\s+at /m);
}

describe("perkbridge start", () => {
  it("serves /healthz and stops cleanly with exit code 0 on SIGTERM", async () => {
    const config = await writeConfig(
      ["server:", "  host: 127.0.0.1", "  port: 0", "state:", `  dir: ${join(dir, "state")}`, "log:", "  format: json"].join("\n"),
    );
    const r = run(["start", "--config", config]);
    const listening = await waitForLog(r, "listening");
    const url = String(listening.url);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    r.child.kill("SIGTERM");
    expect(await r.exited).toBe(0);
    expect(r.stdout()).toContain('"msg":"stopped"');
    expect(r.stderr()).toBe("");
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it("exits 2 with every problem, by path, and no stack trace on an invalid config", async () => {
    const config = await writeConfig(["server:", '  port: "eighty"', "  colour: blue", "log:", "  level: loud"].join("\n"));
    const r = run(["start", "--config", config]);
    expect(await r.exited).toBe(2);
    const stderr = r.stderr();
    expect(stderr).toContain(config);
    expect(stderr).toContain("server.port");
    expect(stderr).toContain("server.colour");
    expect(stderr).toContain("log.level");
    expectNoStackTrace(stderr);
    expect(r.stdout()).toBe("");
  });

  it("exits 2 when the default config file is missing", async () => {
    const r = run(["start"]);
    expect(await r.exited).toBe(2);
    expect(r.stderr()).toContain("config/perkbridge.yaml");
    expectNoStackTrace(r.stderr());
  });

  it("exits 1 with one line when the port is taken", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const config = await writeConfig(
        ["server:", `  port: ${port}`, "state:", `  dir: ${join(dir, "state")}`, "log:", "  format: json", "  level: fatal"].join("\n"),
      );
      const r = run(["start", "--config", config]);
      expect(await r.exited).toBe(1);
      const lines = r.stderr().trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("ERR_HTTP_LISTEN");
      expect(lines[0]).toContain(String(port));
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("exits 2 on an unknown command and 0 on --help", async () => {
    const unknown = run(["frobnicate"]);
    const help = run(["--help"]);
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toContain("unknown command");
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toContain("start");
  });
});
