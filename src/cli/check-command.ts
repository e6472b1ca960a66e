import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { Registry } from "prom-client";
import { parseDocument } from "yaml";
import type { CheckResult, PerkTarget } from "../core/ports.js";
import { createPaymentHubClient } from "../sources/paymenthub/create-paymenthub-client.js";
import { PaymentHubError } from "../sources/paymenthub/paymenthub-error.js";
import type { LoadedConfig } from "../daemon/config/load-config.js";
import type { DaemonContext } from "../daemon/create-daemon.js";
import { createHttpServer } from "../daemon/create-http-server.js";
import { createLogger, createRedactor } from "../daemon/create-logger.js";
import { createDiscordLane } from "../daemon/lanes/discord-lane.js";
import { createHttpLane } from "../daemon/lanes/http-lane.js";
import type { LaneFactory } from "../daemon/lanes/lane-factory.js";
import { createMinecraftLane } from "../daemon/lanes/minecraft-lane.js";
import { createStore } from "../daemon/store/create-store.js";
import { EXIT, describeError, loadConfigForCommand, type CliIo } from "./cli-io.js";
import { GLYPH, formatTable, plural } from "./format-table.js";
import { configOption } from "./status-command.js";

/** Options of {@link runCheck}. */
export interface CheckOptions {
  /** How long one target may take to connect and answer its preflight; default 20 s. */
  readonly targetTimeoutMs?: number;
}

/** Registers `perkbridge check`. */
export function registerCheckCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  configOption(
    program
      .command("check")
      .description("validate the config, then probe every source (API key) and target (login, permissions, RCON)")
      .addHelpText(
        "after",
        "\nPrints one line per check, with how to fix what failed. Safe to run next to a running daemon:\n" +
          "it never opens the state directory. Exit code 0 when every check passed, 1 if one failed, 2 on a config error.",
      ),
  ).action(async (options: { config: string }) => setExitCode(await runCheck(options.config, io)));
}

/** The lane factories, in the order the daemon builds them. */
const LANES: readonly LaneFactory[] = [createDiscordLane, createMinecraftLane, createHttpLane];

/** `perkbridge check`: see the command's help. */
export async function runCheck(configPath: string, io: CliIo, options: CheckOptions = {}): Promise<number> {
  const loaded = await loadConfigForCommand(configPath, io);
  if (typeof loaded === "number") return loaded;

  const results: CheckResult[] = [{ ok: true, name: "configuration", detail: configPath }];
  if (loaded.config.sources.paymenthub) results.push(await probePaymentHub(loaded, configPath));
  results.push(...(await checkTargets(loaded, io, options.targetTimeoutMs ?? 20_000)));

  // Adapters keep secrets out of their messages; this is the second lock on that door.
  const redact = createRedactor(loaded.secrets) ?? ((text: string) => text);
  io.stdout(
    formatTable(
      [{ header: "" }, { header: "CHECK" }, { header: "DETAIL" }, { header: "FIX" }],
      results.map((r) => [r.ok ? GLYPH.ok : GLYPH.bad, redact(r.name), redact(r.detail ?? ""), r.ok ? "" : redact(r.fix ?? "")]),
    ),
  );
  const failed = results.filter((r) => !r.ok).length;
  io.stdout(failed === 0 ? `\nAll ${plural(results.length, "check")} passed.\n` : `\n${failed} of ${plural(results.length, "check")} failed: fix them, then run \`perkbridge check\` again.\n`);
  return failed === 0 ? EXIT.ok : EXIT.failure;
}

