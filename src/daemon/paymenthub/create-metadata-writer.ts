import {
  DEFAULT_IDENTITY_PATHS,
  DEFAULT_METADATA_LIMIT_BYTES,
  mergeOwnedMetadata,
  ownedPatch,
  utf8JsonBytes,
  type MetadataPolicy,
} from "../../core/metadata-budget.js";
import type { PaymentHubClient } from "../../sources/paymenthub/create-paymenthub-client.js";
import { PaymentHubError } from "../../sources/paymenthub/paymenthub-error.js";

/** The `sources.paymenthub.metadata` section of the config. */
export interface MetadataSection {
  readonly write: "read-merge-write" | "merge";
  readonly limit_bytes: number;
  readonly owned: readonly string[];
  readonly trim_drop: readonly string[];
}

/** The core policy for a config section; identity keys are the core's defaults. */
export function metadataPolicyFromConfig(section: Omit<MetadataSection, "write">): MetadataPolicy {
  return {
    limitBytes: section.limit_bytes,
    ownedPaths: section.owned,
    identityPaths: DEFAULT_IDENTITY_PATHS,
    trim: { drop: section.trim_drop, arrays: "oldest-first" },
  };
}

/** The outcome of one write: a value, never an exception. */
export type WriteResult =
  | { readonly kind: "written"; readonly bytes: number; readonly trimmed: readonly string[] }
  | { readonly kind: "unchanged" }
  /** Nothing may be sent: other keys fill the budget, an identity would be overwritten, the member is gone. */
  | { readonly kind: "skipped"; readonly reason: string }
  | { readonly kind: "failed"; readonly retryable: boolean; readonly reason: string };

/** The subset of a pino logger the writer uses. */
export interface MetadataWriterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MetadataWriterOptions {
  /** The gate-bound client; reads and writes go at priority `write`. */
  readonly client: PaymentHubClient;
  readonly policy: MetadataPolicy;
  /**
   * `read-merge-write` (default): PATCH the whole merged document, right
   * whether PaymentHub replaces or merges. `merge`: PATCH only perkbridge's
   * keys, for a platform known to merge deeply (it cannot delete a key).
   */
  readonly mode?: "read-merge-write" | "merge";
  readonly logger: MetadataWriterLogger;
}

export interface MetadataWriter {
  /** Writes perkbridge's owned keys (`minecraft.playtime` → value; `undefined` removes) into one member's metadata. */
  write(memberId: string, owned: Readonly<Record<string, unknown>>): Promise<WriteResult>;
}

function failure(error: unknown): { retryable: boolean; reason: string } {
  if (error instanceof PaymentHubError) return { retryable: error.retryable, reason: error.message };
  // The gate stopping, or something unexpected: nothing was written, so trying later is safe.
  return { retryable: true, reason: error instanceof Error ? error.message : String(error) };
}

/**
 * Writes perkbridge's own metadata keys to PaymentHub (DESIGN.md invariant 7):
 * reads the member fresh, merges only the owned keys within the size budget,
 * and sends nothing when nothing changed or when the document would be over
 * the limit. Replaying a write with the same input leaves the document as it
 * is. Echo webhooks of our own PATCH (`member.updated`) need nothing here: the
 * engine compares the echoed member with what it stores and plans nothing.
 *
 * Between the read and the PATCH another writer may change the document; the
 * API offers no conditional update, so that change can be lost in
 * read-merge-write mode (the `merge` mode does not have this race).
 */
export function createMetadataWriter(options: MetadataWriterOptions): MetadataWriter {
  const { client, policy, logger } = options;
  const mode = options.mode ?? "read-merge-write";
  const limit = policy.limitBytes ?? DEFAULT_METADATA_LIMIT_BYTES;

  return {
    async write(memberId, owned) {
      let wire;
      try {
        wire = await client.getMember(memberId, { priority: "write" });
      } catch (error) {
        const f = failure(error);
        logger.warn({ member: memberId, retryable: f.retryable, reason: f.reason }, "could not read the member before writing its metadata");
        return { kind: "failed", ...f };
      }
      if (wire === null) {
        const reason = `member ${memberId} does not exist at PaymentHub (404); its metadata is not written`;
        logger.info({ member: memberId }, reason);
        return { kind: "skipped", reason };
      }

      const current = wire.metadata ?? {};
      const merged = mergeOwnedMetadata(current, owned, policy);
      if (!merged.ok) {
        logger.warn({ member: memberId, bytes: merged.bytes, limitBytes: limit }, `metadata write skipped: ${merged.reason}`);
        return { kind: "skipped", reason: merged.reason };
      }
      if (!merged.changed) return { kind: "unchanged" };

      let body: Record<string, unknown>;
      let bytes: number;
      let trimmed: readonly string[];
      if (mode === "merge") {
        const patch = ownedPatch(owned, policy);
        if (!patch.ok) {
          logger.warn({ member: memberId }, `metadata write skipped: ${patch.reason}`);
          return { kind: "skipped", reason: patch.reason };
        }
        body = patch.patch;
        bytes = merged.bytes;
        trimmed = merged.trimmed;
      } else {
        body = merged.document;
        bytes = merged.bytes;
        trimmed = merged.trimmed;
      }
      // The merge guarantees this; checked once more because a document over the limit must never be sent.
      const sent = utf8JsonBytes(body);
      if (sent > limit) {
        const reason = `the metadata document would be ${sent} bytes, over the ${limit}-byte limit; not sent`;
        logger.error({ member: memberId }, reason);
        return { kind: "skipped", reason };
      }

      try {
        await client.patchMember(memberId, body, { priority: "write" });
      } catch (error) {
        if (error instanceof PaymentHubError && error.status === 400 && (error.apiCode === "metadata_too_large" || error.param === "metadata")) {
          const reason =
            `PaymentHub refused member ${memberId}'s metadata (${bytes} bytes) as too large: its limit is lower than ` +
            `sources.paymenthub.metadata.limit_bytes. Lower limit_bytes or own fewer keys; this write is not retried.`;
          logger.error({ member: memberId, bytes, apiCode: error.apiCode, requestId: error.requestId }, reason);
          return { kind: "failed", retryable: false, reason };
        }
        const f = failure(error);
        logger.warn({ member: memberId, retryable: f.retryable, reason: f.reason }, "metadata write failed");
        return { kind: "failed", ...f };
      }
      if (trimmed.length > 0) logger.info({ member: memberId, bytes, trimmed }, "metadata trimmed to fit the size limit");
      return { kind: "written", bytes, trimmed };
    },
  };
}
