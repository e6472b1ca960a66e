import { readFileSync } from "node:fs";
import { Command } from "commander";
import { registerCheckCommand } from "./check-command.js";
import type { CliIo } from "./cli-io.js";
import { registerConfirmCommand } from "./confirm-command.js";
import { registerDemoCommand } from "./demo-command.js";
import { processTerminal } from "./progress.js";
import { registerRetryCommand } from "./retry-command.js";
import { registerStartCommand } from "./start-command.js";
import { registerStatusCommand, type AdminCommandDeps } from "./status-command.js";
import { registerSyncCommand } from "./sync-command.js";

/**
 * The `perkbridge` command line. Each subcommand lives in its own `<name>-command.ts` and registers
 * itself here; its action reports the exit code through `setExitCode`.
 */
export function createProgram(io: CliIo, setExitCode: (code: number) => void, admin: Partial<AdminCommandDeps> = {}): Command {
  const program = new Command("perkbridge")
    .description("Keeps paid perks in sync between a billing platform and Discord, Minecraft and FiveM.")
    .version(readVersion())
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    // Commander would call process.exit itself; main.ts decides the code instead.
    .exitOverride();
  registerStartCommand(program, io, setExitCode);
  registerCheckCommand(program, io, setExitCode);
  registerDemoCommand(program, io, setExitCode);
  // The operator commands; `admin` lets main.ts hand in the offline opener and tests a fake terminal.
  const adminDeps: AdminCommandDeps = { terminal: processTerminal(), clock: { now: () => Date.now() }, ...admin };
  registerStatusCommand(program, io, setExitCode, adminDeps);
  registerSyncCommand(program, io, setExitCode, adminDeps);
  registerRetryCommand(program, io, setExitCode, adminDeps);
  registerConfirmCommand(program, io, setExitCode, adminDeps);
  return program;
}

function readVersion(): string {
  // ../../package.json from both src/cli/ and dist/cli/.
  const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  const version = (manifest as { version?: unknown }).version;
  return typeof version === "string" ? version : "unknown";
}
