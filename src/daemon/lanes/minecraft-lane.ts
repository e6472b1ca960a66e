import type { MinecraftTarget, PlayerOnlineEvent } from "../../adapters/minecraft/create-minecraft-target.js";
import type { ReconcileEngine } from "../reconcile/reconcile-engine.js";
import { allPlanPerks, type LaneFactory } from "./lane-factory.js";

/**
 * The Minecraft target: LuckPerms groups, whitelist entries and commands over RCON, per server.
 * A player seen online wakes what waits for them: `online_only` commands on that server, and
 * whitelist entries on any server that waited for their name (learned from `list uuids`).
 */
export const createMinecraftLane: LaneFactory = async (loaded, context, engine) => {
  const minecraft = loaded.config.targets.minecraft;
  if (!minecraft || Object.keys(minecraft.servers).length === 0) return undefined;
  const perks = allPlanPerks(loaded.plans);
  const servers = Object.fromEntries(
    Object.entries(minecraft.servers).map(([name, s]) => [
      name,
      {
        rcon: s.rcon,
        ...(s.status ? { status: s.status } : {}),
        commandTimeoutMs: s.command_timeout,
        listIntervalMs: s.list_interval,
        commands: s.commands,
        groups: [...new Set(perks.filter((p) => p.target === "minecraft" && p.scope === name && p.kind === "group").map((p) => p.value))],
      },
    ]),
  );
  // Loaded only when configured: minecraft-protocol alone adds ~0.3 s and ~30 MB to every start.
  const { createMinecraftTarget } = await import("../../adapters/minecraft/create-minecraft-target.js");
  const target = await createMinecraftTarget({ servers, logger: context.logger, clock: context.clock });
  target.onPlayerOnline((event) => {
    const current = engine();
    // Before the engine exists there is no queue to wake; its start-up runs what is due anyway.
    if (!current) return;
    wakeWaiting(current, target, event).catch((error: unknown) => {
      context.logger.error({ err: error, server: event.server }, "could not wake the actions waiting for a player who came online");
    });
  });
  return target;
};

/** Requeues the waiting actions a player coming online can unblock; returns how many. */
async function wakeWaiting(engine: ReconcileEngine, target: MinecraftTarget, event: PlayerOnlineEvent): Promise<number> {
  const wakes = new Map<string, Set<string>>();
  const wake = (subject: string, scope: string): void => {
    let scopes = wakes.get(subject);
    if (!scopes) wakes.set(subject, (scopes = new Set()));
    scopes.add(scope);
  };
  const name = event.name.toLowerCase();
  const uuid = event.uuid?.toLowerCase();
  if (uuid !== undefined) wake(`minecraft:${uuid}`, event.server);
  for (const rec of engine.queue.open()) {
    if (rec.state !== "waiting" || rec.lane !== "minecraft") continue;
    const identity = rec.action.identities.minecraft;
    if (uuid !== undefined && rec.action.subject === `minecraft:${uuid}`) {
      // The name is learned from `list uuids` on any server, so a whitelist entry elsewhere
      // that waited for it (not-linked) can run now too.
      if (rec.last?.kind === "not-linked" && target.knownName(uuid) !== undefined) wake(rec.action.subject, rec.action.perk.scope);
    } else if (uuid === undefined && identity?.name?.toLowerCase() === name && rec.action.perk.scope === event.server) {
      // A server that lists names only (`list` without UUIDs): match the name the member gave.
      wake(rec.action.subject, event.server);
    }
  }
  let woken = 0;
  for (const [subject, scopes] of wakes) {
    for (const scope of scopes) {
      woken += await engine.subjectReturned(subject, { target: "minecraft", scope, restore: false, cause: "player online" });
    }
  }
  return woken;
}
