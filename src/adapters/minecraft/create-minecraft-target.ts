// The Minecraft target: applies group (LuckPerms), whitelist (vanilla) and custom command perks
// over RCON, one connection pool and one health record per server, so a server that is down
// holds only its own actions.
//
// Every action follows the same path: render the command from validated placeholder values
// (nothing is sent when a value is refused), check that the server is up (status ping, cached),
// send, and read the reply. Only a reply that says the change took effect, or a read-back that
// shows it, is recorded as granted; LuckPerms' empty replies under Paper/Spigot (it runs
// commands asynchronously, LuckPerms #1365/#3411) are followed by `parent info` a moment later.
import { PerkbridgeError } from "../../core/errors.js";
import type { Perk } from "../../core/perk.js";
import { perkKey } from "../../core/perk.js";
import type { CheckResult, Clock, PerkAction, PerkTarget, SyncResult } from "../../core/ports.js";
import {
  classifyReply,
  parentInfoHas,
  parsePlayerList,
  whitelistHas,
  type OnlinePlayer,
  type ReplyVerdict,
} from "./classify-reply.js";
import { createRconClient, RconError, type RconClient } from "./rcon-client.js";
import { checkTemplate, DEFAULT_COMMANDS, renderCommand, type CommandSet, type PlaceholderValues } from "./render-command.js";
import { pingStatus } from "./status-ping.js";

export type { OnlinePlayer } from "./classify-reply.js";

/** One Minecraft server (or a proxy with an RCON plugin) as configured. */
export interface MinecraftServerConfig {
  /** The password comes from the environment; it never appears in a log line or error. */
  readonly rcon: { readonly host: string; readonly port: number; readonly password: string };
  /** Where to send the server list ping that tells whether the server is up. */
  readonly status?: { readonly host: string; readonly port: number };
  /** Per command; default 5000. */
  readonly commandTimeoutMs?: number;
  /** How often `list` is polled to see who is online; default 30000, 0 turns polling off. */
  readonly listIntervalMs?: number;
  /** Overrides of the default LuckPerms/vanilla commands (e.g. `lpv …` on a Velocity proxy). */
  readonly commands?: Partial<CommandSet>;
  /** Wait before reading back an unverified LuckPerms change; default 1000. */
  readonly readBackDelayMs?: number;
  /** How long a successful status ping is trusted; default 10000. */
  readonly statusTtlMs?: number;
  /** Status ping timeout; default 2000. */
  readonly statusTimeoutMs?: number;
  /** How long a server found down is left alone before it is pinged again; default 5000. */
  readonly downRetryMs?: number;
  /** RCON connections to keep; default 1 (commands run one at a time). */
  readonly connections?: number;
  /** Groups the perks use, checked by preflight. */
  readonly groups?: readonly string[];
  /** Whether preflight expects LuckPerms; default true. */
  readonly luckperms?: boolean;
}

/** The structured-logging calls the target makes (a pino logger fits). */
export interface MinecraftLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Options of {@link createMinecraftTarget}. */
export interface MinecraftTargetOptions {
  readonly servers: Readonly<Record<string, MinecraftServerConfig>>;
  readonly logger?: MinecraftLogger;
  readonly clock?: Clock;
}

/** Whether a server can take work right now. */
export interface ServerHealth {
  readonly state: "unknown" | "up" | "down" | "refused";
  /** Why it is down or refused. */
  readonly reason?: string;
  /** As the status ping reports it. */
  readonly version?: string;
  readonly checkedAt?: number;
  /** Commands sent whose reply was empty and could not be read back (async LuckPerms). */
  readonly unverified: number;
}

/** A player newly seen online (or seen for the first time since start). */
export interface PlayerOnlineEvent {
  readonly server: string;
  readonly name: string;
  readonly uuid?: string;
}

/** The Minecraft {@link PerkTarget}, with what the engine needs besides `apply`. */
export interface MinecraftTarget extends PerkTarget {
  readonly name: "minecraft";
  /** True when the perk's command must never be sent twice (`once`), e.g. giving items. */
  isOnce(perk: Perk): boolean;
  /** Players online at the last poll of `list`. */
  onlinePlayers(server: string): readonly OnlinePlayer[];
  /** Polls `list` now. */
  refreshPlayers(server: string): Promise<readonly OnlinePlayer[]>;
  /** Called when a player comes online; waiting `online_only` and whitelist actions can run now. Returns an unsubscribe. */
  onPlayerOnline(listener: (event: PlayerOnlineEvent) => void): () => void;
  health(server: string): ServerHealth | undefined;
  /** A name learned from `list uuids` for a UUID, if any. */
  knownName(uuid: string): string | undefined;
}

