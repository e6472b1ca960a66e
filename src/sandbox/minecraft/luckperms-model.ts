// A small model of LuckPerms for the emulator: groups that exist, users and their parent groups,
// and the replies of the handful of commands perkbridge sends, worded as LuckPerms 5 words them
// in English (luckperms_en.properties). Replies carry the `[LP] ` prefix, without colour codes,
// as they reach an RCON client on a server that strips formatting.

/** Looks players up by name or UUID (the world knows who has joined). */
export interface PlayerDirectory {
  /** Dashed lower-case UUID of a player who has joined at least once, by name (any case). */
  uuidOf(name: string): string | undefined;
  nameOf(uuid: string): string | undefined;
  isOnline(uuid: string): boolean;
}

/** One LuckPerms user. */
export interface LuckPermsUser {
  readonly uuid: string;
  readonly parents: Set<string>;
}

/** The LuckPerms state of one emulated server (or one shared LuckPerms database). */
export interface LuckPermsModel {
  readonly groups: Set<string>;
  readonly users: Map<string, LuckPermsUser>;
  /** Parent groups of a user, sorted; `default` for a user LuckPerms has never stored. */
  parentsOf(uuid: string): string[];
  /** Runs the arguments after `lp` and returns the reply text. */
  execute(args: readonly string[], players: PlayerDirectory): string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PREFIX = "[LP] ";
const CONTEXT = "in context global.";

/** Creates the model; `default` always exists, as in LuckPerms. */
export function createLuckPermsModel(options: { groups?: readonly string[] } = {}): LuckPermsModel {
  const groups = new Set<string>(["default", ...(options.groups ?? []).map((g) => g.toLowerCase())]);
  const users = new Map<string, LuckPermsUser>();

  const lines = (...text: string[]): string => text.map((t) => PREFIX + t).join("\n");

  function userFor(id: string, players: PlayerDirectory): LuckPermsUser | string {
    let uuid: string | undefined;
    if (UUID.test(id)) uuid = id.toLowerCase();
    else if (/^[A-Za-z0-9_]{1,16}$/.test(id)) uuid = players.uuidOf(id);
    else return lines(`${id} is not a valid username/uuid.`);
    if (uuid === undefined) return lines(`A user for ${id} could not be found.`);
    let user = users.get(uuid);
    if (!user) {
      // LuckPerms loads (and, on first change, saves) any UUID it is given.
      user = { uuid, parents: new Set(["default"]) };
      users.set(uuid, user);
    }
    return user;
  }

  const display = (user: LuckPermsUser, players: PlayerDirectory): string => players.nameOf(user.uuid) ?? user.uuid;

  function userCommand(args: readonly string[], players: PlayerDirectory): string {
    const [id, section, action, groupArg] = args;
    if (id === undefined || section?.toLowerCase() !== "parent" || action === undefined) {
      return lines("Command Usage - user <user> parent <add|remove|info> ...");
    }
    const found = userFor(id, players);
    if (typeof found === "string") return found;
    const who = display(found, players);
    switch (action.toLowerCase()) {
      case "info": {
        const parents = [...found.parents].sort();
        if (parents.length === 0) return lines(`${who} does not have any parents defined.`);
        return [`${PREFIX}${who}'s Parents:  (page 1 of 1 - ${parents.length} entries)`, ...parents.map((p) => `> ${p}`)].join("\n");
      }
      case "add":
      case "remove": {
        if (groupArg === undefined) return lines(`Command Usage - user <user> parent ${action} <group>`);
        const group = groupArg.toLowerCase();
        if (!/^[a-z0-9_.-]+$/.test(group)) return lines(`${groupArg} is not a valid group name.`);
        if (!groups.has(group)) return lines(`A group named ${group} could not be found.`);
        if (action.toLowerCase() === "add") {
          if (found.parents.has(group)) return lines(`${who} already inherits from ${group} ${CONTEXT}`);
          found.parents.add(group);
          return lines(`${who} now inherits permissions from ${group} ${CONTEXT}`);
        }
        if (!found.parents.has(group)) return lines(`${who} does not inherit from ${group} ${CONTEXT}`);
        found.parents.delete(group);
        return lines(`${who} no longer inherits permissions from ${group} ${CONTEXT}`);
      }
      default:
        return lines("Command not recognised.");
    }
  }

  return {
    groups,
    users,
    parentsOf(uuid) {
      return [...(users.get(uuid.toLowerCase())?.parents ?? ["default"])].sort();
    },
    execute(args, players) {
      const [sub, ...rest] = args;
      switch (sub?.toLowerCase()) {
        case undefined:
          return lines("Running LuckPerms v5.4.141.", "Use /lp help to view available commands.");
        case "info":
          return lines(
            "Running LuckPerms v5.4.141 by Luck.",
            "-  Platform: Bukkit",
            `-  Local Data: ${users.size} users, ${groups.size} groups, 0 tracks`,
          );
        case "user":
          return userCommand(rest, players);
        case "group": {
          const [name, action] = rest;
          if (name === undefined || action?.toLowerCase() !== "info") return lines("Command Usage - group <group> info");
          const group = name.toLowerCase();
          if (!groups.has(group)) return lines(`A group named ${group} could not be found.`);
          return lines(`> Group Info: ${group}`, `- Display Name: ${group}`, "- Weight: None");
        }
        case "creategroup": {
          const name = rest[0]?.toLowerCase();
          if (name === undefined) return lines("Command Usage - creategroup <name>");
          if (groups.has(name)) return lines(`${name} already exists!`);
          groups.add(name);
          return lines(`${name} was successfully created.`);
        }
        case "listgroups": {
          // LuckPerms 4 style, one unpaginated listing: the long reply of a large setup.
          const sorted = [...groups].sort();
          return [
            `${PREFIX}Groups: (name, weight, tracks)`,
            ...sorted.map((g) => `${PREFIX}-  ${g} - 0`),
          ].join("\n");
        }
        default:
          return lines("Command not recognised.");
      }
    },
  };
}
