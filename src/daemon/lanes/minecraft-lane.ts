import { createMinecraftTarget } from "../../adapters/minecraft/create-minecraft-target.js";
import { allPlanPerks, type LaneFactory } from "./lane-factory.js";

/** The Minecraft target: LuckPerms groups, whitelist entries and commands over RCON, per server. */
export const createMinecraftLane: LaneFactory = async (loaded, context) => {
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
  return createMinecraftTarget({ servers, logger: context.logger, clock: context.clock });
};
