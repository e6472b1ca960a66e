/**
 * Merging perkbridge's own keys into a member's metadata within the billing
 * platform's size limit (DESIGN.md invariant 7). PaymentHub: "Du kannst bis zu
 * 16KB JSON Data pro Member speichern" — 16,000 or 16,384 bytes, the doc does
 * not say; 16,000 loses nothing under either reading.
 */

/** The namespaces the PaymentHub examples use; perkbridge writes nowhere else. */
export const METADATA_NAMESPACES: readonly string[] = ["discord", "minecraft", "fivem"];

export const DEFAULT_METADATA_LIMIT_BYTES = 16_000;

/**
 * Where identities live in PaymentHub metadata, flat and nested (the layouts
 * `extractIdentities` reads). Never trimmed, never overwritten.
 */
export const DEFAULT_IDENTITY_PATHS: readonly string[] = [
  "discord_id",
  "minecraft_uuid",
  "minecraft_name",
  "fivem_license",
  "fivem_steam_id",
  "discord.user_id",
  "minecraft.uuid",
  "minecraft.name",
  "fivem.license",
  "fivem.steam_id",
  "fivem.discord",
  "fivem.identifiers",
];

/** How perkbridge shrinks its own keys when a merged document would be over the limit. */
export interface MetadataTrimPolicy {
  /** Owned paths (or paths inside one) dropped first, in this order. */
  readonly drop: readonly string[];
  /** Owned arrays lose their first (oldest) elements. */
  readonly arrays: "oldest-first";
}

/** Which metadata keys perkbridge may write, and how big the document may get. */
export interface MetadataPolicy {
  /** Largest UTF-8 JSON document ever sent; default {@link DEFAULT_METADATA_LIMIT_BYTES}. */
  readonly limitBytes?: number;
  /**
   * Dotted paths perkbridge owns, inside {@link METADATA_NAMESPACES}
   * (`minecraft.playtime`), in order of importance: when nothing else helps,
   * the last listed are dropped first.
   */
  readonly ownedPaths: readonly string[];
  /**
   * Identity keys (see {@link DEFAULT_IDENTITY_PATHS}): never trimmed, never
   * overwritten. One that is also owned (a link flow) is written only where it
   * is absent or already holds the same value.
   */
  readonly identityPaths: readonly string[];
  /** Default: drop nothing specific, then arrays oldest-first, then whole keys. */
  readonly trim?: MetadataTrimPolicy;
}

/** Outcome of {@link mergeOwnedMetadata}: a document to send, or why nothing may be sent. */
export type MergeResult =
  | {
      readonly ok: true;
      /** The whole metadata document to send; shares unchanged subtrees with `current`. */
      readonly document: Record<string, unknown>;
      /** UTF-8 length of `JSON.stringify(document)`; at most the limit. */
      readonly bytes: number;
      /** `false` when the document equals `current`: no PATCH is needed. */
      readonly changed: boolean;
      /** What was shrunk to fit, for a log line: `dropped minecraft.homes`. */
      readonly trimmed: readonly string[];
    }
  | { readonly ok: false; readonly reason: string; readonly bytes: number };

/** Outcome of {@link ownedPatch}. */
export type PatchResult =
  | {
      readonly ok: true;
      /** Only perkbridge's keys, nested by path. */
      readonly patch: Record<string, unknown>;
      readonly bytes: number;
      readonly trimmed: readonly string[];
    }
  | { readonly ok: false; readonly reason: string; readonly bytes: number };

type JsonObject = Record<string, unknown>;

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** UTF-8 length of a JS string, without allocating (core has no Buffer). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3; // includes a lone surrogate, which an encoder writes as U+FFFD (3 bytes)
  }
  return bytes;
}

/** Bytes of `JSON.stringify(value)` encoded as UTF-8; 0 for what JSON cannot represent (`undefined`). */
export function utf8JsonBytes(value: unknown): number {
  const text = JSON.stringify(value) as string | undefined;
  return text === undefined ? 0 : utf8Length(text);
}

/** Structural equality of JSON values; object key order does not matter. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** True for values that survive a JSON round trip unchanged (no Date, NaN, undefined, class instance, cycle). */
function isJsonValue(value: unknown, ancestors: Set<object> = new Set()): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object": {
      if (value === null) return true;
      if (ancestors.has(value)) return false;
      ancestors.add(value);
      let ok: boolean;
      if (Array.isArray(value)) ok = value.every((item) => isJsonValue(item, ancestors));
      else {
        const proto = Object.getPrototypeOf(value) as unknown;
        ok =
          (proto === Object.prototype || proto === null) &&
          Object.values(value).every((item) => isJsonValue(item, ancestors));
      }
      ancestors.delete(value);
      return ok;
    }
    default:
      return false;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

function validSegments(path: string): boolean {
  // `__proto__` would reach the prototype through plain assignment.
  return path.split(".").every((s) => s.length > 0 && s !== "__proto__");
}

function isInside(path: string, ancestor: string): boolean {
  return path.startsWith(`${ancestor}.`);
}

