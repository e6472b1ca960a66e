import { createDiscordTarget } from "../../adapters/discord/create-discord-target.js";
import { allPlanPerks, type LaneFactory } from "./lane-factory.js";

/** The Discord target: plan roles in each configured guild. */
export const createDiscordLane: LaneFactory = async (loaded, context) => {
  const discord = loaded.config.targets.discord;
  if (!discord) return undefined;
  const managed = new Map<string, Set<string>>();
  for (const perk of allPlanPerks(loaded.plans)) {
    if (perk.target !== "discord") continue;
    let set = managed.get(perk.scope);
    if (!set) managed.set(perk.scope, (set = new Set()));
    set.add(perk.value);
  }
  const restApi = context.baseUrls["discord"] ?? discord.api_base;
  return createDiscordTarget({
    token: discord.token,
    ...(restApi === undefined ? {} : { restApi }),
    guilds: discord.guilds,
    managedRoles: (guild) => managed.get(guild) ?? new Set(),
    logger: context.logger,
    clock: context.clock,
  });
};
