import { createHmac, timingSafeEqual } from "node:crypto";

const PREFIX = "sha256=";
/** 32 bytes of SHA-256, as 64 hex digits. */
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;

function digest(rawBody: Buffer, secret: string): Buffer {
  return createHmac("sha256", secret).update(rawBody).digest();
}

/**
 * The `X-PaymentHub-Signature` value for a body: `sha256=` and the lower-case
 * hex HMAC-SHA256 of the raw bytes with the webhook secret, as the doc's sample computes it.
 */
export function signPayload(rawBody: Buffer | string, secret: string): string {
  const body = typeof rawBody === "string" ? Buffer.from(rawBody, "utf8") : rawBody;
  return PREFIX + digest(body, secret).toString("hex");
}

/**
 * Whether `header` is a valid `X-PaymentHub-Signature` of `rawBody` under any
 * of `secrets` (several at once, so a secret can be rotated). Never throws.
 *
 * The doc's sample hands the header straight to `timingSafeEqual`, which
 * throws when the lengths differ; here the header must first be exactly
 * `sha256=` plus 64 hex digits (either case: the digits encode the same
 * bytes), and the decoded 32 bytes are compared in constant time.
 */
export function verifySignature(rawBody: Buffer, header: string | undefined, secrets: readonly string[]): boolean {
  if (typeof header !== "string" || !header.startsWith(PREFIX)) return false;
  const hex = header.slice(PREFIX.length);
  if (!HEX_DIGEST.test(hex)) return false;
  const given = Buffer.from(hex, "hex");
  let matched = false;
  // Every secret is checked (no early return), so timing does not reveal which one matched.
  for (const secret of secrets) {
    if (typeof secret !== "string" || secret.length === 0) continue;
    const expected = digest(rawBody, secret);
    if (expected.length === given.length && timingSafeEqual(expected, given)) matched = true;
  }
  return matched;
}
