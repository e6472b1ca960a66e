import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/perkbridge.js", import.meta.url));

/**
 * Prints, at exit, which of the heavy target libraries the process loaded (all three are CommonJS,
 * so they show up in require.cache however they were imported).
 */
const REPORT = `
process.on("exit", () => {
  const loaded = Object.keys(require.cache);
  const report = {};
  for (const name of ["discord.js", "minecraft-protocol", "ws"]) report[name] = loaded.some((k) => k.includes("/node_modules/" + name + "/"));
  process.stderr.write("LOADED " + JSON.stringify(report) + "\\n");
});
`;

let dir: string;
let probe: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perkbridge-lazy-"));
  probe = join(dir, "probe.cjs");
  await writeFile(probe, REPORT);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function loadedBy(args: readonly string[]): Record<string, boolean> {
  const result = spawnSync(process.execPath, ["--require", probe, BIN, ...args], { encoding: "utf8" });
  const line = result.stderr.split("\n").find((l) => l.startsWith("LOADED "));
  if (line === undefined) throw new Error(`no report from perkbridge ${args.join(" ")}: ${result.stderr}`);
  return JSON.parse(line.slice("LOADED ".length)) as Record<string, boolean>;
}

describe("heavy libraries load only where they are used", () => {
  it("perkbridge --help loads neither discord.js, minecraft-protocol nor the emulators' ws", () => {
    expect(loadedBy(["--help"])).toEqual({ "discord.js": false, "minecraft-protocol": false, ws: false });
  });

  it("the same process does report a library once it is loaded", () => {
    const result = spawnSync(process.execPath, ["--require", probe, "-e", "require('ws')"], { cwd: fileURLToPath(new URL("../..", import.meta.url)), encoding: "utf8" });
    expect(result.stderr).toContain('"ws":true');
  });
});
