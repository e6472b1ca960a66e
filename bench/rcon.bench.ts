// RCON throughput to one emulated Minecraft server on loopback: raw commands through our client,
// then whole target actions (render, send, classify), one at a time and over a small pool of
// connections (a Minecraft server reads one packet at a time per connection, so parallelism
// means more connections, not pipelining).
import { createMinecraftTarget } from "../src/adapters/minecraft/create-minecraft-target.js";
import { createRconClient } from "../src/adapters/minecraft/rcon-client.js";
import type { PerkAction } from "../src/core/ports.js";
import { createRconEmulator } from "../src/sandbox/minecraft/create-rcon-emulator.js";
import { createMinecraftWorld } from "../src/sandbox/minecraft/minecraft-world.js";
import { msSince, type Bench, type BenchEntry } from "./lib.js";

const PASSWORD = "bench";
const COMMANDS = 3000;
const POOL = 4;

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

async function rate(total: number, concurrency: number, run: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await run(next++);
    }),
  );
  return Math.round(total / (msSince(start) / 1000));
}

const bench: Bench = async () => {
  const world = createMinecraftWorld({ groups: ["vip"] });
  const emulator = await createRconEmulator({ password: PASSWORD, world });
  const results: BenchEntry[] = [];
  try {
    const single = createRconClient({ host: emulator.host, port: emulator.port, password: PASSWORD });
    await single.command("list"); // login outside the measurement
    const sequential = await rate(COMMANDS, 1, (i) => single.command(`lp user ${uuid(i)} parent add vip`));
    await single.close();
    results.push({ name: "rcon: commands, sequential, 1 connection", value: sequential, unit: "commands/s", better: "higher" });

    const pooled = createRconClient({ host: emulator.host, port: emulator.port, password: PASSWORD, connections: POOL });
    await Promise.all(Array.from({ length: POOL }, () => pooled.command("list")));
    const concurrent = await rate(COMMANDS, POOL * 4, (i) => pooled.command(`lp user ${uuid(i)} parent remove vip`));
    await pooled.close();
    results.push({
      name: `rcon: commands, ${POOL * 4} concurrent, ${POOL} connections`,
      value: concurrent,
      unit: "commands/s",
      better: "higher",
      baseline: sequential,
    });

    for (const connections of [1, POOL]) {
      const target = await createMinecraftTarget({
        servers: {
          survival: {
            rcon: { host: emulator.host, port: emulator.port, password: PASSWORD },
            listIntervalMs: 0,
            connections,
          },
        },
      });
      const action = (i: number): PerkAction => ({
        id: `a${i}`,
        type: i % 2 === 0 ? "grant" : "revoke",
        subject: `minecraft:${uuid(i >> 1)}`,
        perk: { target: "minecraft", scope: "survival", kind: "group", value: "vip" },
        members: ["paymenthub:mem_1"],
        reason: "plan_premium active",
        identities: { minecraft: { uuid: uuid(i >> 1), name: "bob" } },
      });
      const concurrency = connections === 1 ? 1 : connections * 4;
      const value = await rate(COMMANDS, concurrency, async (i) => {
        const result = await target.apply(action(i));
        if (result.kind !== "granted" && result.kind !== "revoked") throw new Error(`unexpected ${JSON.stringify(result)}`);
      });
      await target.stop();
      results.push({
        name: `minecraft target: actions, ${concurrency} concurrent, ${connections} connection(s)`,
        value,
        unit: "actions/s",
        better: "higher",
      });
    }
  } finally {
    await emulator.close();
  }
  return results;
};

export default bench;
