import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import {
  ADMINISTRATOR,
  MANAGE_ROLES,
  compareSnowflakes,
  guildJson,
  memberJson,
  roleJson,
  userJson,
  type EmulatedMember,
  type EmulatedRole,
  type EmulatedUser,
} from "./discord-payloads.js";

export type { EmulatedRole, EmulatedUser } from "./discord-payloads.js";

/** A guild as a test describes it. The @everyone role (id = guild id) is added when missing. */
export interface EmulatedGuildInit {
  readonly id: string;
  readonly name: string;
  readonly ownerId: string;
  readonly roles: readonly EmulatedRole[];
  readonly members: readonly { readonly user: EmulatedUser; readonly roles: readonly string[] }[];
  /** Roles of the bot's own member in this guild. */
  readonly botMemberRoles: readonly string[];
}

export interface DiscordEmulatorOptions {
  readonly botToken: string;
  readonly botUser?: { readonly id: string; readonly username: string };
  readonly guilds: readonly EmulatedGuildInit[];
  /** Privileged intents enabled in the (emulated) Developer Portal; the Server Members intent defaults to on. */
  readonly privilegedIntents?: { readonly guildMembers: boolean };
  readonly heartbeatIntervalMs?: number;
}

/** One REST request the emulator received. */
export interface DiscordCall {
  readonly method: string;
  /** Path below `/api/v10`, without the query. */
  readonly path: string;
  readonly status: number;
  /** When the request reached the emulator: epoch ms with sub-millisecond precision (latency benches). */
  readonly at: number;
  /** The decoded `X-Audit-Log-Reason` header, when sent. */
  readonly auditLogReason?: string;
  readonly body?: unknown;
}

/** What the bot answered to an interaction (the body of its callback). */
export interface InteractionReply {
  readonly type: number;
  readonly data?: { readonly content?: string; readonly flags?: number } & Record<string, unknown>;
}

export interface DiscordEmulator {
  /** Base URL; discord.js takes `rest: { api: url + "/api" }`. */
  readonly url: string;
  readonly gatewayUrl: string;
  readonly calls: readonly DiscordCall[];
  /** Empties the calls log (long benchmarks, so the log does not count as memory of the code under test). */
  clearCalls(): void;
  /** Commands registered per guild (`"global"` for global commands), by name. */
  commands(guildId: string | "global"): readonly string[];
  start(): Promise<void>;
  /** Closes the listener, the gateway sockets and every open connection. */
  close(): Promise<void>;
  memberRoles(guildId: string, userId: string): readonly string[] | undefined;
  /** Number of open, identified gateway sessions. */
  readonly sessions: number;
  addMember(guildId: string, user: EmulatedUser, roles?: readonly string[]): void;
  removeMember(guildId: string, userId: string): void;
  /** A human edits a member's roles in the Discord client. */
  setMemberRoles(guildId: string, userId: string, roles: readonly string[]): void;
  /** A human edits a role in Server Settings → Roles. */
  updateRole(guildId: string, roleId: string, patch: { position?: number; permissions?: string | number | bigint }): void;
  /** A user runs a slash command; resolves with the bot's callback. */
  sendInteraction(guildId: string, userId: string, commandName: string, timeoutMs?: number): Promise<InteractionReply>;
  /** The next `count` REST requests answer 429 with this retry-after. */
  rateLimitNext(count: number, retryAfterSec: number, global?: boolean): void;
  /** The next `count` REST requests answer this 5xx status. */
  failNext(count: number, status?: number): void;
}

interface GuildState {
  readonly id: string;
  readonly name: string;
  readonly ownerId: string;
  readonly roles: Map<string, EmulatedRole>;
  readonly members: Map<string, EmulatedMember>;
  readonly commands: Map<string, Record<string, unknown>>;
}

interface Session {
  readonly socket: WebSocket;
  identified: boolean;
  intents: number;
  seq: number;
  readonly sessionId: string;
}

interface PendingInteraction {
  readonly token: string;
  replied: boolean;
  resolve(reply: InteractionReply): void;
}

class RestError {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly message: string,
  ) {}
}

