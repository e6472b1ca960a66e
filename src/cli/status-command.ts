import type { Command } from "commander";
import type { Clock } from "../core/ports.js";
import type { AdminSession, OfflineAdminFactory, StatusReport } from "../daemon/admin/admin-api.js";
import { openAdminSession } from "../daemon/admin/connect-admin.js";
import { DEFAULT_CONFIG_PATH } from "../daemon/config/load-config.js";
import { EXIT, describeError, loadConfigForCommand, type CliIo } from "./cli-io.js";
import { GLYPH, formatAgo, formatCount, formatDuration, formatList, formatTable, formatTime, plural, sanitizeCell } from "./format-table.js";
import type { Terminal } from "./progress.js";

/** What the operator commands (`status`, `sync`, `retry`, `confirm`) get besides the {@link CliIo}. */
export interface AdminCommandDeps {
  readonly terminal: Terminal;
  readonly clock: Clock;
  /**
   * Opens the state directory itself when the daemon is stopped. Without it, the commands need a
   * running daemon and say so.
   */
  readonly openOfflineAdmin?: OfflineAdminFactory;
  /** How long to wait for the daemon's admin socket; default 2 s. */
  readonly connectTimeoutMs?: number;
}

/**
 * Loads the config, reaches the daemon (or the state directory), runs `body` and closes what it
 * opened. A config error exits 2; an unreachable daemon or a failed call prints one line and exits 1.
 */
export async function runAdminCommand(
  configPath: string,
  io: CliIo,
  deps: AdminCommandDeps,
  body: (admin: AdminSession) => Promise<number>,
): Promise<number> {
  const loaded = await loadConfigForCommand(configPath, io);
  if (typeof loaded === "number") return loaded;
  try {
    const opened = await openAdminSession({
      socketPath: loaded.config.admin.socket,
      configPath,
      ...(deps.openOfflineAdmin === undefined ? {} : { openOffline: deps.openOfflineAdmin }),
      ...(deps.connectTimeoutMs === undefined ? {} : { timeoutMs: deps.connectTimeoutMs }),
    });
    if (!opened.ok) {
      io.stderr(`perkbridge: ${opened.message}\n`);
      return EXIT.failure;
    }
    try {
      return await body(opened.session);
    } finally {
      await opened.session.close();
    }
  } catch (error) {
    io.stderr(`perkbridge: ${describeError(error)}\n`);
    return EXIT.failure;
  }
}

/** Adds `-c, --config <file>` as every command has it. */
export function configOption(command: Command): Command {
  return command.option("-c, --config <file>", "configuration file", DEFAULT_CONFIG_PATH);
}

/** Registers `perkbridge status`. */
export function registerStatusCommand(program: Command, io: CliIo, setExitCode: (code: number) => void, deps: AdminCommandDeps): void {
  configOption(
    program
      .command("status")
      .description("show the queue, parked actions, held revocations, the rate budget, the last sweep and each target's health")
      .addHelpText(
        "after",
        "\nExit code 0 whenever the report could be read, even if a target is down or actions are parked:\n" +
          "status reports, `perkbridge check` judges. 1 if the daemon or the state directory cannot be reached.",
      ),
  ).action(async (options: { config: string }) => setExitCode(await runStatus(options.config, io, deps)));
}

/** `perkbridge status`: prints the report; see the command's help for the exit code. */
export function runStatus(configPath: string, io: CliIo, deps: AdminCommandDeps): Promise<number> {
  return runAdminCommand(configPath, io, deps, async (admin) => {
    io.stdout(formatStatusReport(await admin.status(), deps.clock.now()));
    return EXIT.ok;
  });
}

const INDENT = "  ";

