import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffDelay, DEFAULT_BACKOFF, nextRetryDelay, parseRetryAfter, type BackoffOptions } from "../../src/core/backoff.js";
import { PerkbridgeError } from "../../src/core/errors.js";

const NOW = Date.UTC(2024, 0, 15, 10, 30, 0);
const noJitter: BackoffOptions = { random: () => 0 };

describe("backoffDelay", () => {
  it.each<[number, BackoffOptions, number]>([
    [1, noJitter, 1_000],
    [2, noJitter, 2_000],
    [3, noJitter, 4_000],
    [9, noJitter, 256_000],
    [10, noJitter, 300_000], // 512 s capped at 5 min
    [1_000, noJitter, 300_000], // factor^n overflows to Infinity; still the cap
    [Number.POSITIVE_INFINITY, noJitter, 300_000],
    [0, noJitter, 1_000], // attempts below 1 count as the first
    [-3, noJitter, 1_000],
    [Number.NaN, noJitter, 1_000],
    [2.7, noJitter, 2_000],
    [3, { baseMs: 500, factor: 3, random: () => 0 }, 4_500],
    [3, { baseMs: 500, factor: 3, maxMs: 2_000, random: () => 0 }, 2_000],
    [1, { random: () => 0.999999 }, 800], // default jitter takes up to 20 % off
    [1, { random: () => 0.5 }, 900],
    [1, { jitter: 1, random: () => 0.5 }, 500],
    [1, { jitter: 0, random: () => 0.9 }, 1_000],
    [1, { jitter: 5, random: () => 1 }, 0], // jitter share is clamped to 1
    [1, { random: () => 7 }, 800], // a random() out of range is clamped
    [1, { random: () => Number.NaN }, 1_000],
    [4, { baseMs: 0, random: () => 0 }, 0],
    [5_000, { baseMs: 0, random: () => 0 }, 0], // 0 · Infinity must not become NaN
  ])("attempt %s with %o waits %s ms", (attempt, opts, expected) => {
    expect(backoffDelay(attempt, opts)).toBe(expected);
  });

  it("uses Math.random when none is injected, within the jitter band", () => {
    const d = backoffDelay(2);
    expect(d).toBeGreaterThanOrEqual(1_600);
    expect(d).toBeLessThanOrEqual(2_000);
  });

  it.each<[string, BackoffOptions]>([
    ["negative base", { baseMs: -1 }],
    ["NaN cap", { maxMs: Number.NaN }],
    ["shrinking factor", { factor: 0.5 }],
    ["infinite factor", { factor: Number.POSITIVE_INFINITY }],
    ["negative jitter", { jitter: -0.1 }],
  ])("rejects a %s with ERR_BACKOFF_OPTIONS", (_name, opts) => {
    expect(() => backoffDelay(1, opts)).toThrow(PerkbridgeError);
    expect(() => backoffDelay(1, opts)).toThrow(expect.objectContaining({ code: "ERR_BACKOFF_OPTIONS" }) as Error);
  });

  it("property: always within [0, maxMs] and never more than the un-jittered delay", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -5, max: 2_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        (attempt, baseMs, maxMs, factor, jitter, r) => {
          const d = backoffDelay(attempt, { baseMs, maxMs, factor, jitter, random: () => r });
          const plain = backoffDelay(attempt, { baseMs, maxMs, factor, jitter: 0 });
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(maxMs);
          expect(d).toBeLessThanOrEqual(plain);
        },
      ),
    );
  });

  it("property: without jitter the delay never shrinks as attempts grow", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 5_000 }), (attempt, baseMs) => {
        expect(backoffDelay(attempt + 1, { baseMs, jitter: 0 })).toBeGreaterThanOrEqual(backoffDelay(attempt, { baseMs, jitter: 0 }));
      }),
    );
  });
});

