// An RCON server on loopback that behaves like a vanilla/Paper Minecraft server's:
// little-endian length, request id and type; login is type 3, a command type 2; a failed login
// (or a command before login) is answered with request id -1; an unknown type is answered with
// `Unknown request <type in hex>`; replies are split into packets of at most 4096 bytes.
//
// Like the real RconClient thread, it reads one packet per read of at most 1460 bytes and drops
// the connection when a read holds anything else, so a client that pipelines packets on one
// connection fails here as it would in production.
//
// Faults: refused connections, connections dropped after N commands (or instead of answering
// one), slow replies, and LuckPerms' async mode, in which `lp` commands answer with an empty
// reply and take effect a moment later (LuckPerms issues #1365, #3411).
import { createServer, type Server, type Socket } from "node:net";
import { createMinecraftWorld, type MinecraftWorld } from "./minecraft-world.js";

/** Scriptable misbehaviour; change the fields at any time. */
export interface RconFaults {
  /** Close each connection right after answering this many commands. */
  dropAfterCommands?: number;
  /** Close the connection instead of answering the N-th command received (1-based, all connections counted); it does not run. */
  dropOnCommand?: number;
  /** Wait this long before answering each command. */
  replyDelayMs: number;
  /** `lp` commands answer with an empty reply and run `luckpermsAsyncDelayMs` later. */
  luckpermsAsync: boolean;
  luckpermsAsyncDelayMs: number;
  /** Under async LuckPerms, still answer `lp user … parent info` (a server that captures async output). */
  luckpermsAsyncReadBack: boolean;
}

/** Options of {@link createRconEmulator}. */
export interface RconEmulatorOptions {
  readonly password: string;
  readonly world?: MinecraftWorld;
  /** Default 0: an ephemeral port. */
  readonly port?: number;
  readonly faults?: Partial<RconFaults>;
}

/** A running emulator. */
export interface RconEmulator {
  readonly host: string;
  readonly port: number;
  readonly world: MinecraftWorld;
  /** Every command received from an authenticated client, in order of arrival. */
  readonly commands: string[];
  readonly logins: { ok: number; refused: number };
  /** Reads that held more or less than one packet (a pipelining client). */
  readonly protocolViolations: number;
  readonly faults: RconFaults;
  /** Stops accepting connections (clients get ECONNREFUSED) and drops open ones, or listens again. */
  setRefusing(refusing: boolean): Promise<void>;
  /** Drops every open connection now. */
  dropConnections(): void;
  close(): Promise<void>;
}

const HOST = "127.0.0.1";
const MAX_READ = 1460;
const FRAGMENT = 4096;

function packet(id: number, type: number, body: Buffer): Buffer {
  const out = Buffer.alloc(14 + body.length);
  out.writeInt32LE(10 + body.length, 0);
  out.writeInt32LE(id, 4);
  out.writeInt32LE(type, 8);
  body.copy(out, 12);
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the emulator on 127.0.0.1. */
export async function createRconEmulator(options: RconEmulatorOptions): Promise<RconEmulator> {
  const world = options.world ?? createMinecraftWorld();
  const faults: RconFaults = {
    replyDelayMs: 0,
    luckpermsAsync: false,
    luckpermsAsyncDelayMs: 0,
    luckpermsAsyncReadBack: false,
    ...options.faults,
  };
  const commands: string[] = [];
  const logins = { ok: 0, refused: 0 };
  const sockets = new Set<Socket>();
  let violations = 0;
  let received = 0;
  let server: Server | undefined;
  let port = options.port ?? 0;

  function reply(socket: Socket, id: number, text: string): void {
    const bytes = Buffer.from(text, "utf8");
    let offset = 0;
    do {
      const part = bytes.subarray(offset, offset + FRAGMENT);
      socket.write(packet(id, 0, part));
      offset += FRAGMENT;
    } while (offset < bytes.length);
  }

  function runCommand(command: string): string {
    const head = command.trim().split(/ +/)[0]?.toLowerCase() ?? "";
    const isLuckPerms = ["lp", "luckperms", "lpv", "lpb"].includes(head);
    if (isLuckPerms && faults.luckpermsAsync) {
      const readBack = /\bparent\s+info\b/i.test(command);
      if (readBack && faults.luckpermsAsyncReadBack) return world.execute(command);
      setTimeout(() => world.execute(command), faults.luckpermsAsyncDelayMs);
      return "";
    }
    return world.execute(command);
  }

  function handle(socket: Socket): void {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let authed = false;
    let answered = 0;
    let chain = Promise.resolve();
    let closing = false;

    socket.on("data", (chunk: Buffer) => {
      if (closing) return;
      // One read, one packet: anything else ends the connection, as in vanilla's RconClient.
      if (chunk.length < 14 || chunk.length > MAX_READ || chunk.readInt32LE(0) !== chunk.length - 4) {
        violations += 1;
        socket.destroy();
        return;
      }
      const id = chunk.readInt32LE(4);
      const type = chunk.readInt32LE(8);
      const body = chunk.subarray(12, chunk.length - 2).toString("utf8").replace(/\0+$/, "");
      chain = chain.then(async () => {
        if (socket.destroyed) return;
        if (type === 3) {
          if (body !== "" && body === options.password) {
            authed = true;
            logins.ok += 1;
            socket.write(packet(id, 2, Buffer.alloc(0)));
          } else {
            logins.refused += 1;
            socket.write(packet(-1, 2, Buffer.alloc(0)));
          }
          return;
        }
        if (type === 2) {
          if (!authed) {
            socket.write(packet(-1, 2, Buffer.alloc(0)));
            return;
          }
          received += 1;
          commands.push(body);
          if (faults.dropOnCommand !== undefined && received === faults.dropOnCommand) {
            socket.destroy();
            return;
          }
          if (faults.replyDelayMs > 0) await sleep(faults.replyDelayMs);
          if (socket.destroyed) return;
          reply(socket, id, runCommand(body));
          answered += 1;
          if (faults.dropAfterCommands !== undefined && answered >= faults.dropAfterCommands) {
            // Like a closed Java socket: flush what was written, read nothing more.
            closing = true;
            socket.end(() => socket.destroy());
          }
          return;
        }
        reply(socket, id, `Unknown request ${type.toString(16)}`);
      });
    });
  }

  async function listen(): Promise<void> {
    const next = createServer(handle);
    await new Promise<void>((resolve, reject) => {
      next.once("error", reject);
      next.listen(port, HOST, () => {
        next.off("error", reject);
        resolve();
      });
    });
    const address = next.address();
    if (address !== null && typeof address === "object") port = address.port;
    server = next;
  }

  async function stopListening(): Promise<void> {
    const current = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
  }

  await listen();

  return {
    host: HOST,
    get port() {
      return port;
    },
    world,
    commands,
    logins,
    get protocolViolations() {
      return violations;
    },
    faults,
    async setRefusing(refusing) {
      if (refusing && server) await stopListening();
      else if (!refusing && !server) await listen();
    },
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    close: stopListening,
  };
}
