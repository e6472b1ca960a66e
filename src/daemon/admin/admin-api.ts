import { z } from "zod";

// The reports are zod schemas because they cross a process boundary: the CLI parses what the daemon
// sends, so a daemon of another version fails with a clear message instead of printing nonsense.

const count = z.number().int().nonnegative();
/** Epoch milliseconds. */
const epochMs = z.number();

/** One lane of the action queue (a target: `discord`, `minecraft:survival`). */
export const laneDepthSchema = z.object({
  lane: z.string(),
  /** Ready to send. */
  queued: count,
  /** Backing off, or waiting for a target that is down or a subject that is missing. */
  waiting: count,
  /** Given up on until an operator runs `retry`. */
  parked: count,
  inFlight: count,
});

/** An action parked for the operator, with why and how to fix it. */
export const parkedActionSchema = z.object({
  id: z.string(),
  lane: z.string(),
  subject: z.string(),
  /** A readable label of the perk: `discord role 123 in guild 456`. */
  perk: z.string(),
  reason: z.string(),
  fix: z.string().optional(),
  /** When it was parked. */
  since: epochMs,
});

/** A revocation held by the mass-revoke guard until an operator confirms it (`perkbridge confirm`). */
export const heldRevocationSchema = z.object({
  id: z.string(),
  subject: z.string(),
  perk: z.string(),
  /** Member keys whose state caused the revocation. */
  members: z.array(z.string()).readonly(),
  heldAt: epochMs,
  reason: z.string(),
});

/** What is left of one source's client-side rate budget. */
export const sourceBudgetSchema = z.object({
  source: z.string(),
  windows: z.array(z.object({ limit: count, remaining: count, windowMs: count })).readonly(),
  /** Set while the source told us to stop (429, `X-RateLimit-Remaining: 0`). */
  blockedUntil: epochMs.optional(),
});

/** The last full listing of a source's members. */
export const sweepReportSchema = z.object({
  source: z.string(),
  startedAt: epochMs,
  /** Absent while it runs. */
  finishedAt: epochMs.optional(),
  members: count,
  requests: count,
  /** Only a complete, successful listing can justify revocations (DESIGN invariant 4). */
  complete: z.boolean(),
  error: z.string().optional(),
});

export const targetHealthSchema = z.object({
  name: z.string(),
  healthy: z.boolean(),
  detail: z.string().optional(),
});

/** Everything `perkbridge status` shows. */
export const statusReportSchema = z.object({
  queue: z.array(laneDepthSchema).readonly(),
  parked: z.array(parkedActionSchema).readonly(),
  held: z.array(heldRevocationSchema).readonly(),
  budget: z.array(sourceBudgetSchema).readonly(),
  lastSweep: sweepReportSchema.optional(),
  targets: z.array(targetHealthSchema).readonly(),
});

/** One grant or revoke of a reconcile plan. */
export const plannedActionSchema = z.object({
  type: z.enum(["grant", "revoke"]),
  subject: z.string(),
  perk: z.string(),
  members: z.array(z.string()).readonly(),
  reason: z.string(),
});

/** The outcome of `perkbridge sync`. */
export const syncReportSchema = z.object({
  /** With `dryRun`, what would be done; without, what was queued. */
  planned: z.array(plannedActionSchema).readonly(),
  /** Revocations the mass-revoke guard held (or would hold) instead of planning them. */
  held: count,
  /** Members reconciled. */
  members: count,
  dryRun: z.boolean(),
});

export const retryResultSchema = z.object({ requeued: count });
export const confirmResultSchema = z.object({ released: count });

export type LaneDepth = z.infer<typeof laneDepthSchema>;
export type ParkedAction = z.infer<typeof parkedActionSchema>;
export type HeldRevocation = z.infer<typeof heldRevocationSchema>;
export type SourceBudget = z.infer<typeof sourceBudgetSchema>;
export type SweepReport = z.infer<typeof sweepReportSchema>;
export type TargetHealth = z.infer<typeof targetHealthSchema>;
export type StatusReport = z.infer<typeof statusReportSchema>;
export type PlannedAction = z.infer<typeof plannedActionSchema>;
export type SyncReport = z.infer<typeof syncReportSchema>;

/** Options of {@link AdminApi.sync}. */
export interface SyncOptions {
  /** Plan only: change nothing anywhere (no queue, no ledger, no target). */
  readonly dryRun: boolean;
  /** Reconcile this member key only, instead of everyone. */
  readonly member?: string;
}

