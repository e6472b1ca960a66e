/** Marks for yes/no cells: healthy, complete. */
export const GLYPH = { ok: "✓", bad: "✗" } as const;

/** A column of {@link formatTable}. Numbers read best right-aligned. */
export interface Column {
  readonly header: string;
  readonly align?: "left" | "right";
}

/** Options of {@link formatTable}. */
export interface TableOptions {
  /** Put before every line, header included; default "". */
  readonly indent?: string;
}

/**
 * Plain text table: a header line, then one line per row, columns padded to their widest cell and
 * separated by two spaces, no trailing spaces, each line ending in "\n". Cells are made safe for a
 * terminal first (see {@link sanitizeCell}). Rows shorter than the header get empty cells.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[], options: TableOptions = {}): string {
  const indent = options.indent ?? "";
  const cells = [columns.map((c) => sanitizeCell(c.header)), ...rows.map((row) => columns.map((_, i) => sanitizeCell(row[i] ?? "")))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => displayWidth(line[i] ?? ""))));
  return cells
    .map((line) => {
      const padded = line.map((cell, i) => {
        const gap = " ".repeat((widths[i] ?? 0) - displayWidth(cell));
        return columns[i]?.align === "right" ? gap + cell : cell + gap;
      });
      return (indent + padded.join("  ")).trimEnd() + "\n";
    })
    .join("");
}

/**
 * One line of printable text. Reasons, names and ids come from billing platforms and game servers,
 * so a control character (an ANSI escape in a member's name) must not reach the operator's terminal
 * or break the table's lines.
 */
export function sanitizeCell(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/\r\n|[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ");
}

/** Columns a cell takes: code points, so ✓ and é count as one. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const _ of text) width += 1;
  return width;
}

/** `1,234`: counts read at a glance. */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** `3 grants`, `1 grant`. */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : pluralForm}`;
}

/** A window or delay in its largest whole unit: `1h`, `1m`, `90s`, `250ms`. */
export function formatDuration(ms: number): string {
  const units: readonly (readonly [number, string])[] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "m"],
    [1_000, "s"],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return ms >= 1_000 ? `${Math.round(ms / 1_000)}s` : `${ms}ms`;
}

/** How long ago `time` was, roughly: `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`; `in 5m` for the future. */
export function formatAgo(time: number, now: number): string {
  const delta = now - time;
  const abs = Math.abs(delta);
  if (abs < 1_000) return "just now";
  const amount =
    abs < 60_000 ? `${Math.floor(abs / 1_000)}s` : abs < 3_600_000 ? `${Math.floor(abs / 60_000)}m` : abs < 86_400_000 ? `${Math.floor(abs / 3_600_000)}h` : `${Math.floor(abs / 86_400_000)}d`;
  return delta >= 0 ? `${amount} ago` : `in ${amount}`;
}

/** UTC to the second: `2025-01-31 12:00:05Z`. */
export function formatTime(time: number): string {
  // The range a Date can hold; a daemon of another version could send anything.
  if (!(Math.abs(time) <= 8.64e15)) return "?";
  return new Date(time).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}

/** `a, b, c +2 more`: member lists can be long. */
export function formatList(items: readonly string[], max = 3): string {
  if (items.length <= max) return items.join(", ");
  return `${items.slice(0, max).join(", ")} +${items.length - max} more`;
}
