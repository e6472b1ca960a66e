import type { Command } from "commander";
import type { SyncReport } from "../daemon/admin/admin-api.js";
import { EXIT, type CliIo } from "./cli-io.js";
import { formatList, formatTable, plural } from "./format-table.js";
import { createProgress } from "./progress.js";
import { configOption, runAdminCommand, type AdminCommandDeps } from "./status-command.js";

/** Options of `perkbridge sync`. */
export interface SyncCommandOptions {
  readonly config: string;
  readonly dryRun?: boolean;
  readonly member?: string;
}

/** Registers `perkbridge sync [--dry-run] [--member ID]`. */
export function registerSyncCommand(program: Command, io: CliIo, setExitCode: (code: number) => void, deps: AdminCommandDeps): void {
  configOption(
    program
      .command("sync")
      .description("reconcile every member now (or one), through the running daemon or, when it is stopped, on the state directory")
      .option("--dry-run", "print the grant/revoke plan as a table and change nothing anywhere")
      .option("--member <id>", "reconcile only this member (its key, such as paymenthub:mem_123)")
      .addHelpText("after", "\nExit code 0 when the sync (or the plan) completed, 1 if it failed or the daemon cannot be reached, 2 on a config error."),
  ).action(async (options: SyncCommandOptions) => setExitCode(await runSync(options, io, deps)));
}

/** `perkbridge sync`: progress on a terminal while it runs, then the plan table and a summary line. */
export function runSync(options: SyncCommandOptions, io: CliIo, deps: AdminCommandDeps): Promise<number> {
  return runAdminCommand(options.config, io, deps, async (admin) => {
    const dryRun = options.dryRun === true;
    const progress = createProgress(io, deps.terminal, dryRun ? "planning" : "syncing");
    let report: SyncReport;
    try {
      report = await admin.sync(
        { dryRun, ...(options.member === undefined ? {} : { member: options.member }) },
        (done, total, stage) => progress.update(done, total, stage),
      );
    } finally {
      progress.finish();
    }
    io.stdout(formatSyncReport(report));
    return EXIT.ok;
  });
}

/** The plan table (when there is a plan) and one summary line. */
export function formatSyncReport(report: SyncReport): string {
  const grants = report.planned.filter((a) => a.type === "grant").length;
  const revokes = report.planned.length - grants;
  const table =
    report.planned.length === 0
      ? ""
      : formatTable(
          [{ header: "ACTION" }, { header: "SUBJECT" }, { header: "PERK" }, { header: "MEMBERS" }, { header: "REASON" }],
          report.planned.map((a) => [a.type, a.subject, a.perk, formatList(a.members), a.reason]),
        ) + "\n";
  const members = plural(report.members, "member");
  const actions = `${plural(grants, "grant")} and ${plural(revokes, "revoke")}`;
  let summary: string;
  if (report.dryRun) {
    summary =
      `Dry run over ${members}: ${report.planned.length === 0 ? "nothing to do" : `would queue ${actions}`}` +
      (report.held === 0 ? "" : `; ${plural(report.held, "revocation")} would be held for \`perkbridge confirm\``) +
      ". Nothing was changed.";
  } else {
    summary =
      `Synced ${members}: ${report.planned.length === 0 ? "nothing to do" : `queued ${actions}`}` +
      (report.held === 0 ? "" : `; ${plural(report.held, "revocation")} held, see \`perkbridge confirm\``) +
      ".";
  }
  return `${table}${summary}\n`;
}
