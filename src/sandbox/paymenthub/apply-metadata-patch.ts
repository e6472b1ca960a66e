/** How the emulator's PATCH /members/{id} combines the stored metadata with the request's. */
export type PatchMode = "replace" | "shallow-merge" | "deep-merge";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deepMerge(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    const old = out[key];
    out[key] = isRecord(old) && isRecord(value) ? deepMerge(old, value) : value;
  }
  return out;
}

/**
 * The metadata PaymentHub would store. The doc does not say which; `replace`
 * is the reading under which a partial write loses data, so it is the
 * emulator's default. Arrays and null are values in every mode (null does not delete).
 */
export function applyMetadataPatch(
  current: Readonly<Record<string, unknown>>,
  patch: Readonly<Record<string, unknown>>,
  mode: PatchMode,
): Record<string, unknown> {
  switch (mode) {
    case "replace":
      return structuredClone({ ...patch });
    case "shallow-merge":
      return structuredClone({ ...current, ...patch });
    case "deep-merge":
      return structuredClone(deepMerge({ ...current }, { ...patch }));
  }
}
