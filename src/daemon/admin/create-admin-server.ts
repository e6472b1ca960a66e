import { chmod, lstat, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import type { z } from "zod";
import { PerkbridgeError } from "../../core/errors.js";
import type { Component } from "../create-daemon.js";
import type { Logger } from "../create-logger.js";
import {
  ADMIN_METHODS,
  MAX_ADMIN_LINE_BYTES,
  adminParamsSchemas,
  adminRequestSchema,
  type AdminApi,
  type AdminMessage,
  type AdminMethod,
  type AdminRequest,
  type ProgressListener,
} from "./admin-api.js";
import { readLines } from "./read-lines.js";

// sun_path is 108 bytes on Linux, 104 on macOS, the terminating NUL included; some libuv versions
// silently truncate a longer path and bind somewhere else.
const MAX_SOCKET_PATH_BYTES = process.platform === "linux" ? 107 : 103;

/** Options of {@link createAdminServer}. */
export interface AdminServerOptions {
  /** The socket's path: config `admin.socket`, by default `<state.dir>/admin.sock`. */
  readonly path: string;
  readonly api: AdminApi;
  readonly logger: Logger;
  /** How long start() waits for an answer on an existing socket file before calling it stale. Default 1 s. */
  readonly probeTimeoutMs?: number;
}

/** The admin channel: a Unix socket only the daemon's user can open. */
export interface AdminServer extends Component {
  readonly path: string;
  /**
   * Listens on `path` with mode 0600. A socket file left by a daemon that died is removed first;
   * one that a live process answers on stops start-up with ERR_ADMIN_IN_USE.
   */
  start(): Promise<void>;
  /** Closes every connection (requests in flight get no answer) and removes the socket file. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Serves an {@link AdminApi} to `perkbridge status | sync | retry | confirm` as newline-delimited
 * JSON (see admin-api.ts, Wire protocol). Never on the public listener: who can open the socket file
 * can run every operator command, so only the daemon's user can.
 */
export function createAdminServer(options: AdminServerOptions): AdminServer {
  const { path, api, logger } = options;
  const connections = new Set<Socket>();
  const server: Server = createServer((socket) => serveConnection(socket, api, logger, connections));
  let state: "new" | "listening" | "stopped" = "new";
  // The inode we bound, so stop() never removes a socket file some other process put there since.
  let boundIno: number | undefined;

  return {
    name: "admin",
    path,
    async start() {
      if (state !== "new") throw new PerkbridgeError("ERR_ADMIN_STATE", `the admin channel was already ${state}`);
      const dir = dirname(path);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await removeStaleSocket(path, options.probeTimeoutMs ?? 1_000);
      // A socket file is created by bind() with the process umask, and only then can it be chmod'ed.
      // Binding inside a fresh 0700 directory and renaming the finished socket into place leaves no
      // moment at which another user could connect, without touching the process-wide umask (which
      // would race with files the store creates on libuv's thread pool at the same time).
      const privateDir = await mkdtemp(join(dir, ".a"));
      const tempPath = join(privateDir, "s");
      for (const p of [path, tempPath]) {
        if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) {
          await rm(privateDir, { recursive: true, force: true });
          throw new PerkbridgeError(
            "ERR_ADMIN_LISTEN",
            `cannot open the admin socket ${path}: the path is too long for a Unix socket (limit ${MAX_SOCKET_PATH_BYTES} bytes); set admin.socket to a shorter path`,
          );
        }
      }
      try {
        await listen(server, tempPath);
        await chmod(tempPath, 0o600);
        await rename(tempPath, path);
        boundIno = (await lstat(path)).ino;
      } catch (error) {
        server.close();
        throw new PerkbridgeError("ERR_ADMIN_LISTEN", `cannot open the admin socket ${path}: ${errnoText(error)}`, { cause: error });
      } finally {
        await rm(privateDir, { recursive: true, force: true });
      }
      state = "listening";
      logger.debug({ path }, "admin channel listening");
    },
    async stop() {
      if (state !== "listening") {
        state = "stopped";
        return;
      }
      state = "stopped";
      for (const socket of connections) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        if ((await lstat(path)).ino === boundIno) await rm(path, { force: true });
      } catch (error) {
        if (errnoCode(error) !== "ENOENT") throw error;
      }
    },
  };
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once("error", onError);
    server.listen(path, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Removes a socket file nobody answers on; refuses to touch anything else. */
async function removeStaleSocket(path: string, timeoutMs: number): Promise<void> {
  try {
    const stat = await lstat(path);
    if (!stat.isSocket()) {
      throw new PerkbridgeError("ERR_ADMIN_SOCKET", `${path} exists and is not a socket: move it away, or set admin.socket to another path`);
    }
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return;
    throw error;
  }
  const probe = await probeSocket(path, timeoutMs);
  if (probe === "gone") return;
  if (probe === "answering") {
    throw new PerkbridgeError(
      "ERR_ADMIN_IN_USE",
      `another process answers on the admin socket ${path}: stop the other perkbridge, or set admin.socket to another path`,
    );
  }
  await rm(path, { force: true });
}

function probeSocket(path: string, timeoutMs: number): Promise<"answering" | "stale" | "gone"> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const done = (result: "answering" | "stale" | "gone"): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    // A process that accepts but is too busy to finish the handshake is still alive: leave its socket.
    const timer = setTimeout(() => done("answering"), timeoutMs);
    socket.once("connect", () => done("answering"));
    socket.once("error", (error) => {
      const code = errnoCode(error);
      if (code === "ECONNREFUSED") done("stale");
      else if (code === "ENOENT") done("gone");
      else {
        clearTimeout(timer);
        socket.destroy();
        reject(new PerkbridgeError("ERR_ADMIN_SOCKET", `cannot check the admin socket ${path}: ${errnoText(error)}`, { cause: error }));
      }
    });
  });
}

