// A small RCON client of our own over node:net.
//
// Why not a library: of those evaluated on this machine, rcon-client returns only the first
// fragment of a reply longer than one packet and says it is unmaintained, rcon-srcds times out
// on parallel commands and long replies, and minecraft-server-util's run() resolves to a request
// id rather than the reply. The protocol is a dozen lines; owning it lets us get the two hard
// parts right:
//
// - The vanilla server (and Paper/Spigot, which keep its RconClient) reads at most 1460 bytes per
//   read() and drops the connection unless that read is exactly one packet. Two packets written
//   back to back can arrive in one read, so each connection has at most one packet in flight:
//   commands on one connection are strictly serial, and parallelism comes from a small pool of
//   connections instead of pipelining.
// - A reply longer than 4096 bytes arrives in several packets with nothing marking the last.
//   A fragment shorter than 4096 bytes is always the last (vanilla splits at 4096 characters,
//   which is at least 4096 bytes). When a full-size fragment arrives, the command has been read
//   by the server, so we send a packet of an invalid type (wiki.vg RCON, "Fragmentation"); the
//   server answers it (`Unknown request c8`) only after the last fragment of the command.
//
// The password never appears in an error or log line: errors name host:port only.
import { Socket } from "node:net";
import { PerkbridgeError } from "../../core/errors.js";
import type { Clock } from "../../core/ports.js";

const TYPE_RESPONSE = 0;
const TYPE_COMMAND = 2;
const TYPE_AUTH_RESPONSE = 2;
const TYPE_LOGIN = 3;
/** An invalid request type, used as an end-of-reply sentinel. */
const TYPE_SENTINEL = 200;
/** Largest packet the vanilla server reads (its buffer is 1460 bytes). */
export const MAX_REQUEST_PACKET_BYTES = 1460;
const FRAGMENT_BYTES = 4096;

/** Codes of {@link RconError}. */
export type RconErrorCode =
  | "ERR_RCON_UNREACHABLE"
  | "ERR_RCON_AUTH"
  | "ERR_RCON_TIMEOUT"
  | "ERR_RCON_CLOSED"
  | "ERR_RCON_COMMAND_TOO_LONG"
  | "ERR_RCON_PROTOCOL"
  | "ERR_RCON_STOPPED";

/** An RCON failure. `sent` says whether the command may have reached the server. */
export class RconError extends PerkbridgeError {
  declare readonly code: RconErrorCode;
  /** `host:port`, never with the password. */
  readonly address: string;
  /** The command was written to the server, so it may have run even though no reply came. */
  readonly sent: boolean;
  /** When the client will try to connect again (backoff), for retry scheduling. */
  readonly retryAfterMs?: number;

  constructor(
    code: RconErrorCode,
    address: string,
    message: string,
    options: { cause?: unknown; sent?: boolean; retryAfterMs?: number } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.address = address;
    this.sent = options.sent ?? false;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** Options of {@link createRconClient}. */
export interface RconClientOptions {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** Per command, from write to last fragment; default 5000. */
  readonly commandTimeoutMs?: number;
  /** Default 3000. */
  readonly connectTimeoutMs?: number;
  /** Connections to open at most; each runs one command at a time. Default 1. */
  readonly connections?: number;
  /** Delay before the n-th consecutive reconnect attempt (n ≥ 1); default 500 ms doubling to 30 s. */
  readonly backoff?: (attempt: number) => number;
  readonly clock?: Clock;
}

/** Options of one command. */
export interface CommandOptions {
  /**
   * The command may run twice with the same effect; when the connection drops before any reply,
   * it is sent once more on a fresh connection. Never set this for `once` commands.
   */
  readonly idempotent?: boolean;
}

/** A connection pool to one server's RCON. */
export interface RconClient {
  /** `host:port`. */
  readonly address: string;
  /** Runs a command and resolves with its whole reply (all fragments). Rejects with {@link RconError}. */
  command(command: string, options?: CommandOptions): Promise<string>;
  /** Opens and logs in one connection now (preflight); rejects with {@link RconError}. */
  connect(): Promise<void>;
  /** Closes every connection; pending commands reject with `ERR_RCON_STOPPED`. */
  close(): Promise<void>;
}

/** Default backoff: 500 ms doubling, capped at 30 s. */
export function defaultRconBackoff(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));
}

