// The state behind one emulated Minecraft server: who exists (the profile lookup), who is
// online, the vanilla whitelist and LuckPerms. The RCON and status emulators share it, so a
// player set online shows in `list` and in the server list ping alike.
import { createLuckPermsModel, type LuckPermsModel, type PlayerDirectory } from "./luckperms-model.js";

/** A player profile: what Mojang's profile lookup would return. */
export interface Profile {
  readonly name: string;
  /** Dashed lower-case UUID. */
  readonly uuid: string;
}

/** Options of {@link createMinecraftWorld}. */
export interface MinecraftWorldOptions {
  /** LuckPerms groups besides `default`. */
  readonly groups?: readonly string[];
  /** Players the profile lookup knows. */
  readonly profiles?: readonly Profile[];
  readonly maxPlayers?: number;
}

/** One emulated server's state. */
export interface MinecraftWorld {
  readonly luckperms: LuckPermsModel;
  /** Whitelisted names, keyed by lower-case name. */
  readonly whitelist: Map<string, string>;
  readonly maxPlayers: number;
  addProfile(profile: Profile): void;
  setOnline(name: string, online: boolean): void;
  onlinePlayers(): Profile[];
  /** Runs one console command as the vanilla server (plus LuckPerms) would, returning the reply text. */
  execute(command: string): string;
}

/** Creates an empty world. */
export function createMinecraftWorld(options: MinecraftWorldOptions = {}): MinecraftWorld {
  const luckperms = createLuckPermsModel(options.groups === undefined ? {} : { groups: options.groups });
  const profiles = new Map<string, Profile>();
  const online = new Set<string>();
  const whitelist = new Map<string, string>();
  const maxPlayers = options.maxPlayers ?? 20;
  for (const p of options.profiles ?? []) profiles.set(p.name.toLowerCase(), { name: p.name, uuid: p.uuid.toLowerCase() });

  const directory: PlayerDirectory = {
    uuidOf: (name) => profiles.get(name.toLowerCase())?.uuid,
    nameOf: (uuid) => [...profiles.values()].find((p) => p.uuid === uuid.toLowerCase())?.name,
    isOnline: (uuid) => [...online].some((n) => profiles.get(n)?.uuid === uuid.toLowerCase()),
  };

  const onlinePlayers = (): Profile[] =>
    [...online].map((n) => profiles.get(n)).filter((p): p is Profile => p !== undefined);

  function whitelistCommand(args: readonly string[]): string {
    const [action, name] = args;
    switch (action?.toLowerCase()) {
      case "add":
      case "remove": {
        if (name === undefined) return `Unknown or incomplete command, see below for error\nwhitelist ${action}<--[HERE]`;
        const profile = profiles.get(name.toLowerCase());
        if (!profile) return "That player does not exist";
        const key = profile.name.toLowerCase();
        if (action.toLowerCase() === "add") {
          if (whitelist.has(key)) return "Player is already whitelisted";
          whitelist.set(key, profile.name);
          return `Added ${profile.name} to the whitelist`;
        }
        if (!whitelist.has(key)) return "Player is not whitelisted";
        whitelist.delete(key);
        return `Removed ${profile.name} from the whitelist`;
      }
      case "list": {
        if (whitelist.size === 0) return "There are no whitelisted players";
        return `There are ${whitelist.size} whitelisted player(s): ${[...whitelist.values()].join(", ")}`;
      }
      case "on":
        return "Whitelist is now turned on";
      case "off":
        return "Whitelist is now turned off";
      default:
        return `Unknown or incomplete command, see below for error\nwhitelist ${action ?? ""}<--[HERE]`;
    }
  }

  return {
    luckperms,
    whitelist,
    maxPlayers,
    addProfile(profile) {
      profiles.set(profile.name.toLowerCase(), { name: profile.name, uuid: profile.uuid.toLowerCase() });
    },
    setOnline(name, isOnline) {
      const key = name.toLowerCase();
      if (!profiles.has(key)) throw new Error(`emulator: no profile named ${name}; addProfile first`);
      if (isOnline) online.add(key);
      else online.delete(key);
    },
    onlinePlayers,
    execute(command) {
      const words = command.trim().replace(/^\//, "").split(/ +/);
      const [head, ...args] = words;
      switch (head?.toLowerCase()) {
        case "lp":
        case "luckperms":
        case "lpv":
        case "lpb":
          return luckperms.execute(args, directory);
        case "whitelist":
          return whitelistCommand(args);
        case "list": {
          const players = onlinePlayers();
          const withUuids = args[0] === "uuids";
          const names = players.map((p) => (withUuids ? `${p.name} (${p.uuid})` : p.name)).join(", ");
          return `There are ${players.length} of a max of ${maxPlayers} players online: ${names}`;
        }
        case "say":
          return "";
        case "give": {
          const [target, item, count] = args;
          const profile = target === undefined ? undefined : profiles.get(target.toLowerCase());
          if (!profile || !online.has(profile.name.toLowerCase())) return "No player was found";
          return `Gave ${count ?? "1"} [${item ?? "?"}] to ${profile.name}`;
        }
        default:
          return `Unknown or incomplete command, see below for error\n${command}<--[HERE]`;
      }
    },
  };
}
