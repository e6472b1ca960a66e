import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { signPayload, verifySignature } from "../../src/sources/paymenthub/verify-signature.js";

const body = Buffer.from('{"id":"evt_1","type":"member.created","data":{}}', "utf8");
const secret = "whsec_current";
const oldSecret = "whsec_previous";

/** The doc's algorithm, written out independently of the code under test. */
function docDigest(raw: Buffer, key: string): string {
  return "sha256=" + createHmac("sha256", key).update(raw).digest("hex");
}

describe("signPayload", () => {
  it("computes sha256=<hex HMAC-SHA256 of the raw bytes> as the doc does", () => {
    expect(signPayload(body, secret)).toBe(docDigest(body, secret));
    expect(signPayload(body.toString("utf8"), secret)).toBe(docDigest(body, secret));
  });
});

describe("verifySignature", () => {
  const valid = docDigest(body, secret);
  const hex = valid.slice("sha256=".length);

  it.each<[string, string | undefined, readonly string[], boolean]>([
    ["valid signature", valid, [secret], true],
    ["signed with the second of two secrets (rotation)", docDigest(body, oldSecret), [secret, oldSecret], true],
    ["signed with the first of two secrets", valid, [oldSecret, secret], true],
    ["upper-case hex digits (same bytes)", "sha256=" + hex.toUpperCase(), [secret], true],
    ["wrong secret", docDigest(body, "whsec_other"), [secret, oldSecret], false],
    ["no secrets configured", valid, [], false],
    ["empty secret is ignored", docDigest(body, ""), [""], false],
    ["missing header", undefined, [secret], false],
    ["empty header", "", [secret], false],
    ["prefix only", "sha256=", [secret], false],
    ["no prefix", hex, [secret], false],
    ["upper-case prefix", "SHA256=" + hex, [secret], false],
    ["other algorithm", "sha1=" + hex, [secret], false],
    ["one hex digit short", valid.slice(0, -1), [secret], false],
    ["one hex digit long", valid + "0", [secret], false],
    ["odd garbage of the right length", "sha256=" + "z".repeat(64), [secret], false],
    ["surrounding whitespace", ` ${valid} `, [secret], false],
    ["two signatures", `${valid},${valid}`, [secret], false],
    ["very long header", "sha256=" + "a".repeat(100_000), [secret], false],
  ])("%s", (_name, header, secrets, expected) => {
    expect(verifySignature(body, header, secrets)).toBe(expected);
  });

  it("rejects a body changed by one byte", () => {
    const changed = Buffer.from(body);
    changed[5] = (changed[5] as number) ^ 1;
    expect(verifySignature(changed, valid, [secret])).toBe(false);
  });

  it("never throws, and accepts nothing but the right digest, for arbitrary header strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: "grapheme", maxLength: 200 }),
          fc.string({ unit: "binary", maxLength: 200 }),
          fc.string({ maxLength: 70 }).map((s) => "sha256=" + s),
          fc.stringMatching(/^sha256=[0-9a-fA-F]{60,68}$/),
          fc.string({ minLength: 5_000, maxLength: 20_000 }),
        ),
        (header) => {
          const result = verifySignature(body, header, [secret, oldSecret]);
          const isValid = [secret, oldSecret].some((s) => header.toLowerCase() === docDigest(body, s) && header.startsWith("sha256="));
          expect(result).toBe(isValid);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("verifies what signPayload signs, for any body and secret, and only with that secret", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (bytes, key, other) => {
        const raw = Buffer.from(bytes);
        const header = signPayload(raw, key);
        expect(verifySignature(raw, header, [key])).toBe(true);
        expect(verifySignature(raw, header, [other])).toBe(other === key);
      }),
      { numRuns: 200 },
    );
  });
});