/**
 * What is wrong with a policy, as lines an admin can act on; empty when it is
 * usable. {@link mergeOwnedMetadata} refuses to write under a policy with problems.
 */
export function validateMetadataPolicy(policy: MetadataPolicy): readonly string[] {
  const problems: string[] = [];
  const limit = policy.limitBytes ?? DEFAULT_METADATA_LIMIT_BYTES;
  if (!Number.isInteger(limit) || limit < 2) {
    problems.push(`limit ${limit} is not a whole number of bytes of at least 2 (the size of "{}")`);
  }
  const seen = new Set<string>();
  for (const path of policy.ownedPaths) {
    const namespace = path.split(".")[0] ?? "";
    if (!validSegments(path) || !path.includes(".") || !METADATA_NAMESPACES.includes(namespace)) {
      problems.push(`owned path ${JSON.stringify(path)} is not a dotted path inside ${METADATA_NAMESPACES.join(", ")}`);
    }
    if (seen.has(path)) problems.push(`owned path ${path} is listed twice`);
    seen.add(path);
    for (const other of policy.ownedPaths) {
      if (isInside(other, path)) problems.push(`owned path ${other} lies inside owned path ${path}; own one or the other`);
    }
    for (const identity of policy.identityPaths) {
      if (isInside(identity, path)) problems.push(`owned path ${path} contains identity key ${identity}, which perkbridge never overwrites`);
      if (isInside(path, identity)) problems.push(`owned path ${path} lies inside identity key ${identity}, which perkbridge never overwrites`);
    }
  }
  for (const identity of policy.identityPaths) {
    if (!validSegments(identity)) problems.push(`identity path ${JSON.stringify(identity)} is not a dotted path`);
  }
  for (const path of policy.trim?.drop ?? []) {
    if (!policy.ownedPaths.some((owned) => path === owned || isInside(path, owned))) {
      problems.push(`trim path ${path} is not among the owned paths: perkbridge only trims keys it owns`);
    } else if (policy.identityPaths.includes(path)) {
      problems.push(`trim path ${path} is an identity key, which is never trimmed`);
    }
  }
  return problems;
}

/**
 * A copy-on-write view of a metadata document: objects are copied on the way
 * to a change, so everything the merge does not touch stays the very same
 * value as in `current`.
 */
class Draft {
  readonly root: JsonObject;
  /** Objects this draft made and may mutate. */
  private readonly mine = new WeakSet<object>();
  /** Objects the merge created (a namespace that was missing); removed again when trimming empties them. */
  private readonly created = new WeakSet<object>();

  constructor(current: Readonly<JsonObject>) {
    this.root = { ...current };
    this.mine.add(this.root);
  }

  get(path: string): unknown {
    let node: unknown = this.root;
    for (const key of path.split(".")) {
      if (!isPlainObject(node) || !Object.hasOwn(node, key)) return undefined;
      node = node[key];
    }
    return node;
  }

  private writable(parent: JsonObject, key: string, child: JsonObject): JsonObject {
    if (this.mine.has(child)) return child;
    // Spread defines own data properties, so even a `__proto__` key of user data is copied as data.
    const copy = { ...child };
    this.mine.add(copy);
    parent[key] = copy;
    return copy;
  }

  /** Sets `path`, creating missing objects; a reason when a non-object is in the way. */
  set(path: string, value: unknown): string | undefined {
    const keys = path.split(".");
    const last = keys.pop() as string;
    let node = this.root;
    for (const [i, key] of keys.entries()) {
      const child = Object.hasOwn(node, key) ? node[key] : undefined;
      if (child === undefined) {
        const fresh: JsonObject = {};
        this.mine.add(fresh);
        this.created.add(fresh);
        node[key] = fresh;
        node = fresh;
      } else if (isPlainObject(child)) {
        node = this.writable(node, key, child);
      } else {
        const at = keys.slice(0, i + 1).join(".");
        return `metadata key ${at} holds ${describe(child)}, not an object; perkbridge will not replace it to write ${path}`;
      }
    }
    node[last] = value;
    return undefined;
  }

  /** Removes `path` if present, and any object the merge created that this leaves empty. */
  delete(path: string): void {
    if (this.get(path) === undefined) return;
    const keys = path.split(".");
    const last = keys.pop() as string;
    const spine: [JsonObject, string][] = [];
    let node = this.root;
    for (const key of keys) {
      spine.push([node, key]);
      node = this.writable(node, key, node[key] as JsonObject);
    }
    delete node[last];
    for (const [parent, key] of spine.reverse()) {
      const child = parent[key] as JsonObject;
      if (!this.created.has(child) || Object.keys(child).length > 0) break;
      delete parent[key];
    }
  }
}

function fail(reason: string, bytes: number): MergeResult & { ok: false } {
  return { ok: false, reason, bytes };
}

