/** How a guild treats plan roles edited by hand (config `enforce`). */
export type EnforceMode = "restore" | "exclusive" | "off";

/** Role changes that put a member back in line with what perkbridge decided. */
export interface DriftActions {
  readonly grant: readonly string[];
  readonly revoke: readonly string[];
}

/**
 * Decides what to do after a human changed a member's roles (DESIGN.md,
 * invariant 2). `restore` puts back entitled plan roles that were removed;
 * `exclusive` also removes plan roles from whoever is not entitled to them;
 * `off` leaves everything. Only roles in `managedRoles` are ever touched.
 * `before` is `null` when the bot did not know the member's earlier roles:
 * then every missing entitled role counts as removed.
 */
export function driftActions(
  enforce: EnforceMode,
  entitledRoles: ReadonlySet<string>,
  managedRoles: ReadonlySet<string>,
  before: ReadonlySet<string> | null,
  after: ReadonlySet<string>,
): DriftActions {
  if (enforce === "off") return { grant: [], revoke: [] };
  const grant = [...entitledRoles]
    .filter((role) => managedRoles.has(role) && !after.has(role) && (before === null || before.has(role)))
    .sort();
  if (enforce === "restore") return { grant, revoke: [] };
  const revoke = [...after].filter((role) => managedRoles.has(role) && !entitledRoles.has(role)).sort();
  return { grant, revoke };
}
