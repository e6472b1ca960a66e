import { CommanderError } from "commander";
import { openOfflineAdmin } from "../daemon/admin/open-offline-admin.js";
import { EXIT, describeError, processIo } from "./cli-io.js";
import { createProgram } from "./create-program.js";

// The entry point of bin/perkbridge.js: no stack traces for the user, one line and an exit code.
const io = processIo();
const fail = (error: unknown): never => {
  io.stderr(`perkbridge: ${describeError(error)}\n`);
  process.exit(EXIT.failure);
};
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

let exitCode: number = EXIT.ok;
try {
  // With the daemon stopped, the operator commands open the state directory themselves.
  await createProgram(io, (code) => (exitCode = code), { openOfflineAdmin }).parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) fail(error);
  // Commander has printed the problem; help and --version exit 0, usage errors 2.
  else exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
}
// Exit explicitly: a component that leaked a handle must not keep a stopped daemon alive.
process.exit(exitCode);
