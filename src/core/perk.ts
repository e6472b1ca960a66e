/** The kinds of target a perk can live on; one adapter each. */
export type TargetKind = "discord" | "minecraft" | "fivem" | "http";

/** Which of a member's identities receives a perk. `member` is the billing member itself (used by the `http` target). */
export type SubjectKind = "discord" | "minecraft" | "fivem" | "member";

/**
 * One grantable thing on one target: a Discord role in a guild, a Minecraft
 * group or whitelist entry on one server, a FiveM whitelist entry, queue
 * priority or ace group on one server, or an event for an HTTP endpoint.
 */
export interface Perk {
  readonly target: TargetKind;
  /** Guild id, server name or endpoint name: where the perk lives. */
  readonly scope: string;
  /** `role`, `group`, `whitelist`, `command`, `priority`, `ace`, `event`. */
  readonly kind: string;
  /** Role id, group name, ace group, priority level, command name; empty for a whitelist entry. */
  readonly value: string;
  /** Target-specific settings (command templates, `once`, `online_only`, …), read by the adapter only. */
  readonly params?: Readonly<Record<string, string | number | boolean>>;
}

/** Which identity a perk of this target is granted to. */
export function subjectKindOf(perk: Pick<Perk, "target">): SubjectKind {
  switch (perk.target) {
    case "discord":
      return "discord";
    case "minecraft":
      return "minecraft";
    case "fivem":
      return "fivem";
    case "http":
      return "member";
  }
}

/** Stable identity of a perk, independent of its params: `discord:123:role:456`. */
export function perkKey(perk: Pick<Perk, "target" | "scope" | "kind" | "value">): string {
  return `${perk.target}:${perk.scope}:${perk.kind}:${perk.value}`;
}

/** Rules of one plan, as configured. Durations are milliseconds. */
export interface PlanRules {
  readonly id: string;
  readonly perks: readonly Perk[];
  /** Perks while the member is on trial; defaults to `perks`. */
  readonly trialPerks?: readonly Perk[];
  /** How long a canceled or deleted member keeps the perks; default 0. */
  readonly graceMs: number;
  /** Keep perks until the paid period ends where the platform says when. */
  readonly honorPaidPeriod: boolean;
}
