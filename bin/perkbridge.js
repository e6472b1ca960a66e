#!/usr/bin/env node
// Runs the compiled CLI when `npm run build` has produced it, otherwise the
// TypeScript sources through tsx, so a fresh clone works without a build step.
// Durable writes are fsyncs on libuv's thread pool (4 threads by default), shared with DNS lookups:
// the background checkpoint's file writes and a slow lookup must not queue the log append that
// acknowledges a webhook behind them. Set before the pool starts, at the first asynchronous file
// operation.
process.env.UV_THREADPOOL_SIZE ??= "16";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const compiled = join(root, "dist", "cli", "main.js");
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(join(root, "src", "cli", "main.ts")).href);
}
