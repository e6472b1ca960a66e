/**
 * A map from a key to a set of strings, for the daemon's indexes over the ledger (member → ledger
 * keys, subject → ledger keys). Almost every key holds one value: a member justifies one grant per
 * perk of its plan, a subject holds a few. A key with one value stores the string itself; a `Set`
 * (about 130 bytes even when it holds one string) is made only for a second value. At 100k members
 * that is some 26 MB less heap.
 */
export class KeyIndex {
  readonly #map = new Map<string, string | Set<string>>();

  /** Keys holding at least one value. */
  get size(): number {
    return this.#map.size;
  }

  add(key: string, value: string): void {
    const current = this.#map.get(key);
    if (current === undefined) this.#map.set(key, value);
    else if (typeof current !== "string") current.add(value);
    else if (current !== value) this.#map.set(key, new Set([current, value]));
  }

  delete(key: string, value: string): void {
    const current = this.#map.get(key);
    if (current === undefined) return;
    if (typeof current === "string") {
      if (current === value) this.#map.delete(key);
      return;
    }
    current.delete(value);
    // Back to the compact form, so an index that shrinks gives its memory back.
    if (current.size === 1) this.#map.set(key, current.values().next().value as string);
  }

  /** Keys holding at least one value. */
  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  /** The values of `key`, in insertion order (a fresh array). */
  get(key: string): string[] {
    const current = this.#map.get(key);
    if (current === undefined) return [];
    return typeof current === "string" ? [current] : [...current];
  }
}