/** `GET /members?limit=1`: the cheapest request that proves the base URL and the API key. */
async function probePaymentHub(loaded: LoadedConfig, configPath: string): Promise<CheckResult> {
  const ph = loaded.config.sources.paymenthub;
  if (!ph) return { ok: true, name: "paymenthub" };
  const name = "paymenthub: API key";
  // One attempt: a check should say what is wrong now, not retry its way around it.
  const client = createPaymentHubClient({ baseUrl: ph.base_url, apiKey: ph.api_key, timeoutMs: ph.request_timeout, retry: { limit: 0 } });
  try {
    const list = await client.listMembers({ page: 1, limit: 1 });
    return { ok: true, name, detail: `accepted by ${ph.base_url}, ${plural(list.pagination.total, "member")}` };
  } catch (error) {
    if (!(error instanceof PaymentHubError)) return { ok: false, name, detail: describeError(error) };
    const keyField = (await envNameOf(configPath, ["sources", "paymenthub", "api_key"])) ?? "sources.paymenthub.api_key";
    switch (error.code) {
      case "ERR_PAYMENTHUB_UNAUTHORIZED":
        return { ok: false, name, detail: "401: the API key was refused", fix: `set ${keyField} to a key from the PaymentHub dashboard` };
      case "ERR_PAYMENTHUB_FORBIDDEN":
        return { ok: false, name, detail: "403: the API key may not list members", fix: "give the key read access to members in the PaymentHub dashboard" };
      case "ERR_PAYMENTHUB_NOT_FOUND":
        return { ok: false, name, detail: `404 from ${ph.base_url}/members`, fix: "check sources.paymenthub.base_url: it should end in /v1" };
      case "ERR_PAYMENTHUB_RATE_LIMITED":
        return { ok: false, name, detail: "429: rate limited, the key could not be checked", fix: `wait${error.retryAfter === undefined ? "" : ` ${error.retryAfter} s`}, then run the check again` };
      case "ERR_PAYMENTHUB_NETWORK":
      case "ERR_PAYMENTHUB_TIMEOUT":
        return { ok: false, name, detail: `cannot reach ${ph.base_url}`, fix: "check sources.paymenthub.base_url and the network" };
      default:
        return { ok: false, name, detail: error.status === undefined ? error.message : `${error.status}: ${error.message}`, fix: "try again later; if it persists, check PaymentHub's status" };
    }
  }
}

/** Builds each configured target as the daemon does, starts it, runs its preflight, stops it. */
async function checkTargets(loaded: LoadedConfig, io: CliIo, timeoutMs: number): Promise<CheckResult[]> {
  const context = checkContext(loaded, io);
  const results: CheckResult[] = [];
  for (const create of LANES) {
    let target: PerkTarget | undefined;
    try {
      target = await create(loaded, context, () => undefined);
    } catch (error) {
      results.push({ ok: false, name: "target setup", detail: describeError(error), fix: "correct the target's section of the config" });
      continue;
    }
    if (target === undefined) continue;
    const started = target;
    try {
      const checks = await withTimeout(
        (async () => {
          await started.start();
          return started.preflight();
        })(),
        timeoutMs,
      );
      results.push(
        ...(checks ?? [{ ok: false, name: `${started.name}: preflight`, detail: `no answer within ${Math.round(timeoutMs / 1000)} s`, fix: "check that the target is reachable from this host" }]),
      );
    } catch (error) {
      results.push({ ok: false, name: `${started.name}: start`, detail: describeError(error), fix: "check the target's section of the config and that it is reachable" });
    } finally {
      await started.stop().catch(() => undefined);
    }
  }
  return results;
}

/**
 * What a lane factory gets. The lanes read the config, the logger, the clock and base URLs only; the
 * store is never opened (no lock) and the listener never started.
 */
function checkContext(loaded: LoadedConfig, io: CliIo): DaemonContext {
  const logger = createLogger({ level: "silent", format: "json", destination: { write: () => undefined } });
  const clock = { now: () => Date.now() };
  return {
    config: loaded.config,
    logger,
    metrics: { registry: new Registry() },
    http: createHttpServer({ host: "127.0.0.1", port: 0, logger, registry: new Registry(), ready: () => ({ ready: false, reason: "check" }) }),
    store: createStore({ dir: loaded.config.state.dir, clock }),
    clock,
    env: io.env,
    baseUrls: {},
  };
}

/** Resolves to undefined when `promise` takes longer than `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The variable a config value comes from when it is written as exactly `${NAME}`, to name it in a fix. */
async function envNameOf(configPath: string, path: readonly string[]): Promise<string | undefined> {
  try {
    const raw = parseDocument(await readFile(configPath, "utf8")).getIn(path);
    const match = typeof raw === "string" ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(raw) : null;
    return match?.[1];
  } catch {
    return undefined;
  }
}
