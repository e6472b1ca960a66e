// The server list ping of an emulated Minecraft server, served by minecraft-protocol's own
// createServer, so the client side is tested against the real protocol implementation.
import type { Server as NetServer } from "node:net";
import minecraftProtocol from "minecraft-protocol";
import type { MinecraftWorld } from "./minecraft-world.js";

/** Options of {@link createStatusEmulator}. */
export interface StatusEmulatorOptions {
  readonly world: MinecraftWorld;
  /** The version name shown in the server list; default `Paper 1.21.1`. */
  readonly versionName?: string;
  readonly motd?: string;
}

/** A running status endpoint. */
export interface StatusEmulator {
  readonly host: string;
  readonly port: number;
  /** Pings answered so far. */
  readonly pings: number;
  close(): Promise<void>;
}

/** Starts the status endpoint on 127.0.0.1, on an ephemeral port. */
export async function createStatusEmulator(options: StatusEmulatorOptions): Promise<StatusEmulator> {
  let pings = 0;
  const server = minecraftProtocol.createServer({
    host: "127.0.0.1",
    port: 0,
    "online-mode": false,
    motd: options.motd ?? "perkbridge emulator",
    maxPlayers: options.world.maxPlayers,
    hideErrors: true,
    beforePing: (response: { version: { name: string }; players: { online: number; sample: unknown[] } }) => {
      pings += 1;
      const online = options.world.onlinePlayers();
      response.version.name = options.versionName ?? "Paper 1.21.1";
      response.players.online = online.length;
      response.players.sample = online.slice(0, 12).map((p) => ({ name: p.name, id: p.uuid }));
      return response;
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", reject);
  });
  const socketServer = (server as unknown as { socketServer: NetServer }).socketServer;
  const address = socketServer.address();
  const port = address !== null && typeof address === "object" ? address.port : 0;
  return {
    host: "127.0.0.1",
    port,
    get pings() {
      return pings;
    },
    close: () =>
      new Promise<void>((resolve) => {
        socketServer.once("close", () => resolve());
        server.close();
      }),
  };
}
