import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyIndex } from "../../src/core/key-index.js";

describe("KeyIndex", () => {
  it("holds one value, then several, then one again, and forgets an emptied key", () => {
    const index = new KeyIndex();
    expect(index.get("m")).toEqual([]);
    index.add("m", "a");
    index.add("m", "a");
    expect(index.get("m")).toEqual(["a"]);
    index.add("m", "b");
    index.add("m", "c");
    expect(index.get("m")).toEqual(["a", "b", "c"]);
    index.delete("m", "b");
    index.delete("m", "c");
    expect(index.get("m")).toEqual(["a"]);
    index.delete("m", "zz"); // not there: nothing changes
    index.delete("other", "a");
    expect(index.get("m")).toEqual(["a"]);
    expect(index.size).toBe(1);
    index.delete("m", "a");
    expect(index.get("m")).toEqual([]);
    expect(index.size).toBe(0);
    expect([...index.keys()]).toEqual([]);
  });

  it("returns a copy: changing it leaves the index alone", () => {
    const index = new KeyIndex();
    index.add("m", "a");
    index.add("m", "b");
    index.get("m").push("c");
    expect(index.get("m")).toEqual(["a", "b"]);
  });

  it("behaves like a map of sets under any sequence of adds and deletes", () => {
    const op = fc.record({ add: fc.boolean(), key: fc.constantFrom("k1", "k2", "k3"), value: fc.constantFrom("a", "b", "c", "d") });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const index = new KeyIndex();
        const model = new Map<string, Set<string>>();
        for (const { add, key, value } of ops) {
          if (add) {
            index.add(key, value);
            model.set(key, (model.get(key) ?? new Set()).add(value));
          } else {
            index.delete(key, value);
            model.get(key)?.delete(value);
            if (model.get(key)?.size === 0) model.delete(key);
          }
          expect(index.size).toBe(model.size);
          for (const k of ["k1", "k2", "k3"]) expect(index.get(k)).toEqual([...(model.get(k) ?? [])]);
        }
        expect([...index.keys()].sort()).toEqual([...model.keys()].sort());
      }),
    );
  });
});
