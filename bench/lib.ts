/** One printed figure of `npm run bench`, as written to bench/results.json. */
export interface BenchEntry {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The target as text, e.g. "< 10 ms"; omitted where the issue sets none. */
  readonly target?: string;
  readonly better: "lower" | "higher";
  /** The figure measured in the same run to compare against (e.g. bare node:http). */
  readonly baseline?: number;
}

/** A benchmark file's default export. */
export type Bench = () => Promise<readonly BenchEntry[]>;

/** Nearest-rank percentile of an unsorted sample; `p` in 0..100. */
export function percentile(sample: readonly number[], p: number): number {
  if (sample.length === 0) return Number.NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Milliseconds since `start` (a `process.hrtime.bigint()` reading). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