/**
 * Writes perkbridge's owned keys into `current` and returns the whole document
 * to send (for platforms whose PATCH replaces metadata). Every key perkbridge
 * does not own is kept exactly as it was; an owned value of `undefined` removes
 * that key; an owned path absent from `owned` keeps its current value.
 *
 * When the result would be over the limit, perkbridge's own keys shrink in a
 * fixed order until it fits: first owned keys this write does not supply
 * (stale ones), then the ones it does — within each, `trim.drop` in order, then
 * owned arrays from their oldest (first) end, then whole keys from the last
 * owned path backwards. Stale keys go first so that merging the result again
 * gives the same document. Identity keys are never trimmed; if the other keys
 * alone are over the limit the write is refused.
 */
export function mergeOwnedMetadata(
  current: Readonly<Record<string, unknown>>,
  owned: Readonly<Record<string, unknown>>,
  policy: MetadataPolicy,
): MergeResult {
  const problems = validateMetadataPolicy(policy);
  if (problems.length > 0) return fail(`metadata policy: ${problems.join("; ")}`, utf8JsonBytes(current));
  const limit = policy.limitBytes ?? DEFAULT_METADATA_LIMIT_BYTES;
  const identities = new Set(policy.identityPaths);
  for (const key of Object.keys(owned)) {
    if (!policy.ownedPaths.includes(key)) {
      return fail(`perkbridge does not own metadata key ${key}: it is not among the owned paths`, utf8JsonBytes(current));
    }
    const value = owned[key];
    if (value !== undefined && !isJsonValue(value)) {
      return fail(`value for metadata key ${key} is not plain JSON (finite numbers, strings, booleans, null, arrays, plain objects)`, utf8JsonBytes(current));
    }
  }

  const draft = new Draft(current);
  const written = new Set<string>();
  for (const path of policy.ownedPaths) {
    if (!Object.hasOwn(owned, path)) continue;
    const value = owned[path];
    if (identities.has(path)) {
      const existing = draft.get(path);
      if (value === undefined || jsonEqual(existing, value)) continue;
      if (existing !== undefined) {
        return fail(`identity key ${path} already holds a different value; perkbridge never overwrites identity keys`, utf8JsonBytes(current));
      }
    }
    if (value === undefined) {
      draft.delete(path);
      continue;
    }
    const conflict = draft.set(path, JSON.parse(JSON.stringify(value)) as unknown);
    if (conflict !== undefined) return fail(conflict, utf8JsonBytes(current));
    if (!identities.has(path)) written.add(path);
  }

  let bytes = utf8JsonBytes(draft.root);
  const trimmed: string[] = [];
  const trimmable = policy.ownedPaths.filter((p) => !identities.has(p));
  const stale = new Set(trimmable.filter((p) => !written.has(p)));
  const drops = policy.trim?.drop ?? [];
  for (const group of [stale, written]) {
    if (bytes <= limit) break;
    for (const path of drops) {
      if (bytes <= limit) break;
      const owner = trimmable.find((p) => path === p || isInside(path, p));
      if (owner === undefined || !group.has(owner) || draft.get(path) === undefined) continue;
      draft.delete(path);
      trimmed.push(`dropped ${path}`);
      bytes = utf8JsonBytes(draft.root);
    }
    for (const path of trimmable) {
      if (bytes <= limit) break;
      const value = draft.get(path);
      if (!group.has(path) || !Array.isArray(value) || value.length === 0) continue;
      // Only this array's text changes, so the total follows from its own size.
      const others = bytes - utf8JsonBytes(value);
      let lo = 1;
      let hi = value.length;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (others + utf8JsonBytes(value.slice(mid)) <= limit) hi = mid;
        else lo = mid + 1;
      }
      const kept = value.slice(lo);
      draft.set(path, kept);
      trimmed.push(`shortened ${path} by ${lo} of ${value.length} (oldest first)`);
      bytes = others + utf8JsonBytes(kept);
    }
    for (const path of [...trimmable].reverse()) {
      if (bytes <= limit) break;
      if (!group.has(path) || draft.get(path) === undefined) continue;
      draft.delete(path);
      trimmed.push(`dropped ${path}`);
      bytes = utf8JsonBytes(draft.root);
    }
  }
  if (bytes > limit) {
    return fail(`other keys already take ${bytes} bytes of the ${limit}-byte limit; perkbridge's write is skipped`, bytes);
  }
  return { ok: true, document: draft.root, bytes, changed: !jsonEqual(current, draft.root), trimmed };
}

/**
 * The body for platforms that merge a PATCH deeply into stored metadata: only
 * perkbridge's keys, nested by path, trimmed like {@link mergeOwnedMetadata}
 * to fit the limit on its own. `undefined` values are left out: a deep merge
 * cannot delete, so neither a removal nor a trimmed key clears what the
 * platform already stores.
 */
export function ownedPatch(owned: Readonly<Record<string, unknown>>, policy: MetadataPolicy): PatchResult {
  const defined = Object.fromEntries(Object.entries(owned).filter(([, v]) => v !== undefined));
  const result = mergeOwnedMetadata({}, defined, policy);
  if (!result.ok) return result;
  return { ok: true, patch: result.document, bytes: result.bytes, trimmed: result.trimmed };
}