describe("parseRetryAfter", () => {
  it.each<[string | undefined, number | undefined]>([
    [undefined, undefined],
    ["120", 120_000],
    ["0", 0],
    [" 7 ", 7_000],
    ["1.5", 1_500],
    ["0.0001", 1], // rounded up: never come back early
    ["-5", 0],
    ["+3", 3_000],
    ["Mon, 15 Jan 2024 10:32:00 GMT", 120_000],
    ["Mon, 15 Jan 2024 10:30:00 GMT", 0],
    ["Mon, 15 Jan 2024 10:00:00 GMT", 0], // in the past
    ["Sun, 06 Nov 1994 08:49:37 GMT", 0],
    ["Sat, 31 Dec 2033 23:59:60 GMT", Date.UTC(2034, 0, 1) - NOW], // leap second
    ["Monday, 15-Jan-24 10:31:00 GMT", 60_000], // RFC 850
    ["Sunday, 06-Nov-94 08:49:37 GMT", 0], // RFC 850, last century
    ["Mon Jan 15 10:30:30 2024", 30_000], // asctime
    ["Mon Jan  5 10:30:30 2025", Date.UTC(2025, 0, 5, 10, 30, 30) - NOW], // asctime, one-digit day
    ["", undefined],
    ["soon", undefined],
    ["1e3", undefined],
    ["12abc", undefined],
    ["Infinity", undefined],
    ["9".repeat(400), undefined], // parses to Infinity
    ["Mon, 31 Feb 2024 10:30:00 GMT", undefined], // no such day
    ["Mon, 15 Foo 2024 10:30:00 GMT", undefined],
    ["Xyz, 15 Jan 2024 10:30:00 GMT", undefined],
    ["Mon, 15 Jan 2024 24:00:00 GMT", undefined],
    ["Mon, 15 Jan 2024 10:60:00 GMT", undefined],
    ["Mon, 15 Jan 2024 10:30:61 GMT", undefined],
    ["Mon, 00 Jan 2024 10:30:00 GMT", undefined],
    ["Mon, 15 Jan 2024 10:30:00 UTC", undefined],
    ["2024-01-15T10:32:00Z", undefined], // ISO is not an HTTP-date
  ])("%j → %s", (header, expected) => {
    expect(parseRetryAfter(header, NOW)).toBe(expected);
  });

  it("reads a two-digit RFC 850 year in the current century when that is not far ahead", () => {
    const now = Date.UTC(2070, 0, 1);
    // "30" → 2030 (past, so 0) rather than 2130; "99" → 2099 is within 50 years of 2070.
    expect(parseRetryAfter("Tuesday, 01-Jan-30 00:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("Thursday, 01-Jan-99 00:00:00 GMT", now)).toBe(Date.UTC(2099, 0, 1) - now);
    // From 2024, "99" would be 2099, more than 50 years ahead: it means 1999.
    expect(parseRetryAfter("Friday, 01-Jan-99 00:00:00 GMT", NOW)).toBe(0);
  });
});

describe("nextRetryDelay", () => {
  it.each<[string, number, string | undefined, BackoffOptions, number]>([
    ["no header: backoff", 3, undefined, noJitter, 4_000],
    ["garbage header: backoff", 3, "later", noJitter, 4_000],
    ["seconds honoured over backoff", 1, "30", noJitter, 30_000],
    ["shorter Retry-After honoured too", 8, "2", noJitter, 2_000],
    ["date honoured", 1, "Mon, 15 Jan 2024 10:35:00 GMT", noJitter, 300_000],
    ["past date: retry now", 5, "Mon, 15 Jan 2024 10:00:00 GMT", noJitter, 0],
    ["beyond the 5-min backoff cap, under the 1-h Retry-After cap", 1, "1800", noJitter, 1_800_000],
    ["capped at 1 h by default", 1, "86400", noJitter, DEFAULT_BACKOFF.maxRetryAfterMs],
    ["own cap", 1, "600", { maxRetryAfterMs: 60_000 }, 60_000],
  ])("%s", (_name, attempt, header, opts, expected) => {
    expect(nextRetryDelay(attempt, header, NOW, opts)).toBe(expected);
  });

  it("rejects a negative Retry-After cap", () => {
    expect(() => nextRetryDelay(1, "5", NOW, { maxRetryAfterMs: -1 })).toThrow(PerkbridgeError);
  });

  it("property: always within [0, max(maxMs, maxRetryAfterMs)]", () => {
    const header = fc.oneof(
      fc.constant(undefined),
      fc.integer({ min: -1_000, max: 10_000_000 }).map(String),
      fc.double({ min: -100, max: 100_000, noNaN: true }).map((n) => n.toFixed(3)),
      fc.integer({ min: -10_000_000, max: 10_000_000 }).map((s) => new Date(NOW + s * 1000).toUTCString()),
      fc.string(),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        header,
        fc.integer({ min: 0, max: 600_000 }),
        fc.integer({ min: 0, max: 7_200_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (attempt, h, maxMs, maxRetryAfterMs, r) => {
          const d = nextRetryDelay(attempt, h, NOW, { maxMs, maxRetryAfterMs, random: () => r });
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(Math.max(maxMs, maxRetryAfterMs));
        },
      ),
    );
  });

  it("property: Date#toUTCString output round-trips to the exact wait", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), (s) => {
        expect(parseRetryAfter(new Date(NOW + s * 1000).toUTCString(), NOW)).toBe(s * 1000);
      }),
    );
  });
});