function serveConnection(socket: Socket, api: AdminApi, logger: Logger, connections: Set<Socket>): void {
  connections.add(socket);
  const send = (message: AdminMessage): void => {
    if (socket.writable) socket.write(JSON.stringify(message) + "\n");
  };
  readLines(socket, (line) => handleLine(line, api, logger, send, () => socket.writableNeedDrain), {
    // Characters, not bytes: near enough for a limit that only stops a runaway client.
    maxLength: MAX_ADMIN_LINE_BYTES,
    onTooLong: () => {
      send(errorReply(null, "ERR_ADMIN_BAD_REQUEST", `request line longer than ${MAX_ADMIN_LINE_BYTES} bytes`));
      socket.end();
    },
  });
  socket.on("error", (error) => logger.debug({ err: error }, "admin connection error"));
  socket.on("close", () => connections.delete(socket));
}

function handleLine(line: string, api: AdminApi, logger: Logger, send: (message: AdminMessage) => void, congested: () => boolean): void {
  const text = line.trim();
  if (text === "") return;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    send(errorReply(null, "ERR_ADMIN_BAD_REQUEST", "the request is not JSON: send one JSON object per line, {id, method, params}"));
    return;
  }
  const request = adminRequestSchema.safeParse(raw);
  if (!request.success) {
    send(errorReply(readableId(raw), "ERR_ADMIN_BAD_REQUEST", `not a request: ${describeIssues(request.error)} (expected {id, method, params})`));
    return;
  }
  const { id, method } = request.data;
  if (!isAdminMethod(method)) {
    send(errorReply(id, "ERR_ADMIN_UNKNOWN_METHOD", `unknown method "${method}": the admin channel knows ${ADMIN_METHODS.join(", ")}`));
    return;
  }
  logger.debug({ method }, "admin request");
  callMethod(api, method, request.data.params, createProgressSender(id, send, congested)).then(
    (result) => send({ id, result }),
    (error: unknown) => {
      if (error instanceof PerkbridgeError) {
        send(errorReply(id, error.code, error.message));
      } else {
        // Unexpected: its message may say anything, so the operator gets a pointer to the log instead.
        logger.error({ err: error, method }, "admin request failed");
        send(errorReply(id, "ERR_ADMIN_INTERNAL", `the daemon failed to run ${method}; see its log`));
      }
    },
  );
}

async function callMethod(api: AdminApi, method: AdminMethod, params: unknown, progress: ProgressListener): Promise<unknown> {
  switch (method) {
    case "status":
      parseParams(method, params);
      return api.status();
    case "sync": {
      const p = parseParams(method, params);
      return api.sync({ dryRun: p.dryRun, ...(p.member === undefined ? {} : { member: p.member }) }, progress);
    }
    case "retry": {
      const p = parseParams(method, params) ?? {};
      return api.retry({ ...(p.target === undefined ? {} : { target: p.target }), ...(p.member === undefined ? {} : { member: p.member }) });
    }
    case "confirm": {
      const p = parseParams(method, params);
      return api.confirm({ ...(p.ids === undefined ? {} : { ids: p.ids }), ...(p.all === undefined ? {} : { all: p.all }) });
    }
  }
}

function parseParams<M extends AdminMethod>(method: M, params: unknown): z.output<(typeof adminParamsSchemas)[M]> {
  const parsed = adminParamsSchemas[method].safeParse(params);
  if (!parsed.success) throw new PerkbridgeError("ERR_ADMIN_BAD_REQUEST", `invalid params for ${method}: ${describeIssues(parsed.error)}`);
  return parsed.data as z.output<(typeof adminParamsSchemas)[M]>;
}

/**
 * Progress of a sweep can come once per member: send about a thousand updates at most, always the
 * last, and skip them while the client reads slower than we write (the result must not queue behind them).
 */
function createProgressSender(id: AdminRequest["id"], send: (message: AdminMessage) => void, congested: () => boolean): ProgressListener {
  let step = "";
  return (done, total, stage) => {
    if (!Number.isSafeInteger(done) || !Number.isSafeInteger(total) || done < 0 || total < 0) return;
    const at = `${stage ?? ""}:${total}:${total > 0 ? Math.floor((done * 1000) / total) : Math.floor(done / 100)}`;
    const last = total > 0 && done >= total;
    if ((at === step && !last) || (congested() && !last)) return;
    step = at;
    send({ id, progress: { done, total, ...(stage === undefined ? {} : { stage }) } });
  };
}

function isAdminMethod(method: string): method is AdminMethod {
  return (ADMIN_METHODS as readonly string[]).includes(method);
}

function errorReply(id: AdminRequest["id"] | null, code: string, message: string): AdminMessage {
  return { id, error: { code, message } };
}

/** The request's id if it has a usable one, so even a bad request's error can be matched. */
function readableId(raw: unknown): AdminRequest["id"] | null {
  if (typeof raw !== "object" || raw === null || !("id" in raw)) return null;
  const id = raw.id;
  return (typeof id === "string" && id.length <= 100) || (typeof id === "number" && Number.isInteger(id)) ? id : null;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function errnoText(error: unknown): string {
  return errnoCode(error) ?? (error instanceof Error ? error.message : String(error));
}
