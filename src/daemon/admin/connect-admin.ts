import { connect, type Socket } from "node:net";
import type { z } from "zod";
import { PerkbridgeError } from "../../core/errors.js";
import { StateLockedError } from "../store/state-lock.js";
import {
  adminMessageSchema,
  confirmResultSchema,
  retryResultSchema,
  statusReportSchema,
  syncReportSchema,
  type AdminMethod,
  type AdminSession,
  type OfflineAdminFactory,
  type ProgressListener,
} from "./admin-api.js";
import { readLines } from "./read-lines.js";

/** The daemon answered a request with an error; `code` is the daemon's (ERR_STATE_LOCKED, ERR_ADMIN_BAD_REQUEST, ...). */
export class AdminCallError extends PerkbridgeError {
  readonly method: AdminMethod;

  constructor(method: AdminMethod, code: string, message: string) {
    super(code.startsWith("ERR_") ? (code as `ERR_${string}`) : "ERR_ADMIN_REMOTE", message);
    this.method = method;
  }
}

/** What {@link connectAdmin} found at the socket path. */
export type AdminConnectResult =
  | { readonly kind: "connected"; readonly admin: AdminSession }
  /** Nothing listens there (no socket file, or one nobody accepts on): the daemon is not running. */
  | { readonly kind: "not-running"; readonly reason: string }
  /** Something is there but cannot be used (permission denied, no answer in time): do not fall back. */
  | { readonly kind: "unreachable"; readonly reason: string };

/** Options of {@link connectAdmin}. */
export interface ConnectAdminOptions {
  /** How long to wait for the connection; default 2 s. Requests themselves have no timeout: a sync may take long. */
  readonly timeoutMs?: number;
}

/** Connects to a daemon's admin socket; see {@link AdminConnectResult}. */
export function connectAdmin(path: string, options: ConnectAdminOptions = {}): Promise<AdminConnectResult> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  return new Promise((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ kind: "unreachable", reason: `no answer on the admin socket ${path} within ${timeoutMs} ms: is the daemon stuck?` });
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve({ kind: "connected", admin: createAdminClient(socket) });
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") resolve({ kind: "not-running", reason: `no admin socket at ${path}` });
      else if (code === "ECONNREFUSED") resolve({ kind: "not-running", reason: `nothing answers on the admin socket ${path}` });
      else if (code === "EACCES" || code === "EPERM") {
        resolve({ kind: "unreachable", reason: `permission denied on the admin socket ${path}: run this command as the user that runs the daemon` });
      } else resolve({ kind: "unreachable", reason: `cannot connect to the admin socket ${path} (${code ?? error.message})` });
    });
  });
}

interface PendingCall {
  readonly method: AdminMethod;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly progress: ProgressListener | undefined;
}

