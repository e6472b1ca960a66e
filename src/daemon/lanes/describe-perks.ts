import type { Desired } from "../../core/desired-perks.js";
import { subjectFor } from "../../core/identities.js";
import type { LedgerEntry } from "../../core/ledger.js";
import type { Member } from "../../core/member.js";
import { subjectKindOf, type Perk, type TargetKind } from "../../core/perk.js";
import type { PendingPerk } from "../../core/plan-actions.js";
import type { PerkAction, SyncResult } from "../../core/ports.js";
import type { ActionState } from "../reconcile/action-queue.js";

/** One billing membership that names or justifies the Discord user. */
export interface PerksMembership {
  readonly key: string;
  readonly member: Member;
  readonly desired: Desired;
  /** Desired perks that wait for an identity the member record lacks. */
  readonly pending: readonly PendingPerk[];
}

/** An unfinished action for one of the user's subjects. */
export interface PerksOpenAction {
  readonly state: ActionState;
  readonly action: Pick<PerkAction, "type" | "perk">;
  readonly last?: { readonly kind: SyncResult["kind"]; readonly reason?: string };
}

/** Everything `/perks` shows about one Discord user, gathered by {@link perksViewOf}. */
export interface PerksView {
  readonly userId: string;
  /** The guild the command was run in; its roles are shown as "here". */
  readonly guildId: string;
  readonly memberships: readonly PerksMembership[];
  /** Ledger entries of the user's subjects: the Discord account and the memberships' other identities. */
  readonly entries: readonly LedgerEntry[];
  readonly open: readonly PerksOpenAction[];
}

/** What {@link perksViewOf} reads from the reconcile engine; `ReconcileEngine` satisfies it. */
export interface PerksSource {
  membersOf(subject: string): string[];
  member(key: string): Member | undefined;
  explain(key: string): { desired: Desired; pending: readonly PendingPerk[] } | undefined;
  entriesOf(subject: string, filter?: { target?: string; scope?: string }): LedgerEntry[];
  readonly queue: { open(): Iterable<{ readonly state: ActionState; readonly action: PerkAction; readonly last?: PerksOpenAction["last"] }> };
}

/** Discord's limit for a message is 2,000 characters. */
const MAX_LENGTH = 1900;

/**
 * Gathers the `/perks` view of a Discord user: the memberships that justify a
 * perk of `discord:<user>` plus `linked` (members whose record names the user,
 * found by the caller), their perks on every identity, and what still waits.
 */
export function perksViewOf(source: PerksSource, userId: string, guildId: string, linked: Iterable<string> = []): PerksView {
  const discordSubject = `discord:${userId}`;
  const keys = new Set([...source.membersOf(discordSubject), ...linked]);
  const memberships: PerksMembership[] = [];
  const subjects = new Set([discordSubject]);
  for (const key of [...keys].sort()) {
    const member = source.member(key);
    const explained = source.explain(key);
    if (!member || !explained) continue;
    memberships.push({ key, member, desired: explained.desired, pending: explained.pending });
    for (const target of ["minecraft", "fivem", "http"] as const satisfies readonly TargetKind[]) {
      const subject = subjectFor({ target }, member);
      if (subject !== undefined) subjects.add(subject);
    }
  }
  const entries = [...subjects].flatMap((subject) => source.entriesOf(subject));
  const open: PerksOpenAction[] = [];
  for (const rec of source.queue.open()) {
    if (rec.state === "done" || rec.state === "superseded" || !subjects.has(rec.action.subject)) continue;
    open.push({ state: rec.state, action: rec.action, ...(rec.last ? { last: rec.last } : {}) });
  }
  return { userId, guildId, memberships, entries, open };
}