/** Gateway intents that gate dispatches (https://discord.com/developers/docs/events/gateway#gateway-intents). */
const GUILD_MEMBERS_INTENT = 1 << 1;
const GUILDS_INTENT = 1 << 0;
const LARGE_THRESHOLD = 50;

const unknownMember = (): RestError => new RestError(404, 10007, "Unknown Member");
const unknownRole = (): RestError => new RestError(404, 10011, "Unknown Role");
const unknownGuild = (): RestError => new RestError(404, 10004, "Unknown Guild");
const missingPermissions = (): RestError => new RestError(403, 50013, "Missing Permissions");

let snowflakeCounter = 0n;
function nextSnowflake(): string {
  snowflakeCounter += 1n;
  return ((BigInt(Date.now() - 1420070400000) << 22n) + snowflakeCounter).toString();
}

/**
 * A Discord API on 127.0.0.1 that the real discord.js client logs into:
 * REST under `/api/v10` and the gateway WebSocket (uncompressed JSON, one
 * shard). It keeps each member's roles, answers role edits with Discord's
 * permission and hierarchy checks, and emits the gateway events a change causes.
 */
export function createDiscordEmulator(options: DiscordEmulatorOptions): DiscordEmulator {
  const botUser: EmulatedUser = { id: options.botUser?.id ?? "900000000000000001", username: options.botUser?.username ?? "perkbridge", bot: true };
  const applicationId = botUser.id;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 41_250;
  const guildMembersAllowed = options.privilegedIntents?.guildMembers ?? true;
  const guilds = new Map<string, GuildState>();
  const globalCommands = new Map<string, Record<string, unknown>>();
  const calls: DiscordCall[] = [];
  const sessions = new Set<Session>();
  const interactions = new Map<string, PendingInteraction>();
  const faults: { status: number; retryAfterSec: number; global: boolean }[] = [];
  const joinedAt = new Date().toISOString();

  for (const init of options.guilds) {
    const roles = new Map<string, EmulatedRole>();
    if (!init.roles.some((role) => role.id === init.id)) {
      roles.set(init.id, { id: init.id, name: "@everyone", position: 0, permissions: "1071698660929" });
    }
    for (const role of init.roles) roles.set(role.id, { ...role });
    const members = new Map<string, EmulatedMember>();
    for (const member of init.members) members.set(member.user.id, { user: member.user, roles: [...member.roles], joinedAt });
    members.set(botUser.id, { user: botUser, roles: [...init.botMemberRoles], joinedAt });
    guilds.set(init.id, { id: init.id, name: init.name, ownerId: init.ownerId, roles, members, commands: new Map() });
  }

  let baseUrl = "";
  let gatewayUrl = "";
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void handleRest(req, res);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (!(req.url ?? "").startsWith("/gateway")) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onGatewayConnection(ws));
  });

  function guildOf(guildId: string): GuildState {
    const guild = guilds.get(guildId);
    if (!guild) throw new Error(`emulator: no guild ${guildId}`);
    return guild;
  }

  // ---- gateway ---------------------------------------------------------

  function send(session: Session, payload: Record<string, unknown>): void {
    if (session.socket.readyState === session.socket.OPEN) session.socket.send(JSON.stringify(payload));
  }

  function dispatch(session: Session, event: string, data: unknown): void {
    session.seq += 1;
    send(session, { op: 0, t: event, s: session.seq, d: data });
  }

  function broadcast(event: string, data: unknown, requiredIntent: number): void {
    for (const session of sessions) {
      if (session.identified && (requiredIntent === 0 || (session.intents & requiredIntent) !== 0)) dispatch(session, event, data);
    }
  }

  function guildCreatePayload(guild: GuildState): Record<string, unknown> {
    const large = guild.members.size > LARGE_THRESHOLD;
    // Like Discord, a large guild sends only the bot's own member; the rest are fetched on demand.
    const members = large ? [guild.members.get(botUser.id)].filter((m) => m !== undefined) : [...guild.members.values()];
    return {
      ...guildJson({ ...guild, roles: guild.roles.values() }),
      joined_at: joinedAt,
      large,
      unavailable: false,
      member_count: guild.members.size,
      members: members.map(memberJson),
      channels: [],
      threads: [],
      presences: [],
      voice_states: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  function onGatewayConnection(socket: WebSocket): void {
    const session: Session = { socket, identified: false, intents: 0, seq: 0, sessionId: randomBytes(16).toString("hex") };
    sessions.add(session);
    socket.on("close", () => sessions.delete(session));
    socket.on("message", (raw) => {
      let payload: { op?: unknown; d?: unknown };
      try {
        payload = JSON.parse(String(raw)) as { op?: unknown; d?: unknown };
      } catch {
        socket.close(4002, "Error while decoding payload.");
        return;
      }
      onGatewayPayload(session, payload);
    });
    send(session, { op: 10, d: { heartbeat_interval: heartbeatIntervalMs } });
  }

  function onGatewayPayload(session: Session, payload: { op?: unknown; d?: unknown }): void {
    const d = (typeof payload.d === "object" && payload.d !== null ? payload.d : {}) as Record<string, unknown>;
    switch (payload.op) {
      case 1:
        send(session, { op: 11 });
        return;
      case 2: {
        if (d["token"] !== options.botToken) {
          session.socket.close(4004, "Authentication failed.");
          return;
        }
        const intents = typeof d["intents"] === "number" ? d["intents"] : 0;
        if ((intents & GUILD_MEMBERS_INTENT) !== 0 && !guildMembersAllowed) {
          session.socket.close(4014, "Disallowed intent(s).");
          return;
        }
        session.identified = true;
        session.intents = intents;
        dispatch(session, "READY", {
          v: 10,
          user: { ...userJson(botUser), bot: true, verified: true, mfa_enabled: false, flags: 0 },
          guilds: [...guilds.keys()].map((id) => ({ id, unavailable: true })),
          session_id: session.sessionId,
          resume_gateway_url: gatewayUrl,
          shard: [0, 1],
          application: { id: applicationId, flags: 0 },
          private_channels: [],
          relationships: [],
          user_settings: {},
          guild_join_requests: [],
          geo_ordered_rtc_regions: [],
        });
        // Discord's gotcha: discord.js waits for a GUILD_CREATE of every guild READY listed.
        if ((intents & GUILDS_INTENT) !== 0) for (const guild of guilds.values()) dispatch(session, "GUILD_CREATE", guildCreatePayload(guild));
        return;
      }
      case 6:
        // Sessions are not kept across connections: ask the client to identify afresh.
        send(session, { op: 9, d: false });
        return;
      default:
        return;
    }
  }

  // ---- state changes ---------------------------------------------------

  function emitMemberUpdate(guild: GuildState, member: EmulatedMember): void {
    broadcast("GUILD_MEMBER_UPDATE", { guild_id: guild.id, ...memberJson(member) }, GUILD_MEMBERS_INTENT);
  }

  function botPermissions(guild: GuildState): { permissions: bigint; highest: number; owner: boolean } {
    const member = guild.members.get(botUser.id);
    let permissions = BigInt(guild.roles.get(guild.id)?.permissions ?? 0);
    let highest = 0;
    for (const roleId of member?.roles ?? []) {
      const role = guild.roles.get(roleId);
      if (!role) continue;
      permissions |= BigInt(role.permissions);
      highest = Math.max(highest, role.position);
    }
    return { permissions, highest, owner: guild.ownerId === botUser.id };
  }

  function changeRole(guildId: string, userId: string, roleId: string, add: boolean): void {
    const guild = guilds.get(guildId);
    if (!guild) throw unknownGuild();
    const bot = botPermissions(guild);
    const canManage = bot.owner || (bot.permissions & (ADMINISTRATOR | MANAGE_ROLES)) !== 0n;
    if (!canManage) throw missingPermissions();
    const role = guild.roles.get(roleId);
    if (!role) throw unknownRole();
    const member = guild.members.get(userId);
    if (!member) throw unknownMember();
    if (role.managed === true || role.id === guild.id || (!bot.owner && role.position >= bot.highest)) throw missingPermissions();
    const has = member.roles.includes(roleId);
    if (add === has) return;
    member.roles = add ? [...member.roles, roleId] : member.roles.filter((id) => id !== roleId);
    emitMemberUpdate(guild, member);
  }

  // ---- REST ------------------------------------------------------------

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (chunks.length === 0) return undefined;
    const text = Buffer.concat(chunks).toString("utf8");
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }

  function commandJson(guildId: string | null, body: Record<string, unknown>, existing: Record<string, unknown> | undefined): Record<string, unknown> {
    return {
      id: existing?.["id"] ?? nextSnowflake(),
      application_id: applicationId,
      ...(guildId === null ? {} : { guild_id: guildId }),
      name: body["name"],
      description: body["description"] ?? "",
      type: body["type"] ?? 1,
      options: body["options"] ?? [],
      default_member_permissions: body["default_member_permissions"] ?? null,
      nsfw: false,
      contexts: body["contexts"] ?? null,
      integration_types: body["integration_types"] ?? [0],
      version: nextSnowflake(),
    };
  }

  function overwriteCommands(store: Map<string, Record<string, unknown>>, guildId: string | null, body: unknown): Record<string, unknown>[] {
    if (!Array.isArray(body)) throw new RestError(400, 50035, "Invalid Form Body");
    const next = new Map<string, Record<string, unknown>>();
    for (const item of body as Record<string, unknown>[]) {
      const name = String(item["name"]);
      next.set(name, commandJson(guildId, item, store.get(name)));
    }
    store.clear();
    for (const [name, command] of next) store.set(name, command);
    return [...store.values()];
  }

  type Route = { method: string; pattern: RegExp; auth: boolean; handle(match: string[], query: URLSearchParams, body: unknown): unknown };
  const routes: Route[] = [
    {
      method: "GET",
      pattern: /^\/gateway\/bot$/,
      auth: true,
      handle: () => ({ url: gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 1000, reset_after: 14_400_000, max_concurrency: 1 } }),
    },
    { method: "GET", pattern: /^\/users\/@me$/, auth: true, handle: () => ({ ...userJson(botUser), bot: true, verified: true, flags: 0 }) },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)$/,
      auth: true,
      handle: ([, id]) => {
        const guild = guilds.get(id ?? "");
        if (!guild) throw unknownGuild();
        return guildJson({ ...guild, roles: guild.roles.values() });
      },
    },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)\/roles$/,
      auth: true,
      handle: ([, id]) => {
        const guild = guilds.get(id ?? "");
        if (!guild) throw unknownGuild();
        return [...guild.roles.values()].map(roleJson);
      },
    },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)\/members\/(\d+)$/,
      auth: true,
      handle: ([, guildId, userId]) => {
        const guild = guilds.get(guildId ?? "");
        if (!guild) throw unknownGuild();
        const member = guild.members.get(userId ?? "");
        if (!member) throw unknownMember();
        return memberJson(member);
      },
    },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)\/members$/,
      auth: true,
      handle: ([, guildId], query) => {
        const guild = guilds.get(guildId ?? "");
        if (!guild) throw unknownGuild();
        // Listing members needs the privileged Server Members intent, like on Discord.
        if (!guildMembersAllowed) throw new RestError(403, 50001, "Missing Access");
        const limit = Math.min(Math.max(Number(query.get("limit") ?? 1), 1), 1000);
        const after = query.get("after") ?? "0";
        return [...guild.members.values()]
          .filter((member) => compareSnowflakes(member.user.id, after) > 0)
          .sort((a, b) => compareSnowflakes(a.user.id, b.user.id))
          .slice(0, limit)
          .map(memberJson);
      },
    },
    {
      method: "PUT",
      pattern: /^\/guilds\/(\d+)\/members\/(\d+)\/roles\/(\d+)$/,
      auth: true,
      handle: ([, guildId, userId, roleId]) => {
        changeRole(guildId ?? "", userId ?? "", roleId ?? "", true);
        return undefined;
      },
    },
    {
      method: "DELETE",
      pattern: /^\/guilds\/(\d+)\/members\/(\d+)\/roles\/(\d+)$/,
      auth: true,
      handle: ([, guildId, userId, roleId]) => {
        changeRole(guildId ?? "", userId ?? "", roleId ?? "", false);
        return undefined;
      },
    },
    {
      method: "PUT",
      pattern: /^\/applications\/(\d+)\/guilds\/(\d+)\/commands$/,
      auth: true,
      handle: ([, appId, guildId], _query, body) => {
        if (appId !== applicationId) throw new RestError(403, 50001, "Missing Access");
        const guild = guilds.get(guildId ?? "");
        if (!guild) throw new RestError(403, 50001, "Missing Access");
        return overwriteCommands(guild.commands, guild.id, body);
      },
    },
    {
      method: "PUT",
      pattern: /^\/applications\/(\d+)\/commands$/,
      auth: true,
      handle: ([, appId], _query, body) => {
        if (appId !== applicationId) throw new RestError(403, 50001, "Missing Access");
        return overwriteCommands(globalCommands, null, body);
      },
    },
    {
      method: "POST",
      pattern: /^\/interactions\/(\d+)\/([^/]+)\/callback$/,
      auth: false,
      handle: ([, id, token], query, body) => {
        const pending = interactions.get(id ?? "");
        if (!pending || pending.token !== token) throw new RestError(404, 10062, "Unknown interaction");
        if (pending.replied) throw new RestError(400, 40060, "Interaction has already been acknowledged.");
        pending.replied = true;
        const reply = (typeof body === "object" && body !== null ? body : { type: 0 }) as InteractionReply;
        pending.resolve(reply);
        if (query.get("with_response") !== "true") return undefined;
        return {
          interaction: { id, type: 2, activity_instance_id: null, response_message_id: null, response_message_loading: false, response_message_ephemeral: ((reply.data?.flags ?? 0) & 64) !== 0 },
          resource: { type: reply.type },
        };
      },
    },
  ];

  function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  async function handleRest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = performance.timeOrigin + performance.now();
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = req.method ?? "GET";
    const body = await readBody(req);
    const path = url.pathname.startsWith("/api/v10/") ? url.pathname.slice("/api/v10".length) : url.pathname;
    const rawReason = req.headers["x-audit-log-reason"];
    const auditLogReason = typeof rawReason === "string" ? decodeURIComponent(rawReason) : undefined;
    const record = (status: number): void => {
      calls.push({ method, path, status, at, ...(auditLogReason === undefined ? {} : { auditLogReason }), ...(body === undefined ? {} : { body }) });
    };

    const fault = faults.shift();
    if (fault) {
      record(fault.status);
      if (fault.status === 429) {
        reply(
          res,
          429,
          { message: "You are being rate limited.", retry_after: fault.retryAfterSec, global: fault.global },
          {
            "retry-after": String(fault.retryAfterSec),
            "x-ratelimit-limit": "5",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset-after": String(fault.retryAfterSec),
            "x-ratelimit-bucket": "emulated",
            "x-ratelimit-scope": fault.global ? "global" : "user",
            ...(fault.global ? { "x-ratelimit-global": "true" } : {}),
          },
        );
      } else {
        reply(res, fault.status, { message: `${fault.status}: Server Error`, code: 0 });
      }
      return;
    }

    const candidates = routes.filter((route) => route.pattern.test(path));
    const route = candidates.find((candidate) => candidate.method === method);
    if (!route) {
      const status = candidates.length > 0 ? 405 : 404;
      record(status);
      reply(res, status, { message: status === 404 ? "404: Not Found" : "405: Method Not Allowed", code: 0 });
      return;
    }
    if (route.auth && req.headers.authorization !== `Bot ${options.botToken}`) {
      record(401);
      reply(res, 401, { message: "401: Unauthorized", code: 0 });
      return;
    }
    try {
      const result = route.handle(route.pattern.exec(path) ?? [], url.searchParams, body);
      const status = result === undefined ? 204 : 200;
      record(status);
      reply(res, status, result);
    } catch (error) {
      if (!(error instanceof RestError)) throw error;
      record(error.status);
      reply(res, error.status, { message: error.message, code: error.code });
    }
  }

  return {
    get url() {
      return baseUrl;
    },
    get gatewayUrl() {
      return gatewayUrl;
    },
    clearCalls() {
      calls.length = 0;
    },
    get calls() {
      return calls;
    },
    get sessions() {
      return [...sessions].filter((session) => session.identified).length;
    },
    commands(guildId) {
      const store = guildId === "global" ? globalCommands : guildOf(guildId).commands;
      return [...store.keys()];
    },
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
      const { port } = server.address() as AddressInfo;
      baseUrl = `http://127.0.0.1:${port}`;
      gatewayUrl = `ws://127.0.0.1:${port}/gateway`;
    },
    async close() {
      for (const session of sessions) session.socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    memberRoles(guildId, userId) {
      const member = guilds.get(guildId)?.members.get(userId);
      return member ? [...member.roles] : undefined;
    },
    addMember(guildId, user, roles = []) {
      const guild = guildOf(guildId);
      const member: EmulatedMember = { user, roles: [...roles], joinedAt: new Date().toISOString() };
      guild.members.set(user.id, member);
      broadcast("GUILD_MEMBER_ADD", { guild_id: guild.id, ...memberJson(member) }, GUILD_MEMBERS_INTENT);
    },
    removeMember(guildId, userId) {
      const guild = guildOf(guildId);
      const member = guild.members.get(userId);
      if (!member) return;
      guild.members.delete(userId);
      broadcast("GUILD_MEMBER_REMOVE", { guild_id: guild.id, user: userJson(member.user) }, GUILD_MEMBERS_INTENT);
    },
    setMemberRoles(guildId, userId, roles) {
      const guild = guildOf(guildId);
      const member = guild.members.get(userId);
      if (!member) throw new Error(`emulator: no member ${userId} in guild ${guildId}`);
      member.roles = [...roles];
      emitMemberUpdate(guild, member);
    },
    updateRole(guildId, roleId, patch) {
      const guild = guildOf(guildId);
      const role = guild.roles.get(roleId);
      if (!role) throw new Error(`emulator: no role ${roleId} in guild ${guildId}`);
      if (patch.position !== undefined) role.position = patch.position;
      if (patch.permissions !== undefined) role.permissions = patch.permissions;
      broadcast("GUILD_ROLE_UPDATE", { guild_id: guild.id, role: roleJson(role) }, GUILDS_INTENT);
    },
    sendInteraction(guildId, userId, commandName, timeoutMs = 5000) {
      const guild = guildOf(guildId);
      const member = guild.members.get(userId);
      if (!member) throw new Error(`emulator: no member ${userId} in guild ${guildId}`);
      const command = guild.commands.get(commandName) ?? globalCommands.get(commandName);
      if (!command) throw new Error(`emulator: command /${commandName} is not registered in guild ${guildId}`);
      const id = nextSnowflake();
      const token = randomBytes(24).toString("base64url");
      return new Promise<InteractionReply>((resolve, reject) => {
        const timer = setTimeout(() => {
          interactions.delete(id);
          reject(new Error(`emulator: no callback for interaction /${commandName} within ${timeoutMs} ms`));
        }, timeoutMs);
        interactions.set(id, {
          token,
          replied: false,
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
        });
        broadcast(
          "INTERACTION_CREATE",
          {
            id,
            application_id: applicationId,
            type: 2,
            token,
            version: 1,
            guild_id: guild.id,
            guild: { id: guild.id, locale: "en-US", features: [] },
            member: { ...memberJson(member), permissions: "0" },
            data: { id: command["id"], name: commandName, type: 1, guild_id: command["guild_id"] },
            app_permissions: botPermissions(guild).permissions.toString(),
            locale: "en-US",
            guild_locale: "en-US",
            entitlements: [],
            authorizing_integration_owners: { "0": guild.id },
            context: 0,
            attachment_size_limit: 8_388_608,
          },
          0,
        );
      });
    },
    rateLimitNext(count, retryAfterSec, global = false) {
      for (let i = 0; i < count; i++) faults.push({ status: 429, retryAfterSec, global });
    },
    failNext(count, status = 500) {
      for (let i = 0; i < count; i++) faults.push({ status, retryAfterSec: 0, global: false });
    },
  };
}