interface ServerState {
  readonly name: string;
  readonly config: MinecraftServerConfig;
  readonly commands: CommandSet;
  readonly client: RconClient;
  health: ServerHealth;
  nextPingAt: number;
  ping: Promise<void> | undefined;
  online: OnlinePlayer[];
  polledAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

type Op = "group" | "whitelist" | "command";

const silentLogger: MinecraftLogger = { info: () => undefined, warn: () => undefined, debug: () => undefined };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function failed(retryable: boolean, reason: string, extra: { fix?: string; retryAfterMs?: number; outcomeUnknown?: boolean; targetDown?: boolean } = {}): SyncResult {
  return { kind: "failed", retryable, reason, ...extra };
}

function stringParam(perk: Perk, key: string): string | undefined {
  const value = perk.params?.[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Builds the commands of a server: defaults, overrides, and a read-back that speaks the same LuckPerms command (`lp`/`lpv`/`lpb`). */
function commandSetOf(config: MinecraftServerConfig): CommandSet {
  const overrides = config.commands ?? {};
  const lpWord = (overrides.group_add ?? DEFAULT_COMMANDS.group_add).split(" ")[0] ?? "lp";
  return {
    ...DEFAULT_COMMANDS,
    group_info: `${lpWord} user {uuid} parent info`,
    ...overrides,
  };
}

/** Creates the target; checks every configured template first and throws `ERR_CONFIG` on a bad one. */
export async function createMinecraftTarget(options: MinecraftTargetOptions): Promise<MinecraftTarget> {
  const logger = options.logger ?? silentLogger;
  const now = (): number => (options.clock ?? Date).now();
  const listeners = new Set<(event: PlayerOnlineEvent) => void>();
  const learnedNames = new Map<string, string>();
  const servers = new Map<string, ServerState>();

  for (const [name, config] of Object.entries(options.servers)) {
    const commands = commandSetOf(config);
    for (const [key, template] of Object.entries(commands)) {
      const checked = checkTemplate(template);
      if (!checked.ok) {
        throw new PerkbridgeError("ERR_CONFIG", `minecraft server ${name}: commands.${key}: ${checked.reason}`);
      }
    }
    const client = createRconClient({
      host: config.rcon.host,
      port: config.rcon.port,
      password: config.rcon.password,
      commandTimeoutMs: config.commandTimeoutMs ?? 5000,
      connections: config.connections ?? 1,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    servers.set(name, {
      name,
      config,
      commands,
      client,
      health: { state: "unknown", unverified: 0 },
      nextPingAt: 0,
      ping: undefined,
      online: [],
      polledAt: undefined,
      timer: undefined,
    });
  }

  const setHealth = (server: ServerState, patch: Partial<ServerHealth>): void => {
    const next = { ...server.health, ...patch, checkedAt: now() };
    if (next.state !== server.health.state) {
      logger.info({ server: server.name, state: next.state, reason: next.reason }, `minecraft server ${server.name} is ${next.state}`);
    }
    if (next.state === "up") delete (next as { reason?: string }).reason;
    server.health = next;
  };

  const downResult = (server: ServerState, retryAfterMs: number): SyncResult =>
    failed(true, `server ${server.name} is down${server.health.reason ? ` (${server.health.reason})` : ""}`, {
      retryAfterMs: Math.max(0, retryAfterMs),
      targetDown: true,
      fix: `start the server, or check rcon/status host and port of minecraft server ${server.name}`,
    });

  /** Status ping before work is sent; a down server is left alone until `downRetryMs` has passed. */
  async function ensureUp(server: ServerState): Promise<SyncResult | undefined> {
    const status = server.config.status;
    if (!status) {
      // Without a status address, RCON connect failures are the evidence; the client backs off itself.
      return undefined;
    }
    if (now() < server.nextPingAt) {
      return server.health.state === "down" ? downResult(server, server.nextPingAt - now()) : undefined;
    }
    server.ping ??= (async () => {
      try {
        const result = await pingStatus({ host: status.host, port: status.port, timeoutMs: server.config.statusTimeoutMs ?? 2000 });
        setHealth(server, { state: server.health.state === "refused" ? "refused" : "up", version: result.version });
        server.nextPingAt = now() + (server.config.statusTtlMs ?? 10_000);
      } catch (error) {
        setHealth(server, { state: "down", reason: (error as Error).message });
        server.nextPingAt = now() + (server.config.downRetryMs ?? 5000);
      } finally {
        server.ping = undefined;
      }
    })();
    await server.ping;
    return server.health.state === "down" ? downResult(server, server.nextPingAt - now()) : undefined;
  }

  /** Sends one command, turning transport failures into results. */
  async function send(server: ServerState, command: string, once: boolean): Promise<string | SyncResult> {
    try {
      const reply = await server.client.command(command, { idempotent: !once });
      if (server.health.state !== "up") setHealth(server, { state: "up" });
      return reply;
    } catch (error) {
      if (!(error instanceof RconError)) throw error;
      switch (error.code) {
        case "ERR_RCON_UNREACHABLE":
          setHealth(server, { state: "down", reason: error.message });
          return downResult(server, error.retryAfterMs ?? server.config.downRetryMs ?? 5000);
        case "ERR_RCON_AUTH":
          setHealth(server, { state: "refused", reason: error.message });
          return failed(false, error.message, {
            fix: `set the RCON password of minecraft server ${server.name} to rcon.password in its server.properties, then retry`,
          });
        case "ERR_RCON_TIMEOUT":
        case "ERR_RCON_CLOSED":
          if (once) {
            return failed(false, `${error.message}; the command may or may not have run`, {
              outcomeUnknown: true,
              fix: "check on the server whether the command ran; run it by hand if it did not",
            });
          }
          return failed(true, error.message);
        case "ERR_RCON_COMMAND_TOO_LONG":
          return failed(false, error.message, { fix: "shorten the command template" });
        default:
          return failed(true, error.message);
      }
    }
  }

  /** Reads back whether the change is in place, after a delay for async LuckPerms. */
  async function readBack(server: ServerState, op: Op, values: PlaceholderValues): Promise<"present" | "absent" | "unknown"> {
    if (op === "command") return "unknown";
    await sleep(server.config.readBackDelayMs ?? 1000);
    const template = op === "group" ? server.commands.group_info : server.commands.whitelist_list;
    const rendered = renderCommand(template, values);
    if (!rendered.ok) return "unknown";
    const reply = await send(server, rendered.command, false);
    if (typeof reply !== "string") return "unknown";
    return op === "group" ? parentInfoHas(reply, values.group ?? "") : whitelistHas(reply, values.name ?? "");
  }

  function isOnce(perk: Perk): boolean {
    const once = perk.params?.["once"];
    if (once === true || once === "true") return true;
    if (once === false || once === "false") return false;
    return perk.kind === "command";
  }

  function isOnline(server: ServerState, uuid: string | undefined, name: string | undefined): boolean {
    return server.online.some(
      (p) => (uuid !== undefined && p.uuid === uuid) || (name !== undefined && p.name.toLowerCase() === name.toLowerCase()),
    );
  }

  async function refreshPlayers(serverName: string): Promise<readonly OnlinePlayer[]> {
    const server = servers.get(serverName);
    if (!server) throw new PerkbridgeError("ERR_UNKNOWN_SERVER", `no minecraft server named ${serverName} is configured`);
    let reply = await send(server, "list uuids", false);
    if (typeof reply === "string" && parsePlayerList(reply) === null) reply = await send(server, "list", false);
    if (typeof reply !== "string") throw new PerkbridgeError("ERR_MINECRAFT_LIST", `list on ${serverName} failed: ${reply.kind === "failed" ? reply.reason : reply.kind}`);
    const players = parsePlayerList(reply) ?? [];
    const before = server.online;
    server.online = players;
    server.polledAt = now();
    for (const player of players) {
      if (player.uuid !== undefined) learnedNames.set(player.uuid, player.name);
      const wasOnline = before.some((p) => p.name.toLowerCase() === player.name.toLowerCase());
      if (wasOnline) continue;
      const event: PlayerOnlineEvent = player.uuid === undefined ? { server: serverName, name: player.name } : { server: serverName, name: player.name, uuid: player.uuid };
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          logger.warn({ server: serverName, err: error }, "a player-online listener threw");
        }
      }
    }
    return players;
  }

  /** Maps a verdict to a result, reading back when the reply alone does not tell. */
  async function resultOf(
    server: ServerState,
    action: PerkAction,
    op: Op,
    customTemplate: boolean,
    values: PlaceholderValues,
    verdict: ReplyVerdict,
  ): Promise<SyncResult> {
    const expected = action.type === "grant" ? "present" : "absent";
    const done = (changed: boolean | undefined): SyncResult => {
      if (action.type === "grant") return changed === false ? { kind: "granted", preExisting: true } : { kind: "granted" };
      return changed === false ? { kind: "revoked", wasAbsent: true } : { kind: "revoked" };
    };
    const context = { server: server.name, perk: perkKey(action.perk), action: action.id };
    switch (verdict.kind) {
      case "done":
        if (verdict.state === expected) return done(verdict.changed);
        return failed(false, `the server's reply says the opposite of a ${action.type}`, {
          fix: "check the perk's grant and revoke command templates",
        });
      case "needs-online":
        return { kind: "target-missing", reason: verdict.reason };
      case "failed":
        return failed(verdict.retryable, verdict.reason, verdict.fix === undefined ? {} : { fix: verdict.fix });
      case "empty":
      case "unrecognized": {
        const seen = customTemplate ? "unknown" : await readBack(server, op, values);
        if (seen === expected) return done(undefined);
        if (seen !== "unknown") {
          return failed(true, `the ${action.type} was sent but a read-back does not show it yet`);
        }
        if (verdict.kind === "unrecognized" && op !== "command") {
          return failed(false, `unrecognized reply from ${server.name}: ${verdict.text}`, {
            fix: "run the command by hand to see what the server says; perkbridge understands LuckPerms' and vanilla's English replies",
          });
        }
        // Sent, and nothing says it failed, but nothing confirms it either.
        server.health = { ...server.health, unverified: server.health.unverified + 1 };
        logger.warn(
          { ...context, reply: verdict.kind === "unrecognized" ? verdict.text : "" },
          "command sent but unverified: the server's reply does not confirm it",
        );
        return done(undefined);
      }
    }
  }

  async function apply(action: PerkAction): Promise<SyncResult> {
    const perk = action.perk;
    if (perk.target !== "minecraft") return failed(false, `perk ${perkKey(perk)} is not a minecraft perk`);
    const server = servers.get(perk.scope);
    if (!server) {
      return failed(false, `no minecraft server named ${JSON.stringify(perk.scope)} is configured`, {
        fix: "add the server to the minecraft target's servers, or correct the perk's server",
      });
    }
    if (perk.kind !== "group" && perk.kind !== "whitelist" && perk.kind !== "command") {
      return failed(false, `unknown minecraft perk kind ${JSON.stringify(perk.kind)}`, { fix: "use group, whitelist or command" });
    }
    const op: Op = perk.kind;
    const custom = stringParam(perk, action.type === "grant" ? "grant" : "revoke");
    let template: string;
    if (custom !== undefined) template = custom;
    else if (op === "group") template = action.type === "grant" ? server.commands.group_add : server.commands.group_remove;
    else if (op === "whitelist") template = action.type === "grant" ? server.commands.whitelist_add : server.commands.whitelist_remove;
    else if (action.type === "revoke") return { kind: "revoked" }; // a command perk without a revoke template has nothing to undo
    else return failed(false, `command perk ${perkKey(perk)} has no grant template`, { fix: "set params.grant on the perk" });

    const identity = action.identities.minecraft ?? {};
    const uuid = identity.uuid?.toLowerCase();
    const name = identity.name ?? (uuid === undefined ? undefined : learnedNames.get(uuid));
    const group = op === "group" ? perk.value : stringParam(perk, "group");
    const plan = stringParam(perk, "plan") ?? action.reason.split(" ")[0];
    const member = action.members[0];
    const values: PlaceholderValues = {
      ...(uuid === undefined ? {} : { uuid }),
      ...(name === undefined ? {} : { name }),
      ...(group === undefined ? {} : { group }),
      ...(plan === undefined || plan === "" ? {} : { plan }),
      ...(member === undefined ? {} : { member }),
    };
    const rendered = renderCommand(template, values);
    if (!rendered.ok) {
      if (rendered.problem === "missing" && rendered.placeholder === "name") {
        return {
          kind: "not-linked",
          reason: "Minecraft name not known yet: waits for minecraft_name in the member's metadata or for the player to be seen online",
        };
      }
      if (rendered.problem === "missing" && rendered.placeholder === "uuid") {
        return { kind: "not-linked", reason: "no Minecraft UUID linked to this member" };
      }
      logger.warn({ server: server.name, perk: perkKey(perk), action: action.id, reason: rendered.reason }, "command refused, nothing sent");
      const fix =
        rendered.problem === "template"
          ? "correct the perk's command template"
          : rendered.placeholder === "uuid" || rendered.placeholder === "name"
            ? "correct the member's minecraft_uuid / minecraft_name in the billing platform's metadata"
            : `provide a valid {${rendered.placeholder ?? "?"}} for this perk`;
      return failed(false, rendered.reason, { fix });
    }

    const onlineOnly = perk.params?.["online_only"] === true || perk.params?.["online_only"] === "true";
    if (onlineOnly) {
      const stale = server.polledAt === undefined || now() - server.polledAt >= (server.config.listIntervalMs ?? 30_000);
      if (stale) {
        const down = await ensureUp(server);
        if (down) return down;
        try {
          await refreshPlayers(server.name);
        } catch (error) {
          return failed(true, (error as Error).message);
        }
      }
      if (!isOnline(server, uuid, name)) return { kind: "target-missing", reason: "player offline" };
    }

    const down = await ensureUp(server);
    if (down) return down;
    const once = isOnce(perk);
    const reply = await send(server, rendered.command, once);
    if (typeof reply !== "string") return reply;
    return resultOf(server, action, op, custom !== undefined, values, classifyReply(reply));
  }

  async function preflightServer(server: ServerState): Promise<CheckResult[]> {
    const checks: CheckResult[] = [];
    const label = `minecraft ${server.name}`;
    const status = server.config.status;
    if (status) {
      try {
        const result = await pingStatus({ host: status.host, port: status.port, timeoutMs: server.config.statusTimeoutMs ?? 2000 });
        setHealth(server, { state: "up", version: result.version });
        checks.push({
          ok: true,
          name: `${label}: reachable at ${status.host}:${status.port}`,
          detail: `${result.version}, ${result.onlinePlayers}/${result.maxPlayers} online`,
        });
      } catch (error) {
        checks.push({
          ok: false,
          name: `${label}: reachable at ${status.host}:${status.port}`,
          detail: (error as Error).message,
          fix: "start the server, or correct the status host and port",
        });
      }
    }
    const rconName = `${label}: RCON login at ${server.client.address}`;
    try {
      await server.client.connect();
      checks.push({ ok: true, name: rconName });
    } catch (error) {
      const auth = error instanceof RconError && error.code === "ERR_RCON_AUTH";
      checks.push({
        ok: false,
        name: rconName,
        detail: (error as Error).message,
        fix: auth
          ? "set the configured RCON password to rcon.password from the server's server.properties"
          : "set enable-rcon=true and rcon.port in server.properties, and check host and port",
      });
      return checks;
    }
    if (server.config.luckperms === false) return checks;
    const lpWord = server.commands.group_info.split(" ")[0] ?? "lp";
    const info = await send(server, `${lpWord} info`, false);
    const infoVerdict = typeof info === "string" ? classifyReply(info) : undefined;
    if (infoVerdict?.kind === "failed") {
      checks.push({ ok: false, name: `${label}: LuckPerms present`, detail: infoVerdict.reason, fix: infoVerdict.fix ?? "install LuckPerms" });
      return checks;
    }
    checks.push({
      ok: typeof info === "string",
      name: `${label}: LuckPerms present`,
      ...(infoVerdict?.kind === "empty" ? { detail: "empty reply (LuckPerms runs commands asynchronously): not verified" } : {}),
    });
    for (const group of server.config.groups ?? []) {
      const name = `${label}: group ${group} exists`;
      const rendered = renderCommand(`${lpWord} group {group} info`, { group });
      if (!rendered.ok) {
        checks.push({ ok: false, name, detail: rendered.reason, fix: "correct the group name in the plan's perks" });
        continue;
      }
      const reply = await send(server, rendered.command, false);
      const verdict = typeof reply === "string" ? classifyReply(reply) : undefined;
      if (verdict?.kind === "failed") checks.push({ ok: false, name, detail: verdict.reason, fix: verdict.fix ?? `lp creategroup ${group}` });
      else if (verdict?.kind === "empty") checks.push({ ok: true, name, detail: "empty reply: not verified" });
      else checks.push({ ok: verdict !== undefined, name });
    }
    return checks;
  }

  return {
    name: "minecraft",
    async start() {
      for (const server of servers.values()) {
        const interval = server.config.listIntervalMs ?? 30_000;
        if (interval <= 0 || server.timer) continue;
        const poll = (): void => {
          refreshPlayers(server.name).catch((error: unknown) => {
            logger.debug({ server: server.name, err: (error as Error).message }, "player list poll failed");
          });
        };
        server.timer = setInterval(poll, interval);
        server.timer.unref();
        poll();
      }
    },
    async stop() {
      for (const server of servers.values()) {
        if (server.timer) clearInterval(server.timer);
        server.timer = undefined;
      }
      await Promise.all([...servers.values()].map((s) => s.client.close()));
    },
    async preflight() {
      const all = await Promise.all([...servers.values()].map((s) => preflightServer(s)));
      return all.flat();
    },
    apply,
    isOnce,
    onlinePlayers: (serverName) => servers.get(serverName)?.online ?? [],
    refreshPlayers,
    onPlayerOnline(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    health: (serverName) => servers.get(serverName)?.health,
    knownName: (uuid) => learnedNames.get(uuid.toLowerCase()),
  };
}
