import { PerkbridgeError } from "../../core/errors.js";

/** Stable codes of {@link PaymentHubError}; classify by these, never by message text. */
export type PaymentHubErrorCode =
  | "ERR_PAYMENTHUB_RATE_LIMITED"
  | "ERR_PAYMENTHUB_UNAUTHORIZED"
  | "ERR_PAYMENTHUB_FORBIDDEN"
  | "ERR_PAYMENTHUB_NOT_FOUND"
  | "ERR_PAYMENTHUB_BAD_REQUEST"
  | "ERR_PAYMENTHUB_SERVER"
  | "ERR_PAYMENTHUB_HTTP"
  | "ERR_PAYMENTHUB_NETWORK"
  | "ERR_PAYMENTHUB_TIMEOUT"
  | "ERR_PAYMENTHUB_INVALID_RESPONSE";

/** What a {@link PaymentHubError} carries besides its message. */
export interface PaymentHubErrorDetails {
  /** `GET`, `PATCH`. */
  readonly method: string;
  /** The request URL with any user name and password removed. Never holds the API key. */
  readonly url: string;
  /** HTTP status, absent for network errors and timeouts. */
  readonly status?: number;
  /** `error.type` of the envelope, e.g. `invalid_request_error`. */
  readonly type?: string;
  /** `error.code` of the envelope, e.g. `parameter_missing` (named apiCode because `code` is our ERR_ code). */
  readonly apiCode?: string;
  /** `error.param` of the envelope. */
  readonly param?: string;
  /** `error.request_id` of the envelope: give it to PaymentHub support. */
  readonly requestId?: string;
  /** Whether the same request may succeed later (5xx, 429, network, timeout). */
  readonly retryable: boolean;
  /** The raw `Retry-After` header of a 429 or 5xx. */
  readonly retryAfter?: string;
  /** `Retry-After` as a delay in milliseconds, when it could be read. */
  readonly retryAfterMs?: number;
}

/**
 * A failed PaymentHub request. Deliberately has no `cause` that holds got's
 * request options: those contain the Authorization header.
 */
export class PaymentHubError extends PerkbridgeError {
  declare readonly code: PaymentHubErrorCode;
  readonly method: string;
  readonly url: string;
  readonly status?: number;
  readonly type?: string;
  readonly apiCode?: string;
  readonly param?: string;
  readonly requestId?: string;
  readonly retryable: boolean;
  readonly retryAfter?: string;
  readonly retryAfterMs?: number;

  constructor(code: PaymentHubErrorCode, message: string, details: PaymentHubErrorDetails, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = `PaymentHubError [${code}]`;
    this.method = details.method;
    this.url = details.url;
    this.retryable = details.retryable;
    if (details.status !== undefined) this.status = details.status;
    if (details.type !== undefined) this.type = details.type;
    if (details.apiCode !== undefined) this.apiCode = details.apiCode;
    if (details.param !== undefined) this.param = details.param;
    if (details.requestId !== undefined) this.requestId = details.requestId;
    if (details.retryAfter !== undefined) this.retryAfter = details.retryAfter;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
  }
}
