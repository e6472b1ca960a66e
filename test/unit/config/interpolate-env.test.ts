import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { interpolateEnv } from "../../../src/daemon/config/interpolate-env.js";

describe("interpolateEnv", () => {
  it.each<[string, Record<string, string>, string]>([
    ["${A}", { A: "x" }, "x"],
    ["pre-${A}-${B}", { A: "1", B: "2" }, "pre-1-2"],
    ["$${A}", { A: "x" }, "${A}"],
    ["$${A} and ${A}", { A: "x" }, "${A} and x"],
    ["$$ and $x and $", {}, "$$ and $x and $"],
    ["${EMPTY}", { EMPTY: "" }, ""],
    ["no refs", {}, "no refs"],
  ])("turns %j into %j", (text, env, out) => {
    const result = interpolateEnv({ key: text }, env);
    expect(result.value).toEqual({ key: out });
    expect(result.problems).toEqual([]);
  });

  it("names an unset variable and the path of the string that uses it", () => {
    const result = interpolateEnv({ a: { b: ["ok", "x ${MISSING} y"] } }, {});
    expect(result.problems).toEqual([{ path: ["a", "b", 1], message: "environment variable MISSING is not set" }]);
  });

  it.each(["${}", "${1A}", "${A-B}", "${A", "tail ${"])("reports the malformed reference in %j", (text) => {
    const result = interpolateEnv({ k: text }, { A: "x" });
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]?.path).toEqual(["k"]);
    expect(result.problems[0]?.message).toMatch(/^invalid \$\{\.\.\.\} reference/);
  });

  it("leaves keys, numbers, booleans and null alone", () => {
    const input = { "${A}": 1, b: true, c: null, d: [2.5] };
    expect(interpolateEnv(input, { A: "x" }).value).toEqual(input);
  });

  it("keeps a __proto__ key as a plain key instead of setting the prototype", () => {
    const input = JSON.parse('{"__proto__": {"polluted": "yes"}}') as unknown;
    const value = interpolateEnv(input, {}).value as Record<string, unknown>;
    expect(Object.hasOwn(value, "__proto__")).toBe(true);
    expect((value as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("records which paths and values came from the environment", () => {
    const result = interpolateEnv({ a: "${A}", b: ["lit", "$${B}", "${B}"], c: "${E}" }, { A: "alpha", B: "beta", E: "" });
    expect(result.interpolatedPaths).toEqual([["a"], ["b", 2], ["c"]]);
    expect(result.envValues).toEqual(["alpha", "beta"]);
  });

  it("substitutes any value verbatim, even one that looks like a reference", () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const result = interpolateEnv(["<${V}>"], { V: value });
        expect(result.value).toEqual([`<${value}>`]);
        expect(result.problems).toEqual([]);
      }),
    );
  });

  it("returns strings without `${` unchanged", () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes("${")),
        (text) => {
          expect(interpolateEnv(text, {}).value).toBe(text);
        },
      ),
    );
  });
});
