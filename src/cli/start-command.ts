import type { Command } from "commander";
import { DEFAULT_CONFIG_PATH } from "../daemon/config/load-config.js";
import { createDaemon, type Daemon } from "../daemon/create-daemon.js";
import { perkbridgeComponents } from "../daemon/create-perkbridge.js";
import { EXIT, describeError, loadConfigForCommand, type CliIo } from "./cli-io.js";
import { createSweepProgress, processTerminal, type Terminal } from "./progress.js";

/** Registers `perkbridge start`; `setExitCode` receives the code the process should exit with. */
export function registerStartCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command("start")
    .description("run the daemon until SIGTERM or SIGINT")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG_PATH)
    .action(async (options: { config: string }) => setExitCode(await runStart(options.config, io)));
}

/**
 * Loads the config, runs the daemon and stops it on the first SIGTERM/SIGINT (exit 0); a second
 * signal exits at once with 130. A config error exits 2 before anything starts. While a sweep of
 * the billing source runs, its progress is drawn on stderr when that is a terminal (the log on
 * stdout stays JSON lines only, and nothing is drawn into a log file).
 */
export async function runStart(configPath: string, io: CliIo, terminal: Pick<Terminal, "stderrIsTTY"> = processTerminal()): Promise<number> {
  const loaded = await loadConfigForCommand(configPath, io);
  if (typeof loaded === "number") return loaded;

  let daemon: Daemon | undefined;
  let stopRequested: (() => void) | undefined;
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));
  let signals = 0;
  const sweepProgress = createSweepProgress(io, terminal);
  const removeSignalHandler = io.onStopSignal((signal) => {
    signals += 1;
    if (signals > 1) {
      sweepProgress.close();
      io.stderr(`perkbridge: ${signal} again, exiting without a clean stop\n`);
      process.exit(EXIT.interrupted);
    }
    daemon?.logger.info({ signal }, "stop requested");
    stopRequested?.();
  });
  try {
    try {
      daemon = await createDaemon(loaded.config, {
        secrets: loaded.secrets,
        components: perkbridgeComponents(loaded, { onSweepProgress: sweepProgress.observe }),
      });
    } catch (error) {
      io.stderr(`perkbridge: cannot start: ${describeError(error)}\n`);
      return EXIT.failure;
    }
    await stopSignal;
    // A sweep cut short by the stop may never report its end: the line must not outlive the daemon.
    sweepProgress.close();
    try {
      await daemon.stop();
    } catch (error) {
      io.stderr(`perkbridge: ${describeError(error)}\n`);
      return EXIT.failure;
    }
    return EXIT.ok;
  } finally {
    sweepProgress.close();
    removeSignalHandler();
  }
}
