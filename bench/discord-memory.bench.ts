// Memory of the Discord target in a guild of 100k members: the real discord.js client against the
// emulator, granting a role to more and more distinct members. With discord.js's caches bounded
// (members and users capped, messages and presences off) the heap must stay flat however many
// members perkbridge has touched. Heap figures are after a forced GC. The emulator lives in the
// same process: its calls log is emptied before each reading, and the one role it stores per
// granted member (~0.1 KB) is part of the small slope that remains. Slow on purpose: discord.js
// keeps Discord's 50 requests/s, and each grant is a member fetch plus a PUT.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createDiscordTarget } from "../src/adapters/discord/create-discord-target.js";
import type { PerkAction } from "../src/core/ports.js";
import { createDiscordEmulator } from "../src/sandbox/discord/create-discord-emulator.js";
import type { Bench, BenchEntry } from "./lib.js";

const MEMBERS = 100_000;
const CHECKPOINTS = [1_000, 2_000, 4_000];
const GUILD = "500000000000000100";
const ROLE = { premium: "500000000000000302", bot: "500000000000000310" };
const TOKEN = "discord-memory-bench-token";
const userId = (i: number): string => `5000000000${String(100000 + i).padStart(8, "0")}`;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const bench: Bench = async () => {
  const discord = createDiscordEmulator({
    botToken: TOKEN,
    guilds: [
      {
        id: GUILD,
        name: "Big guild",
        ownerId: "500000000000000900",
        roles: [
          { id: ROLE.premium, name: "Premium", position: 1, permissions: "0" },
          { id: ROLE.bot, name: "perkbridge", position: 2, permissions: (1n << 28n).toString() },
        ],
        members: Array.from({ length: MEMBERS }, (_, i) => ({ user: { id: userId(i), username: `p${i}` }, roles: [] })),
        botMemberRoles: [ROLE.bot],
      },
    ],
  });
  await discord.start();
  const target = await createDiscordTarget({
    token: TOKEN,
    restApi: `${discord.url}/api`,
    guilds: [{ id: GUILD, enforce: "restore" }],
    managedRoles: () => new Set([ROLE.premium]),
  });
  const entries: BenchEntry[] = [];
  try {
    await target.start();
    discord.clearCalls();
    const baseline = heapMb();
    let done = 0;
    for (const checkpoint of CHECKPOINTS) {
      const batch: Promise<unknown>[] = [];
      for (; done < checkpoint; done++) {
        const action: PerkAction = {
          id: `a${done}`,
          type: "grant",
          subject: `discord:${userId(done)}`,
          perk: { target: "discord", scope: GUILD, kind: "role", value: ROLE.premium },
          members: [`paymenthub:mem_${done}`],
          reason: "plan_premium active",
          identities: { discord: userId(done) },
        };
        batch.push(target.apply(action));
        if (batch.length >= 16) await Promise.all(batch.splice(0));
      }
      await Promise.all(batch);
      discord.clearCalls();
      entries.push({
        name: `discord target heap growth after granting ${checkpoint} distinct members (guild of ${MEMBERS / 1000}k)`,
        value: Math.round((heapMb() - baseline) * 10) / 10,
        unit: "MB",
        better: "lower",
        target: "flat (bounded caches)",
      });
    }
    const granted = CHECKPOINTS[CHECKPOINTS.length - 1] as number;
    const ok = Array.from({ length: granted }, (_, i) => discord.memberRoles(GUILD, userId(i))?.includes(ROLE.premium) === true).filter(Boolean).length;
    entries.push({ name: "discord memory bench: roles actually granted", value: ok, unit: "members", better: "higher", target: `= ${granted}` });
  } finally {
    await target.stop();
    await discord.close();
  }
  return entries;
};

export default bench;