/** The report as `perkbridge status` prints it: one titled section each, tables indented. */
export function formatStatusReport(report: StatusReport, now: number): string {
  const sections: string[] = [];

  sections.push(
    "Queue\n" +
      (report.queue.length === 0
        ? `${INDENT}no lanes\n`
        : formatTable(
            [
              { header: "LANE" },
              { header: "QUEUED", align: "right" },
              { header: "WAITING", align: "right" },
              { header: "PARKED", align: "right" },
              { header: "IN FLIGHT", align: "right" },
            ],
            report.queue.map((l) => [l.lane, formatCount(l.queued), formatCount(l.waiting), formatCount(l.parked), formatCount(l.inFlight)]),
            { indent: INDENT },
          )),
  );

  sections.push(
    report.parked.length === 0
      ? `Parked\n${INDENT}nothing parked\n`
      : `Parked (${formatCount(report.parked.length)}): fix the cause, then run \`perkbridge retry\`\n` +
          formatTable(
            [{ header: "ID" }, { header: "LANE" }, { header: "SUBJECT" }, { header: "PERK" }, { header: "SINCE" }, { header: "REASON" }, { header: "FIX" }],
            report.parked.map((p) => [p.id, p.lane, p.subject, p.perk, formatAgo(p.since, now), p.reason, p.fix ?? "-"]),
            { indent: INDENT },
          ),
  );

  sections.push(
    report.held.length === 0
      ? `Held revocations\n${INDENT}none held\n`
      : `Held revocations (${formatCount(report.held.length)}): review, then run \`perkbridge confirm\`\n` + formatHeldTable(report.held, now),
  );

  const budgetRows = report.budget.flatMap((b) =>
    b.windows.map((w) => [b.source, formatDuration(w.windowMs), formatCount(w.remaining), formatCount(w.limit)]),
  );
  const blocked = report.budget.filter((b) => b.blockedUntil !== undefined && b.blockedUntil > now);
  sections.push(
    "Rate budget\n" +
      (budgetRows.length === 0
        ? `${INDENT}no sources\n`
        : formatTable(
            [{ header: "SOURCE" }, { header: "WINDOW" }, { header: "REMAINING", align: "right" }, { header: "LIMIT", align: "right" }],
            budgetRows,
            { indent: INDENT },
          )) +
      blocked.map((b) => `${INDENT}${GLYPH.bad} ${sanitizeCell(b.source)} is paused until ${formatTime(b.blockedUntil ?? now)} (${formatAgo(b.blockedUntil ?? now, now)}): the platform asked us to wait\n`).join(""),
  );

  sections.push("Last sweep\n" + formatSweep(report.lastSweep, now));

  sections.push(
    "Targets\n" +
      (report.targets.length === 0
        ? `${INDENT}no targets configured\n`
        : formatTable(
            [{ header: "" }, { header: "TARGET" }, { header: "DETAIL" }],
            report.targets.map((t) => [t.healthy ? GLYPH.ok : GLYPH.bad, t.name, t.detail ?? (t.healthy ? "ok" : "unhealthy")]),
            { indent: INDENT },
          )),
  );

  return sections.join("\n");
}

/** The held revocations table, shared with `perkbridge confirm`. */
export function formatHeldTable(held: StatusReport["held"], now: number): string {
  return formatTable(
    [{ header: "ID" }, { header: "SUBJECT" }, { header: "PERK" }, { header: "MEMBERS" }, { header: "HELD" }, { header: "REASON" }],
    held.map((h) => [h.id, h.subject, h.perk, formatList(h.members), formatAgo(h.heldAt, now), h.reason]),
    { indent: INDENT },
  );
}

function formatSweep(sweep: StatusReport["lastSweep"], now: number): string {
  if (sweep === undefined) return `${INDENT}no sweep yet\n`;
  const source = sanitizeCell(sweep.source);
  const counts = `${plural(sweep.members, "member")}, ${plural(sweep.requests, "request")}`;
  if (sweep.finishedAt === undefined) {
    return `${INDENT}${source}: running since ${formatTime(sweep.startedAt)} (${formatAgo(sweep.startedAt, now)}), ${counts} so far\n`;
  }
  const outcome = sweep.complete
    ? `${GLYPH.ok} complete`
    : `${GLYPH.bad} incomplete${sweep.error === undefined ? "" : `: ${sanitizeCell(sweep.error)}`} (revokes nothing)`;
  return `${INDENT}${source}: finished ${formatTime(sweep.finishedAt)} (${formatAgo(sweep.finishedAt, now)}), ${counts}, ${outcome}\n`;
}
