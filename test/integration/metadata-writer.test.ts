import { afterEach, describe, expect, it } from "vitest";
import { createMetadataWriter, metadataPolicyFromConfig, type MetadataWriterOptions } from "../../src/daemon/paymenthub/create-metadata-writer.js";
import type { PatchMode } from "../../src/sandbox/paymenthub/apply-metadata-patch.js";
import { createPaymentHubEmulator, type PaymentHubEmulator } from "../../src/sandbox/paymenthub/create-paymenthub-emulator.js";
import { createPaymentHubClient, type PaymentHubClient } from "../../src/sources/paymenthub/create-paymenthub-client.js";

const API_KEY = "sk_test_writer_0123456789";
const clock = { now: () => Date.parse("2024-01-15T10:30:00Z") };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Line {
  readonly level: string;
  readonly obj: object;
  readonly msg: string;
}

function recordingLogger() {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj, msg });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

async function startEmulator(patchMode: PatchMode = "replace", metadataLimitBytes?: number): Promise<PaymentHubEmulator> {
  const emulator = createPaymentHubEmulator({
    apiKey: API_KEY,
    webhookSecret: "whsec_writer",
    clock,
    patchMode,
    ...(metadataLimitBytes !== undefined ? { metadataLimitBytes } : {}),
  });
  await emulator.start();
  cleanups.push(() => emulator.close());
  return emulator;
}

function clientFor(emulator: PaymentHubEmulator): PaymentHubClient {
  return createPaymentHubClient({ baseUrl: emulator.url, apiKey: API_KEY, timeoutMs: 2_000, clock, retry: { limit: 2, baseDelayMs: 1, maxDelayMs: 5 } });
}

const OWNED = ["minecraft.playtime", "minecraft.last_seen", "minecraft.homes", "discord.level"];

function writerFor(emulator: PaymentHubEmulator, overrides: Partial<MetadataWriterOptions> & { limitBytes?: number } = {}) {
  const logger = recordingLogger();
  const { limitBytes, ...rest } = overrides;
  const writer = createMetadataWriter({
    client: clientFor(emulator),
    policy: metadataPolicyFromConfig({ limit_bytes: limitBytes ?? 16_000, owned: OWNED, trim_drop: [] }),
    logger,
    ...rest,
  });
  return { writer, logger };
}

/** What the admin and other tools keep in the member's metadata: perkbridge must never lose any of it. */
const OTHERS = {
  discord_id: "123456789012345678",
  custom_field: "value",
  minecraft: { uuid: "069a79f4-44e9-4726-a5be-fca90e38aaf5", rank: "vip" },
  discord: { user_id: "123456789012345678", roles: ["premium", "verified"] },
  network: { clan: "elite_warriors", cosmetics: ["hat_crown"] },
};

const patches = (emulator: PaymentHubEmulator) => emulator.calls.filter((c) => c.method === "PATCH");
const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), "utf8");

describe.each([
  ["replace", "read-merge-write"],
  ["deep-merge", "read-merge-write"],
  ["deep-merge", "merge"],
] as const)("metadata writer, emulator patchMode %s, writer mode %s", (patchMode, mode) => {
  it("writes its own keys and keeps every other key as it was", async () => {
    const emulator = await startEmulator(patchMode);
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: structuredClone(OTHERS) }, { emit: false });
    const { writer } = writerFor(emulator, { mode });

    const result = await writer.write("mem_1", { "minecraft.playtime": 4320, "discord.level": 25, "minecraft.last_seen": "2024-01-15" });

    const stored = emulator.getMember("mem_1")?.metadata;
    expect(stored).toEqual({
      ...OTHERS,
      minecraft: { ...OTHERS.minecraft, playtime: 4320, last_seen: "2024-01-15" },
      discord: { ...OTHERS.discord, level: 25 },
    });
    expect(result).toEqual({ kind: "written", bytes: bytesOf(stored), trimmed: [] });
    expect(emulator.calls.map((c) => `${c.method} ${c.status}`)).toEqual(["GET 200", "PATCH 200"]);
  });

  it("sends nothing when nothing changed, and a replayed write leaves the document the same", async () => {
    const emulator = await startEmulator(patchMode);
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: structuredClone(OTHERS) }, { emit: false });
    const { writer } = writerFor(emulator, { mode });
    const owned = { "minecraft.playtime": 10, "discord.level": 3 };

    expect((await writer.write("mem_1", owned)).kind).toBe("written");
    const after = emulator.getMember("mem_1")?.metadata;
    expect(await writer.write("mem_1", owned)).toEqual({ kind: "unchanged" });
    expect(patches(emulator)).toHaveLength(1);
    // Our own PATCH came back as a member.updated event; it changes nothing for the writer.
    expect(emulator.deliveries.map((d) => d.event.type)).toEqual(["member.updated"]);

    // The same PATCH again, as a retry after a lost answer would send it.
    await clientFor(emulator).patchMember("mem_1", after ?? {});
    expect(emulator.getMember("mem_1")?.metadata).toEqual(after);
  });

  it("skips, with a clear reason and no PATCH, when other keys alone fill the budget", async () => {
    const emulator = await startEmulator(patchMode);
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: { ...structuredClone(OTHERS), notes: "n".repeat(16_100) } }, { emit: false });
    const { writer, logger } = writerFor(emulator, { mode });

    const result = await writer.write("mem_1", { "minecraft.playtime": 1 });

    expect(result.kind).toBe("skipped");
    expect(result.kind === "skipped" ? result.reason : "").toMatch(/other keys already take \d+ bytes of the 16000-byte limit/);
    expect(patches(emulator)).toEqual([]);
    expect(logger.lines.some((l) => l.level === "warn" && /^metadata write skipped: other keys already take/.test(l.msg))).toBe(true);
  });
});

