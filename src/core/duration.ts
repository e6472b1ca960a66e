/**
 * Human durations as admins write them in the config: `3d`, `12h`, `90s`,
 * `500ms`, `1h30m`. Pure; milliseconds in and out.
 */

const UNIT_MS = {
  w: 7 * 24 * 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  h: 60 * 60 * 1000,
  m: 60 * 1000,
  s: 1000,
  ms: 1,
} as const;

type Unit = keyof typeof UNIT_MS;

/** Largest first; the order parts must appear in, so `30m1h` and `1m2m` (likely typos) are rejected. */
const UNIT_ORDER: readonly Unit[] = ["w", "d", "h", "m", "s", "ms"];

// `ms` before `m` and `s` in the alternation so `500ms` is not read as `500m` + `s`.
const PART = /(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)/y;

/**
 * Parses a duration such as `3d`, `12h`, `90s`, `500ms`, `1h30m` or `1.5h`
 * into milliseconds (rounded to a whole millisecond). Parts go from the
 * largest unit to the smallest, each unit at most once; a bare `0` is zero.
 * Returns `undefined` for anything else (negative, unitless, unknown unit).
 */
export function parseDuration(text: string): number | undefined {
  const input = text.trim();
  if (input === "0") return 0;
  if (input === "") return undefined;
  let total = 0;
  let lastUnitIndex = -1;
  let position = 0;
  while (position < input.length) {
    PART.lastIndex = position;
    const match = PART.exec(input);
    if (match === null) return undefined;
    const amount = Number(match[1]);
    const unit = match[2] as Unit;
    const unitIndex = UNIT_ORDER.indexOf(unit);
    if (unitIndex <= lastUnitIndex) return undefined;
    lastUnitIndex = unitIndex;
    total += amount * UNIT_MS[unit];
    position = PART.lastIndex;
    while (input[position] === " ") position++;
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

const FORMAT_UNITS: readonly Exclude<Unit, "w">[] = ["d", "h", "m", "s", "ms"];

/**
 * Formats milliseconds the way {@link parseDuration} reads them, largest
 * units first without zero parts: `90061001` → `1d1h1m1s1ms`, `0` → `0s`.
 * Weeks are written as days (`14d`), which reads better in logs.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  let rest = Math.round(ms);
  if (rest === 0) return "0s";
  let out = "";
  for (const unit of FORMAT_UNITS) {
    const size = UNIT_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}
