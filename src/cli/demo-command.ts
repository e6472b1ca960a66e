import type { Command } from "commander";
import { EXIT, type CliIo } from "./cli-io.js";

/** Registers `perkbridge demo`; `setExitCode` receives the code the process should exit with. */
export function registerDemoCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command("demo")
    .description("play a short story against emulated PaymentHub, Discord and Minecraft on 127.0.0.1 (no account or network needed)")
    .option("--keep", "keep the daemon and the emulators running after the story, until Ctrl-C")
    .action(async (options: { keep?: boolean }) => setExitCode(await runDemoCommand(options.keep === true, io)));
}

/** Runs the demo; exit 0 when every step passed, 1 when one failed, 130 when interrupted mid-story. */
export async function runDemoCommand(keep: boolean, io: CliIo): Promise<number> {
  const controller = new AbortController();
  const removeSignalHandler = io.onStopSignal(() => controller.abort());
  try {
    // The emulators (minecraft-protocol, ws servers) load with the demo only, not with every command.
    const { runDemo } = await import("../sandbox/demo/run-demo.js");
    const result = await runDemo({
      write: io.stdout,
      keep,
      signal: controller.signal,
      onSecrets: (secrets) => io.redactSecrets(secrets),
    });
    if (result.ok) return EXIT.ok;
    return result.interrupted ? EXIT.interrupted : EXIT.failure;
  } finally {
    removeSignalHandler();
  }
}
