/**
 * The shard of `key` among `shards`: FNV-1a (32 bit) over the key's UTF-16
 * code units, modulo the shard count. For ASCII keys this equals FNV-1a over
 * the bytes. The result is stable across processes, platforms and Node
 * versions: it decides which file a key lives in, so it must never change.
 */
export function shardOf(key: string, shards: number): number {
  return fnv1a32(key) % shards;
}

/** FNV-1a, 32 bit, unsigned. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
