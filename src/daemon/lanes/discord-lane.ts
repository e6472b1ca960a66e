import type { RoleChangeContext } from "../../adapters/discord/create-discord-target.js";
import { driftActions, type EnforceMode } from "../../adapters/discord/drift-actions.js";
import { PerkbridgeError } from "../../core/errors.js";
import type { Member } from "../../core/member.js";
import type { Perk } from "../../core/perk.js";
import { LARGE_COLLECTION_SHARDS, type Collection, type Store } from "../store/create-store.js";
import { describePerks, perksViewOf } from "./describe-perks.js";
import { allPlanPerks, type LaneFactory } from "./lane-factory.js";

const REASON = {
  restore: "restore: plan role removed by hand",
  exclusive: "exclusive: plan role not justified by any member",
} as const;

/**
 * The Discord target: plan roles in each configured guild, wired to the
 * reconcile engine for rejoin restore, drift repair and `/perks`.
 */
export const createDiscordLane: LaneFactory = async (loaded, context, engine) => {
  const discord = loaded.config.targets.discord;
  if (!discord) return undefined;
  // Loaded only when configured: discord.js alone adds ~0.5 s and ~40 MB to every start.
  const { createDiscordTarget } = await import("../../adapters/discord/create-discord-target.js");
  const { logger } = context;
  const managed = new Map<string, Set<string>>();
  for (const perk of allPlanPerks(loaded.plans)) {
    if (perk.target !== "discord") continue;
    let set = managed.get(perk.scope);
    if (!set) managed.set(perk.scope, (set = new Set()));
    set.add(perk.value);
  }
  const managedRoles = (guild: string): ReadonlySet<string> => managed.get(guild) ?? new Set();
  const enforceOf = new Map<string, EnforceMode>(discord.guilds.map((g) => [g.id, g.enforce]));
  const members = membersCollection(context.store);

  async function onMemberJoin(guild: string, user: string): Promise<void> {
    // The engine is built before targets start, so this is only a guard: a join seen without
    // an engine is dropped, and what waited for it waits for the next join or `perkbridge retry`.
    const e = engine();
    if (!e) return;
    const n = await e.subjectReturned(`discord:${user}`, { target: "discord", scope: guild, restore: true, cause: "rejoin" });
    if (n > 0) logger.info({ guild, user, actions: n }, "discord member joined: perks restored");
  }

  async function onRolesChanged(guild: string, user: string, added: readonly string[], removed: readonly string[], change: RoleChangeContext): Promise<void> {
    const mode = enforceOf.get(guild) ?? "restore";
    const e = engine();
    if (mode === "off" || !e) return;
    const subject = `discord:${user}`;
    const entitled = new Map<string, Perk>();
    for (const entry of e.entriesOf(subject, { target: "discord", scope: guild })) entitled.set(entry.perk.value, entry.perk);
    const plan = driftActions(mode, new Set(entitled.keys()), managedRoles(guild), change.before === null ? null : new Set(change.before), new Set(change.after));
    const repairs = [
      ...plan.grant.map((role) => ({ type: "grant" as const, subject, perk: entitled.get(role) ?? rolePerk(guild, role), reason: REASON.restore })),
      ...plan.revoke.map((role) => ({ type: "revoke" as const, subject, perk: rolePerk(guild, role), reason: REASON.exclusive, members: [] })),
    ];
    if (repairs.length === 0) return;
    for (const r of repairs) logger.info({ guild, user, role: r.perk.value, mode, repair: r.type, added, removed }, r.reason);
    await e.enqueueRepairs(repairs, "drift");
  }

  async function perks(user: string, guild: string): Promise<string> {
    const e = engine();
    if (!e) return "perkbridge is starting; try again in a moment.";
    const linked: string[] = [];
    // A scan, as the engine keeps no index of identities; `/perks` is rare next to the reconciles.
    if (members !== undefined) for await (const [key, member] of members.scan()) if (member.identities.discord === user) linked.push(key);
    return describePerks(perksViewOf(e, user, guild, linked));
  }

  const restApi = context.baseUrls["discord"] ?? discord.api_base;
  return createDiscordTarget({
    token: discord.token,
    ...(restApi === undefined ? {} : { restApi }),
    guilds: discord.guilds,
    managedRoles,
    logger,
    clock: context.clock,
    onMemberJoin,
    onRolesChanged,
    describePerks: perks,
  });
};

/**
 * The collection the engine keeps members in (declaring it again returns it), so `/perks` also
 * finds members whose record names the user but who hold no Discord perk yet. A store opened
 * already cannot declare it: `/perks` then knows members through their grants only.
 */
function membersCollection(store: Store): Collection<Member> | undefined {
  try {
    return store.collection<Member>("members", { shards: LARGE_COLLECTION_SHARDS });
  } catch (error) {
    if (error instanceof PerkbridgeError && error.code === "ERR_STATE_USAGE") return undefined;
    throw error;
  }
}

function rolePerk(guild: string, role: string): Perk {
  return { target: "discord", scope: guild, kind: "role", value: role };
}