describe("metadata writer limits", () => {
  it("trims its own keys to fit and never sends a document over the limit", async () => {
    const emulator = await startEmulator("replace");
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: { ...structuredClone(OTHERS), notes: "n".repeat(1_500) } }, { emit: false });
    const { writer, logger } = writerFor(emulator, { limitBytes: 2_000 });
    const homes = Array.from({ length: 100 }, (_, i) => `home_${i}`);

    const result = await writer.write("mem_1", { "minecraft.playtime": 99, "minecraft.homes": homes });

    const stored = emulator.getMember("mem_1")?.metadata ?? {};
    expect(result.kind).toBe("written");
    expect(bytesOf(stored)).toBeLessThanOrEqual(2_000);
    expect(result).toMatchObject({ bytes: bytesOf(stored), trimmed: [expect.stringMatching(/^shortened minecraft\.homes by \d+ of 100 \(oldest first\)$/)] });
    expect(stored).toMatchObject({ ...OTHERS, notes: "n".repeat(1_500), minecraft: { ...OTHERS.minecraft, playtime: 99 } });
    const kept = (stored["minecraft"] as { homes: string[] }).homes;
    expect(kept[kept.length - 1]).toBe("home_99");
    expect(logger.lines.some((l) => l.msg === "metadata trimmed to fit the size limit")).toBe(true);
  });

  it("takes PaymentHub's 400 for size as final: one PATCH, a clear log line, not retryable", async () => {
    const emulator = await startEmulator("replace", 600);
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: structuredClone(OTHERS) }, { emit: false });
    const { writer, logger } = writerFor(emulator);

    const result = await writer.write("mem_1", { "minecraft.homes": Array.from({ length: 40 }, (_, i) => `home_${i}`) });

    expect(result).toMatchObject({ kind: "failed", retryable: false });
    expect(result.kind === "failed" ? result.reason : "").toMatch(/too large: its limit is lower than sources\.paymenthub\.metadata\.limit_bytes/);
    expect(patches(emulator).map((c) => c.status)).toEqual([400]);
    expect(logger.lines.filter((l) => l.level === "error")).toHaveLength(1);
    expect(emulator.getMember("mem_1")?.metadata).toEqual(OTHERS);
  });

  it("refuses to overwrite an identity key and to write keys it does not own", async () => {
    const emulator = await startEmulator("replace");
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: structuredClone(OTHERS) }, { emit: false });
    const logger = recordingLogger();
    const writer = createMetadataWriter({
      client: clientFor(emulator),
      policy: metadataPolicyFromConfig({ limit_bytes: 16_000, owned: ["discord.user_id", ...OWNED], trim_drop: [] }),
      logger,
    });

    expect(await writer.write("mem_1", { "discord.user_id": "999999999999999999" })).toMatchObject({ kind: "skipped", reason: expect.stringMatching(/never overwrites identity keys/) });
    expect(await writer.write("mem_1", { "network.clan": "mine" })).toMatchObject({ kind: "skipped", reason: expect.stringMatching(/does not own metadata key network\.clan/) });
    expect(patches(emulator)).toEqual([]);
  });

  it("reports a member gone as skipped and an unreachable API as a retryable failure", async () => {
    const emulator = await startEmulator("replace");
    emulator.addMember({ id: "mem_1", email: "a@example.com", metadata: {} }, { emit: false });
    const { writer } = writerFor(emulator);

    expect(await writer.write("mem_missing", { "minecraft.playtime": 1 })).toMatchObject({ kind: "skipped", reason: expect.stringMatching(/does not exist at PaymentHub/) });
    emulator.faults.failNext(3, 503);
    expect(await writer.write("mem_1", { "minecraft.playtime": 1 })).toMatchObject({ kind: "failed", retryable: true, reason: expect.stringMatching(/503/) });
    expect(patches(emulator)).toEqual([]);
    expect(await writer.write("mem_1", { "minecraft.playtime": 1 })).toMatchObject({ kind: "written" });
  });
});