/** Which parked actions {@link AdminApi.retry} re-queues; empty means all. */
export interface RetryFilter {
  readonly target?: string;
  readonly member?: string;
}

/** Which held revocations {@link AdminApi.confirm} releases: the listed ids, or all. */
export interface ConfirmOptions {
  readonly ids?: readonly string[];
  readonly all?: boolean;
}

/**
 * Called as a long operation advances; `total` is 0 while unknown. `stage` names the part of an
 * operation with several (a sync lists the members, then reconciles them: its counts start over).
 */
export type ProgressListener = (done: number, total: number, stage?: string) => void;

/**
 * The operator's commands, as the reconcile engine implements them. The daemon serves it on the admin
 * channel (`createAdminServer`); the CLI reaches it there (`connectAdmin`) or, with the daemon
 * stopped, builds one on the state directory itself (an {@link OfflineAdminFactory}).
 */
export interface AdminApi {
  status(): Promise<StatusReport>;
  /** Runs a full reconcile now (or of one member); with `dryRun`, only plans it. */
  sync(options: SyncOptions, progress?: ProgressListener): Promise<SyncReport>;
  /** Re-queues parked actions. */
  retry(filter: RetryFilter): Promise<{ requeued: number }>;
  /** Releases held mass revocations. */
  confirm(options: ConfirmOptions): Promise<{ released: number }>;
}

/** An {@link AdminApi} that holds something open (a connection, the state directory and its lock). */
export type AdminSession = AdminApi & { close(): Promise<void> };

/**
 * Opens the state directory named by the config file under its lock and serves the operator's
 * commands from it, for when the daemon is stopped. Throws `StateLockedError` (ERR_STATE_LOCKED)
 * when a live daemon holds the directory.
 */
export type OfflineAdminFactory = (configPath: string) => Promise<AdminSession>;

/** The methods of the admin protocol. */
export const ADMIN_METHODS = ["status", "sync", "retry", "confirm"] as const;
export type AdminMethod = (typeof ADMIN_METHODS)[number];

// ── Wire protocol ────────────────────────────────────────────────────────
// Newline-delimited JSON, one message per line, both ways. A request is answered by exactly one
// `result` or `error` with its id; `sync` may send `progress` messages with that id before.

/** `{ id, method, params }`; the id is the caller's, echoed in every message about the request. */
export const adminRequestSchema = z.object({
  id: z.union([z.string().max(100), z.number().int()]),
  method: z.string().max(100),
  params: z.unknown().optional(),
});
export type AdminRequest = z.infer<typeof adminRequestSchema>;

/** Parameters by method; strict so that a typo (`dry_run`) is an error, not a silent full sync. */
export const adminParamsSchemas = {
  status: z.strictObject({}).optional(),
  sync: z.strictObject({ dryRun: z.boolean(), member: z.string().min(1).optional() }),
  retry: z.strictObject({ target: z.string().min(1).optional(), member: z.string().min(1).optional() }).optional(),
  confirm: z
    .strictObject({ ids: z.array(z.string().min(1)).optional(), all: z.boolean().optional() })
    .refine((p) => p.all === true || (p.ids !== undefined && p.ids.length > 0), "pass ids (non-empty) or all: true"),
} as const satisfies Record<AdminMethod, z.ZodType>;

const errorBodySchema = z.object({ code: z.string(), message: z.string() });
const messageId = z.union([z.string(), z.number(), z.null()]);

/** What the daemon sends: a result, an error (id null when the request could not be read), or progress. */
export const adminMessageSchema = z.union([
  z.object({ id: messageId, error: errorBodySchema }),
  z.object({ id: messageId, progress: z.object({ done: count, total: count, stage: z.string().max(200).optional() }) }),
  // Last: a `result` may be any JSON, so this branch only decides once the others did not match.
  z.object({ id: messageId, result: z.unknown() }).refine((m) => "result" in m, "result missing"),
]);
export type AdminMessage =
  | { readonly id: AdminRequest["id"] | null; readonly result: unknown }
  | { readonly id: AdminRequest["id"] | null; readonly error: { readonly code: string; readonly message: string } }
  | { readonly id: AdminRequest["id"] | null; readonly progress: { readonly done: number; readonly total: number; readonly stage?: string } };

/** Longest request line the daemon reads; a longer one is answered with an error and the connection closed. */
export const MAX_ADMIN_LINE_BYTES = 1024 * 1024;
