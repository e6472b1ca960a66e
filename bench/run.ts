// Runs every bench/*.bench.ts (or those named on the command line), prints a
// table and writes bench/results.json. Figures are printed, never asserted.
import { readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Bench, BenchEntry } from "./lib.js";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here))
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

const results: BenchEntry[] = [];
for (const file of files) {
  process.stderr.write(`running ${file} …\n`);
  const mod = (await import(pathToFileURL(join(here, file)).href)) as { default: Bench };
  results.push(...(await mod.default()));
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toPrecision(4));
const rows = results.map((r) => [
  r.name,
  `${fmt(r.value)} ${r.unit}`,
  r.baseline === undefined ? "" : `${fmt(r.baseline)} ${r.unit} (ratio ${fmt(r.value / r.baseline)})`,
  r.target ?? "",
]);
const header = ["figure", "value", "baseline", "target"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of rows) console.log(line(row));

await writeFile(join(here, "results.json"), JSON.stringify(results, null, 2) + "\n");
console.log(`\n${results.length} figures written to bench/results.json`);
