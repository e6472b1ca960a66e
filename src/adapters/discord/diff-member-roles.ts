import type { ExpectedChanges } from "./expected-changes.js";

/** A change of a member's plan roles that perkbridge did not make itself. */
export interface ForeignRoleChange {
  /** Plan roles the member gained. When `before` is unknown: every plan role the member now has. */
  readonly added: readonly string[];
  /** Plan roles the member lost; empty when `before` is unknown. */
  readonly removed: readonly string[];
  readonly before: readonly string[] | null;
  readonly after: readonly string[];
}

/**
 * Compares a member's roles around a GUILD_MEMBER_UPDATE, keeps only plan
 * roles (`managed`), and drops the changes perkbridge itself made (consuming
 * them from `expected`). Returns `null` when nothing foreign is left.
 */
export function diffMemberRoles(
  ids: { readonly guildId: string; readonly userId: string },
  before: readonly string[] | null,
  after: readonly string[],
  managed: ReadonlySet<string>,
  expected: ExpectedChanges,
): ForeignRoleChange | null {
  const afterSet = new Set(after);
  const planAfter = after.filter((role) => managed.has(role));
  if (before === null) {
    // Without the earlier roles the event cannot be diffed; if it matches an edit of ours it is our echo.
    let echo = false;
    for (const roleId of managed) {
      if (expected.consume({ ...ids, roleId, add: afterSet.has(roleId) })) echo = true;
    }
    return echo ? null : { added: planAfter, removed: [], before: null, after: [...after] };
  }
  const beforeSet = new Set(before);
  const added = planAfter.filter((role) => !beforeSet.has(role) && !expected.consume({ ...ids, roleId: role, add: true }));
  const removed = before.filter((role) => managed.has(role) && !afterSet.has(role) && !expected.consume({ ...ids, roleId: role, add: false }));
  if (added.length === 0 && removed.length === 0) return null;
  return { added, removed, before: [...before], after: [...after] };
}
