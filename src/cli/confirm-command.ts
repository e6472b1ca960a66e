import type { Command } from "commander";
import { EXIT, type CliIo } from "./cli-io.js";
import { plural } from "./format-table.js";
import { configOption, formatHeldTable, runAdminCommand, type AdminCommandDeps } from "./status-command.js";

/** Options of `perkbridge confirm`. */
export interface ConfirmCommandOptions {
  readonly config: string;
  readonly yes?: boolean;
}

/** Registers `perkbridge confirm [id...] [--yes]`. */
export function registerConfirmCommand(program: Command, io: CliIo, setExitCode: (code: number) => void, deps: AdminCommandDeps): void {
  configOption(
    program
      .command("confirm")
      .description("show the revocations held by the mass-revoke guard, then release them (all, or the ids given)")
      .argument("[ids...]", "release only these held revocations (ids from `perkbridge status`)")
      .option("-y, --yes", "release without asking (required when not on a terminal)")
      .addHelpText(
        "after",
        "\nReleases exactly the revocations it showed, never one held after the list was printed.\n" +
          "Exit code 0 when released (or nothing was held), 1 if declined or the daemon cannot be reached,\n" +
          "2 when not on a terminal and --yes is missing.",
      ),
  ).action(async (ids: string[], options: ConfirmCommandOptions) => setExitCode(await runConfirm(ids, options, io, deps)));
}

/** `perkbridge confirm`: lists the held revocations, asks (unless `--yes`), releases those listed. */
export function runConfirm(ids: readonly string[], options: ConfirmCommandOptions, io: CliIo, deps: AdminCommandDeps): Promise<number> {
  return runAdminCommand(options.config, io, deps, async (admin) => {
    const { held } = await admin.status();
    const wanted = new Set(ids);
    const unknown = ids.filter((id) => !held.some((h) => h.id === id));
    if (unknown.length > 0) {
      io.stderr(`perkbridge: not held (any more?): ${unknown.join(", ")}. Run \`perkbridge status\` to see what is held.\n`);
      return EXIT.failure;
    }
    const shown = ids.length === 0 ? held : held.filter((h) => wanted.has(h.id));
    if (shown.length === 0) {
      io.stdout("No revocations are held.\n");
      return EXIT.ok;
    }
    const now = deps.clock.now();
    io.stdout(`Held revocations (${shown.length}):\n${formatHeldTable(shown, now)}`);
    const what = plural(shown.length, "revocation");
    if (options.yes !== true) {
      if (!deps.terminal.stdinIsTTY) {
        io.stderr(`perkbridge: not releasing ${what} without confirmation, and there is no terminal to ask on: pass --yes to release them.\n`);
        return EXIT.usage;
      }
      io.stderr(`Release these ${what}? Members lose these perks now. [y/N] `);
      const answer = (await deps.terminal.readLine())?.trim().toLowerCase();
      if (answer !== "y" && answer !== "yes") {
        io.stdout("Nothing released.\n");
        return EXIT.failure;
      }
    }
    const { released } = await admin.confirm({ ids: shown.map((h) => h.id) });
    const gone = shown.length - released;
    io.stdout(
      `Released ${plural(released, "revocation")}.` +
        (gone > 0 ? ` ${plural(gone, "was", "were")} no longer held (the member is entitled again, or another operator released it).` : "") +
        "\n",
    );
    return EXIT.ok;
  });
}
