import { randomBytes } from "node:crypto";
import { access, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runDemo, type DemoOptions, type DemoResult } from "../../src/sandbox/demo/run-demo.js";

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

interface Run {
  readonly result: DemoResult;
  readonly output: string;
  readonly secrets: readonly string[];
  readonly root: string;
}

async function play(options: Partial<DemoOptions> = {}): Promise<Run> {
  const root = await mkdtemp(join(tmpdir(), "perkbridge-demo-test-"));
  roots.push(root);
  const chunks: string[] = [];
  const secrets: string[] = [];
  const redacted: string[] = [];
  const result = await runDemo({
    write: (text) => void chunks.push(text),
    tmpRoot: root,
    // Recognizable values, so the test can look for them in the output.
    generateSecret: () => {
      const value = `demo-secret-${randomBytes(12).toString("hex")}`;
      secrets.push(value);
      return value;
    },
    onSecrets: (values) => void redacted.push(...values),
    graceSeconds: 1,
    ...options,
  });
  // Every generated secret is handed over for redaction before anything runs.
  expect([...redacted].sort()).toEqual([...secrets].sort());
  return { result, output: chunks.join(""), secrets, root };
}

const STORY = [
  /✓ Discord role Premium granted to alice after \d/,
  /✓ LuckPerms group vip granted to alice on survival after \d/,
  /✓ Discord role Premium granted to bob \(the trial perk\) after \d/,
  /✓ no LuckPerms group for bob/,
  /✓ carol and dave \(both premium\) have their perks after \d/,
  /✓ perkbridge looked carol up and read status canceled after \d/,
  /✓ carol keeps her role and group during the grace/,
  /✓ Discord role Premium revoked from carol after \d/,
  /✓ LuckPerms group vip revoked from carol after \d/,
  /✓ perkbridge read status canceled after \d/,
  /✓ dave keeps his role and group during the grace/,
  /✓ Discord role Premium revoked from dave after \d/,
  /✓ LuckPerms group vip revoked from dave after \d/,
  /✓ the daemon refused it with 401 after \d/,
  /✓ mallory got nothing/,
  /✓ Discord role Premium restored to alice after \d/,
];

describe("perkbridge demo", () => {
  it("plays the whole story with every check passing, prints no secret and leaves nothing behind", async () => {
    const { result, output, secrets, root } = await play();
    expect(output).not.toContain("✗");
    for (const line of STORY) expect(output).toMatch(line);
    expect(result).toMatchObject({ ok: true, interrupted: false, passed: STORY.length });
    expect(output).toContain(`All ${STORY.length} checks passed`);
    // The daemon's JSON log went to its file, not into the narration.
    expect(output).not.toMatch(/"level":/);
    expect(output).not.toContain("Still running (--keep)");
    expect(secrets).toHaveLength(4);
    for (const secret of secrets) expect(output).not.toContain(secret);
    await expect(access(result.tempDir)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(root)).toEqual([]);
  }, 30_000);

  it("with keep, runs on until stopped, shows where to look, then cleans up", async () => {
    const controller = new AbortController();
    const chunks: string[] = [];
    let health: Promise<number> | undefined;
    const run = play({
      keep: true,
      signal: controller.signal,
      write: (text) => {
        chunks.push(text);
        if (!text.includes("Press Ctrl-C")) return;
        // The daemon still answers once the hint is printed; stop the demo after asking it.
        const url = /curl (http:\/\/127\.0\.0\.1:\d+\/healthz)/.exec(chunks.join(""))?.[1];
        health = (url === undefined ? Promise.resolve(0) : fetch(url).then((res) => res.status)).finally(() => controller.abort());
      },
    });
    const { result } = await run;
    const output = chunks.join("");
    expect(await health).toBe(200);
    expect(result.ok).toBe(true);
    expect(output).toMatch(/curl http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(output).toMatch(/log {4}.*perkbridge\.log/);
    await expect(access(result.tempDir)).rejects.toMatchObject({ code: "ENOENT" });
  }, 30_000);

  it("prints ✗ with what was expected when an effect does not show up, and still cleans up", async () => {
    // No time at all for the first effect: the grant cannot have reached Discord yet.
    const { result, output, root } = await play({ effectTimeoutMs: 0 });
    expect(result).toMatchObject({ ok: false, interrupted: false, passed: 0 });
    expect(output).toMatch(/✗ Discord role Premium granted to alice: expected within 0 ms, but saw roles \[\]/);
    expect(output).toContain("Demo failed");
    expect(await readdir(root)).toEqual([]);
  }, 30_000);
});