function createAdminClient(socket: Socket): AdminSession {
  const pending = new Map<number, PendingCall>();
  let nextId = 1;
  let failure: PerkbridgeError | undefined;

  const failAll = (error: PerkbridgeError): void => {
    failure ??= error;
    for (const call of pending.values()) call.reject(failure);
    pending.clear();
    socket.destroy();
  };

  readLines(socket, (line) => {
    if (line.trim() !== "") handleMessage(line);
  });
  socket.on("error", () => undefined); // `close` follows and says what matters
  socket.on("close", () => {
    failAll(new PerkbridgeError("ERR_ADMIN_DISCONNECTED", "the daemon closed the admin connection before answering (did it stop?)"));
  });

  function handleMessage(line: string): void {
    let parsed: z.ZodSafeParseResult<z.output<typeof adminMessageSchema>>;
    try {
      parsed = adminMessageSchema.safeParse(JSON.parse(line));
    } catch {
      parsed = adminMessageSchema.safeParse(undefined);
    }
    if (!parsed.success) {
      failAll(new PerkbridgeError("ERR_ADMIN_PROTOCOL", "the daemon sent something that is not an admin message: is it the same perkbridge version?"));
      return;
    }
    const message = parsed.data;
    if (message.id === null) {
      // An error about a request the daemon could not read at all; we only send readable ones.
      if ("error" in message) failAll(new PerkbridgeError("ERR_ADMIN_PROTOCOL", `the daemon refused a request: ${message.error.message}`));
      return;
    }
    const call = typeof message.id === "number" ? pending.get(message.id) : undefined;
    if (call === undefined || typeof message.id !== "number") return; // progress that lost the race with its result
    if ("progress" in message) {
      call.progress?.(message.progress.done, message.progress.total, message.progress.stage);
      return;
    }
    pending.delete(message.id);
    if ("error" in message) call.reject(new AdminCallError(call.method, message.error.code, message.error.message));
    else call.resolve(message.result);
  }

  function call<T>(method: AdminMethod, params: unknown, schema: z.ZodType<T>, progress?: ProgressListener): Promise<T> {
    if (failure !== undefined) return Promise.reject(failure);
    const id = nextId++;
    return new Promise<unknown>((resolve, reject) => {
      pending.set(id, { method, resolve, reject, progress });
      socket.write(JSON.stringify({ id, method, params }) + "\n");
    }).then((result) => {
      const checked = schema.safeParse(result);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        throw new PerkbridgeError(
          "ERR_ADMIN_PROTOCOL",
          `the daemon's answer to ${method} does not fit this perkbridge version` +
            (issue === undefined ? "" : ` (${issue.path.map(String).join(".") || "result"}: ${issue.message})`) +
            ": run the same version as the daemon",
        );
      }
      return checked.data;
    });
  }

  return {
    status: () => call("status", {}, statusReportSchema),
    sync: (options, progress) =>
      call("sync", { dryRun: options.dryRun, ...(options.member === undefined ? {} : { member: options.member }) }, syncReportSchema, progress),
    retry: (filter) => call("retry", filter, retryResultSchema),
    confirm: (options) => call("confirm", options, confirmResultSchema),
    close() {
      if (socket.destroyed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        socket.once("close", () => resolve());
        socket.end();
      });
    },
  };
}

/** How an operator command reaches the state: through the running daemon, or by opening it itself. */
export type OpenAdminResult =
  | { readonly ok: true; readonly session: AdminSession; readonly via: "daemon" | "state-dir" }
  | {
      readonly ok: false;
      /**
       * `unreachable`: a socket is there but unusable; `locked`: a live daemon holds the state but does
       * not answer; `no-offline`: the daemon is stopped and no offline opener was given.
       */
      readonly problem: "unreachable" | "locked" | "no-offline";
      /** One or two sentences for the operator, saying what to do. */
      readonly message: string;
    };

/** Options of {@link openAdminSession}. */
export interface OpenAdminOptions {
  readonly socketPath: string;
  readonly configPath: string;
  readonly openOffline?: OfflineAdminFactory;
  readonly timeoutMs?: number;
}

/**
 * Reaches the operator's commands: over the admin socket while the daemon runs, else through
 * `openOffline`, which opens the state directory under its lock. Other errors of `openOffline`
 * (a corrupt state directory, a bad config) are thrown.
 */
export async function openAdminSession(options: OpenAdminOptions): Promise<OpenAdminResult> {
  const connected = await connectAdmin(options.socketPath, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  if (connected.kind === "connected") return { ok: true, session: connected.admin, via: "daemon" };
  if (connected.kind === "unreachable") return { ok: false, problem: "unreachable", message: connected.reason };
  if (options.openOffline === undefined) {
    return {
      ok: false,
      problem: "no-offline",
      message: `the daemon is not running (${connected.reason}), and this build cannot open the state directory by itself: start the daemon with \`perkbridge start\``,
    };
  }
  try {
    return { ok: true, session: await options.openOffline(options.configPath), via: "state-dir" };
  } catch (error) {
    if (!(error instanceof StateLockedError)) throw error;
    return {
      ok: false,
      problem: "locked",
      message:
        `the daemon (pid ${error.pid}) holds the state directory but does not answer on its admin socket (${connected.reason}). ` +
        `It may still be starting, or its admin channel failed: check its log, or restart it. ` +
        `If no perkbridge is running, pid ${error.pid} belongs to another program now: delete ${error.lockFile} and try again.`,
    };
  }
}