/** Encodes one RCON packet: little-endian length, id, type, ASCII/UTF-8 body, two NULs. */
export function encodeRconPacket(id: number, type: number, body: string): Buffer {
  const payload = Buffer.from(body, "utf8");
  const packet = Buffer.alloc(14 + payload.length);
  packet.writeInt32LE(10 + payload.length, 0);
  packet.writeInt32LE(id, 4);
  packet.writeInt32LE(type, 8);
  payload.copy(packet, 12);
  return packet;
}

interface Packet {
  readonly id: number;
  readonly type: number;
  readonly body: Buffer;
}

interface Job {
  readonly command: string;
  readonly idempotent: boolean;
  attempts: number;
  resolve(reply: string): void;
  reject(error: RconError): void;
}

interface InFlight {
  readonly id: number;
  sentinelId: number | undefined;
  readonly fragments: Buffer[];
  readonly timer: NodeJS.Timeout;
  readonly job: Job;
  replied: boolean;
}

/** Creates a client; it connects lazily on the first command and reconnects with backoff. */
export function createRconClient(options: RconClientOptions): RconClient {
  const address = `${options.host}:${options.port}`;
  const commandTimeoutMs = options.commandTimeoutMs ?? 5000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  const poolSize = Math.max(1, options.connections ?? 1);
  const backoff = options.backoff ?? defaultRconBackoff;
  const now = (): number => (options.clock ?? Date).now();

  let nextId = 1;
  const newId = (): number => {
    nextId = nextId >= 0x7ffffff0 ? 1 : nextId + 1;
    return nextId;
  };

  let failures = 0;
  let notBefore = 0;
  let lastFailure: RconError | undefined;
  let stopped = false;
  const queue: Job[] = [];

  const connectError = (cause: unknown): RconError => {
    const detail = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause);
    return new RconError("ERR_RCON_UNREACHABLE", address, `RCON at ${address} is unreachable (${detail})`, { cause });
  };

  class Connection {
    socket: Socket | undefined;
    buffer: Buffer = Buffer.alloc(0);
    busy = false;
    inFlight: InFlight | undefined;
    pendingLogin: { id: number; resolve(): void; reject(e: RconError): void } | undefined;

    get open(): boolean {
      return this.socket !== undefined && !this.socket.destroyed && this.socket.writable;
    }

    async login(): Promise<void> {
      const socket = new Socket();
      socket.setNoDelay(true);
      this.socket = socket;
      this.buffer = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        if (this.socket === socket) this.onData(chunk);
      });
      await new Promise<void>((resolve, reject) => {
        const fail = (e: RconError): void => {
          clearTimeout(timer);
          socket.off("error", onError);
          socket.off("close", onEarlyClose);
          this.pendingLogin = undefined;
          socket.destroy();
          reject(e);
        };
        const onError = (error: Error): void => fail(connectError(error));
        const onEarlyClose = (): void => fail(connectError(new Error("connection closed during login")));
        const timer = setTimeout(() => fail(connectError(new Error(`no answer within ${connectTimeoutMs} ms`))), connectTimeoutMs);
        socket.on("error", onError);
        socket.on("close", onEarlyClose);
        socket.connect(options.port, options.host, () => {
          const id = newId();
          this.pendingLogin = {
            id,
            resolve: () => {
              clearTimeout(timer);
              this.pendingLogin = undefined;
              socket.off("error", onError);
              socket.off("close", onEarlyClose);
              // Errors surface as 'close', handled there.
              socket.on("error", () => undefined);
              socket.on("close", () => this.onClose(socket));
              resolve();
            },
            reject: fail,
          };
          socket.write(encodeRconPacket(id, TYPE_LOGIN, options.password));
        });
      });
    }

    onData(chunk: Buffer): void {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 4) {
        const length = this.buffer.readInt32LE(0);
        if (length < 10 || length > 1_048_576) {
          this.socket?.destroy(new Error(`bad packet length ${length}`));
          return;
        }
        if (this.buffer.length < 4 + length) return;
        const packet: Packet = {
          id: this.buffer.readInt32LE(4),
          type: this.buffer.readInt32LE(8),
          body: this.buffer.subarray(12, 4 + length - 2),
        };
        this.buffer = this.buffer.subarray(4 + length);
        this.onPacket(packet);
      }
    }

    onPacket(packet: Packet): void {
      const login = this.pendingLogin;
      if (login) {
        // Source servers send an empty RESPONSE before the AUTH_RESPONSE; only the latter counts.
        if (packet.type !== TYPE_AUTH_RESPONSE) return;
        if (packet.id === login.id) login.resolve();
        else if (packet.id === -1) {
          login.reject(
            new RconError(
              "ERR_RCON_AUTH",
              address,
              `RCON at ${address} refused the password: set the configured password to rcon.password from the server's server.properties`,
            ),
          );
        }
        return;
      }
      const flight = this.inFlight;
      if (!flight) return;
      if (packet.id === -1) {
        // The server forgot our login; a fresh connection logs in again.
        this.socket?.destroy();
        this.finish(new RconError("ERR_RCON_AUTH", address, `RCON at ${address} no longer accepts this session's login`, { sent: true }));
        return;
      }
      if (packet.id === flight.id && packet.type === TYPE_RESPONSE) {
        flight.replied = true;
        flight.fragments.push(Buffer.from(packet.body));
        if (flight.sentinelId !== undefined) return;
        if (packet.body.length < FRAGMENT_BYTES) {
          this.finish(Buffer.concat(flight.fragments).toString("utf8"));
          return;
        }
        // A full fragment: more may follow. The server has consumed our command by now, so the
        // sentinel arrives in a read of its own.
        flight.sentinelId = newId();
        this.socket?.write(encodeRconPacket(flight.sentinelId, TYPE_SENTINEL, ""));
        return;
      }
      if (flight.sentinelId !== undefined && packet.id === flight.sentinelId) {
        this.finish(Buffer.concat(flight.fragments).toString("utf8"));
      }
      // Anything else is a late answer to a command that already timed out: ignore it.
    }

    finish(outcome: string | RconError): void {
      const flight = this.inFlight;
      if (!flight) return;
      clearTimeout(flight.timer);
      this.inFlight = undefined;
      if (typeof outcome === "string") flight.job.resolve(outcome);
      else flight.job.reject(outcome);
      this.busy = false;
      pump();
    }

    onClose(socket: Socket): void {
      if (this.socket !== socket) return;
      const flight = this.inFlight;
      this.socket = undefined;
      if (!flight) return;
      clearTimeout(flight.timer);
      this.inFlight = undefined;
      this.busy = false;
      const job = flight.job;
      if (!flight.replied && job.idempotent && job.attempts < 2 && !stopped) {
        // Dropped before any answer: an idempotent command may simply be sent again.
        queue.unshift(job);
      } else {
        job.reject(
          new RconError("ERR_RCON_CLOSED", address, `RCON at ${address} closed the connection before the reply was complete`, {
            sent: true,
          }),
        );
      }
      pump();
    }

    async run(job: Job): Promise<void> {
      this.busy = true;
      if (!this.open) {
        const wait = notBefore - now();
        if (wait > 0) {
          // Within the backoff window: fail fast with the reason of the last attempt.
          this.busy = false;
          const code = lastFailure?.code ?? "ERR_RCON_UNREACHABLE";
          const reason = lastFailure?.message ?? `RCON at ${address} is unreachable`;
          job.reject(new RconError(code, address, `${reason}; next attempt in ${wait} ms`, { retryAfterMs: wait }));
          pump();
          return;
        }
        try {
          await this.login();
          failures = 0;
          notBefore = 0;
        } catch (error) {
          failures += 1;
          const delay = backoff(failures);
          notBefore = now() + delay;
          this.busy = false;
          const e = error as RconError;
          lastFailure = e;
          job.reject(new RconError(e.code, address, e.message, { cause: e.cause, retryAfterMs: delay }));
          pump();
          return;
        }
        if (stopped) {
          this.socket?.destroy();
          this.busy = false;
          job.reject(new RconError("ERR_RCON_STOPPED", address, `RCON client for ${address} is closed`));
          return;
        }
      }
      job.attempts += 1;
      const id = newId();
      const timer = setTimeout(() => {
        // The reply may still come, late; a fresh connection keeps ids and replies in step.
        const flight = this.inFlight;
        this.inFlight = undefined;
        this.busy = false;
        this.socket?.destroy();
        flight?.job.reject(
          new RconError("ERR_RCON_TIMEOUT", address, `RCON at ${address} did not answer within ${commandTimeoutMs} ms`, { sent: true }),
        );
        pump();
      }, commandTimeoutMs);
      this.inFlight = { id, sentinelId: undefined, fragments: [], timer, job, replied: false };
      this.socket?.write(encodeRconPacket(id, TYPE_COMMAND, job.command));
    }
  }

  const pool: Connection[] = [];

  function pump(): void {
    while (queue.length > 0) {
      let connection = pool.find((c) => !c.busy && c.open) ?? pool.find((c) => !c.busy);
      if (!connection && pool.length < poolSize) {
        connection = new Connection();
        pool.push(connection);
      }
      if (!connection) return;
      const job = queue.shift() as Job;
      void connection.run(job);
    }
  }

  return {
    address,
    command(command, commandOptions = {}) {
      if (stopped) return Promise.reject(new RconError("ERR_RCON_STOPPED", address, `RCON client for ${address} is closed`));
      if (encodeRconPacket(0, TYPE_COMMAND, command).length > MAX_REQUEST_PACKET_BYTES) {
        return Promise.reject(
          new RconError(
            "ERR_RCON_COMMAND_TOO_LONG",
            address,
            `command is longer than the ${MAX_REQUEST_PACKET_BYTES - 14} bytes a Minecraft server reads in one RCON packet`,
          ),
        );
      }
      return new Promise<string>((resolve, reject) => {
        queue.push({ command, idempotent: commandOptions.idempotent ?? false, attempts: 0, resolve, reject });
        pump();
      });
    },
    async connect() {
      const connection = pool.find((c) => c.open);
      if (connection) return;
      const probe = new Connection();
      try {
        await probe.login();
        failures = 0;
        notBefore = 0;
      } finally {
        if (pool.length < poolSize && probe.open) pool.push(probe);
        else probe.socket?.destroy();
      }
    },
    async close() {
      stopped = true;
      for (const job of queue.splice(0)) {
        job.reject(new RconError("ERR_RCON_STOPPED", address, `RCON client for ${address} is closed`));
      }
      await Promise.all(
        pool.map(
          (c) =>
            new Promise<void>((resolve) => {
              const socket = c.socket;
              if (c.inFlight) {
                clearTimeout(c.inFlight.timer);
                c.inFlight.job.reject(new RconError("ERR_RCON_STOPPED", address, `RCON client for ${address} is closed`, { sent: true }));
                c.inFlight = undefined;
              }
              if (!socket || socket.destroyed) return resolve();
              socket.once("close", () => resolve());
              socket.destroy();
            }),
        ),
      );
    },
  };
}
