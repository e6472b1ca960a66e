import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/core/duration.js";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("parseDuration", () => {
  it.each<[string, number]>([
    ["3d", 3 * D],
    ["12h", 12 * H],
    ["90s", 90 * S],
    ["500ms", 500],
    ["1h30m", H + 30 * M],
    ["1h 30m", H + 30 * M],
    ["10 s", 10 * S],
    ["1w", 7 * D],
    ["1w2d3h4m5s6ms", 9 * D + 3 * H + 4 * M + 5 * S + 6],
    ["1.5h", 90 * M],
    ["0.5ms", 1],
    ["0", 0],
    ["0s", 0],
    [" 2m ", 2 * M],
  ])("reads %j as %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", " ", "soon", "3", "-1h", "30m1h", "1m1m", "1hh", "h", "1.h", "1e3s", "3D", "1 h x", "1y", "99999999999999999999d"])(
    "rejects %j",
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it("never throws and yields undefined or a whole, non-negative, safe number", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const ms = parseDuration(text);
        expect(ms === undefined || (Number.isSafeInteger(ms) && ms >= 0)).toBe(true);
      }),
    );
  });
});

describe("formatDuration", () => {
  it.each<[number, string]>([
    [0, "0s"],
    [0.4, "0s"],
    [1.4, "1ms"],
    [500, "500ms"],
    [90 * S, "1m30s"],
    [3 * D, "3d"],
    [14 * D, "14d"],
    [D + H + M + S + 1, "1d1h1m1s1ms"],
    [-1500, "-1s500ms"],
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "Infinity"],
  ])("writes %d as %j", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("is read back by parseDuration as the same number of milliseconds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e13 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});