/** How a perk reads to a player. */
export function perkLabel(perk: Perk, guildId: string): string {
  switch (perk.target) {
    case "discord":
      // A role mention renders as the role's current name in the server it belongs to (the reply
      // allows no mentions, so nobody is pinged); elsewhere it cannot, so the id is shown.
      return perk.scope === guildId ? `Discord role <@&${perk.value}> here` : `Discord role ${perk.value} in server ${perk.scope}`;
    case "minecraft":
      if (perk.kind === "whitelist") return `Minecraft whitelist on ${perk.scope}`;
      if (perk.kind === "group") return `Minecraft group ${perk.value} on ${perk.scope}`;
      return `Minecraft ${perk.value} on ${perk.scope}`;
    case "fivem":
      if (perk.kind === "whitelist") return `FiveM whitelist on ${perk.scope}`;
      if (perk.kind === "priority") return `FiveM queue priority ${perk.value} on ${perk.scope}`;
      return `FiveM ${perk.kind} ${perk.value} on ${perk.scope}`;
    case "http":
      return `${perk.scope} ${perk.kind}`;
  }
}

/** The player-facing form of a missing identity (the core's wording is for admins). */
function missingAccount(perk: Perk): string {
  switch (subjectKindOf(perk)) {
    case "discord":
      return "waiting: no Discord account on your member record";
    case "minecraft":
      return "waiting: no Minecraft account on your member record";
    case "fivem":
      return "waiting: no FiveM identifier on your member record";
    case "member":
      return "waiting for your member record";
  }
}

function openLine(open: PerksOpenAction, guildId: string): string {
  const label = perkLabel(open.action.perk, guildId);
  const verb = open.action.type === "grant" ? "" : "removal of ";
  switch (open.state) {
    case "waiting":
      return `${verb}${label}: waiting${open.last?.reason ? ` (${open.last.reason})` : ""}`;
    case "parked":
      return `${verb}${label}: stuck${open.last?.reason ? ` (${open.last.reason})` : ""}; the server admins have been told how to fix it`;
    default:
      return `${verb}${label}: on its way`;
  }
}

function statusLine(m: PerksMembership): string {
  const plan = m.member.planId ?? "no plan";
  const status = m.member.gone === true ? "deleted" : m.member.status;
  let line = `• ${plan}, ${status} (${m.member.source} ${m.member.id})`;
  if (m.desired.kind === "entitled" && m.desired.next && m.desired.next.cause !== "trial-ends") {
    line += `: perks end ${new Date(m.desired.next.at).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  } else if (m.desired.kind === "frozen") {
    line += ": under review by the server admins";
  }
  return line;
}

/**
 * The private answer to `/perks`: the user's memberships (plan and status),
 * the perks perkbridge holds for them now, and anything still waiting, with
 * why. Plain text, short, under Discord's message limit.
 */
export function describePerks(view: PerksView): string {
  if (view.memberships.length === 0 && view.entries.length === 0) {
    return (
      "I can't find a membership linked to your Discord account. " +
      `To link it, put your Discord user id (${view.userId}) in your member record ` +
      "(the discord_id field of your account on the billing site, or ask the server staff); your perks follow within a minute."
    );
  }
  const lines: string[] = [view.memberships.length === 1 ? "Your membership:" : "Your memberships:"];
  for (const m of view.memberships) lines.push(statusLine(m));
  const current = [...new Set(view.entries.map((e) => perkLabel(e.perk, view.guildId)))].sort();
  lines.push(current.length === 0 ? "Perks now: none" : `Perks now: ${current.join("; ")}`);
  const pending = [
    ...view.memberships.flatMap((m) => m.pending.map((p) => `${perkLabel(p.perk, view.guildId)}: ${missingAccount(p.perk)}`)),
    ...view.open.map((o) => openLine(o, view.guildId)),
  ];
  const unique = [...new Set(pending)];
  if (unique.length > 0) {
    lines.push("Pending:");
    for (const line of unique) lines.push(`• ${line}`);
  }
  const text = lines.join("\n");
  return text.length > MAX_LENGTH ? `${text.slice(0, MAX_LENGTH - 1)}…` : text;
}
