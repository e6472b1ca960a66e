import type { Command } from "commander";
import type { RetryFilter } from "../daemon/admin/admin-api.js";
import { EXIT, type CliIo } from "./cli-io.js";
import { plural } from "./format-table.js";
import { configOption, runAdminCommand, type AdminCommandDeps } from "./status-command.js";

/** Options of `perkbridge retry`. */
export interface RetryCommandOptions {
  readonly config: string;
  readonly target?: string;
  readonly member?: string;
}

/** Registers `perkbridge retry [--target NAME] [--member ID]`. */
export function registerRetryCommand(program: Command, io: CliIo, setExitCode: (code: number) => void, deps: AdminCommandDeps): void {
  configOption(
    program
      .command("retry")
      .description("re-queue parked actions: all of them, or those of one target or one member")
      .option("--target <name>", "only actions for this target (a lane name from `perkbridge status`)")
      .option("--member <id>", "only actions caused by this member (its key, such as paymenthub:mem_123)")
      .addHelpText("after", "\nExit code 0 when the request was made (even if nothing matched), 1 if the daemon cannot be reached."),
  ).action(async (options: RetryCommandOptions) => setExitCode(await runRetry(options, io, deps)));
}

/** `perkbridge retry`: says how many parked actions went back into the queue. */
export function runRetry(options: RetryCommandOptions, io: CliIo, deps: AdminCommandDeps): Promise<number> {
  const filter: RetryFilter = {
    ...(options.target === undefined ? {} : { target: options.target }),
    ...(options.member === undefined ? {} : { member: options.member }),
  };
  return runAdminCommand(options.config, io, deps, async (admin) => {
    const { requeued } = await admin.retry(filter);
    io.stdout(requeued === 0 ? "No parked actions matched: nothing re-queued.\n" : `Re-queued ${plural(requeued, "parked action")}.\n`);
    return EXIT.ok;
  });
}
