// Server List Ping through minecraft-protocol's own client: tells whether a server is up and
// which version it runs, without logging in and without RCON.
import type MinecraftProtocol from "minecraft-protocol";
import { PerkbridgeError } from "../../core/errors.js";

/**
 * minecraft-protocol, loaded by the first ping: it weighs about 0.3 s and 30 MB, and a server
 * without a `status` section never pings. The module system keeps it after the first load.
 */
async function loadProtocol(): Promise<typeof MinecraftProtocol> {
  // A CommonJS module: its exports arrive as the default export of the dynamic import.
  return ((await import("minecraft-protocol")) as unknown as { default: typeof MinecraftProtocol }).default;
}

/** What a server says about itself in the server list. */
export interface ServerStatus {
  /** Version name as the server reports it, e.g. `Paper 1.21.1` or `1.21.1`. */
  readonly version: string;
  readonly protocol: number;
  readonly onlinePlayers: number;
  readonly maxPlayers: number;
  readonly latencyMs: number;
}

/** Options of {@link pingStatus}. */
export interface StatusPingOptions {
  readonly host: string;
  readonly port: number;
  /** Give up after this long; default 3000. */
  readonly timeoutMs?: number;
}

/** Pings a server; rejects with `ERR_MINECRAFT_STATUS` (naming host:port) when it does not answer. */
export async function pingStatus(options: StatusPingOptions): Promise<ServerStatus> {
  const address = `${options.host}:${options.port}`;
  const timeoutMs = options.timeoutMs ?? 3000;
  let timer: NodeJS.Timeout | undefined;
  const minecraftProtocol = await loadProtocol();
  try {
    const result = await Promise.race([
      minecraftProtocol.ping({ host: options.host, port: options.port, closeTimeout: timeoutMs, noPongTimeout: timeoutMs }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    if ("players" in result) {
      return {
        version: result.version.name,
        protocol: result.version.protocol,
        onlinePlayers: result.players.online,
        maxPlayers: result.players.max,
        latencyMs: result.latency,
      };
    }
    // Pre-1.7 servers answer the legacy ping.
    const legacy = result as { version: string; protocol: number; playerCount: number; maxPlayers: number };
    return {
      version: String(legacy.version),
      protocol: legacy.protocol,
      onlinePlayers: legacy.playerCount,
      maxPlayers: legacy.maxPlayers,
      latencyMs: 0,
    };
  } catch (error) {
    const detail = error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error);
    throw new PerkbridgeError("ERR_MINECRAFT_STATUS", `status ping to ${address} failed (${detail})`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
