import { randomBytes } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PerkbridgeError } from "../../core/errors.js";
import { loadConfig } from "../../daemon/config/load-config.js";
import { createDaemon, type Daemon } from "../../daemon/create-daemon.js";
import { createLogger } from "../../daemon/create-logger.js";
import { perkbridgeComponents } from "../../daemon/create-perkbridge.js";
import type { ReconcileEngine } from "../../daemon/reconcile/reconcile-engine.js";
import { signPayload } from "../../sources/paymenthub/verify-signature.js";
import {
  DEMO_ENV,
  DEMO_GROUP,
  DEMO_GUILD,
  DEMO_PEOPLE,
  DEMO_ROLES,
  demoConfigYaml,
  startDemoWorld,
  type DemoPerson,
  type DemoSecrets,
  type DemoWorld,
} from "./start-demo-world.js";

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Where the narration goes; each call is one or more whole lines. */
  readonly write: (text: string) => void;
  /** After the story, keep everything running (and print its URLs) until `signal` aborts. */
  readonly keep?: boolean;
  /** Aborting stops the story (or the `keep` wait), cleans up and resolves. */
  readonly signal?: AbortSignal;
  /** Receives the generated secret values before anything runs, e.g. to redact them from output. */
  readonly onSecrets?: (secrets: readonly string[]) => void;
  /** Makes one secret value; default 24 random bytes as hex. */
  readonly generateSecret?: () => string;
  /** How long each effect may take before the step fails; default 5 s (plus the grace where one applies). */
  readonly effectTimeoutMs?: number;
  /** The premium plan's grace period in seconds; default 3. */
  readonly graceSeconds?: number;
  /** Where the temporary directory is made; default the OS temp directory. */
  readonly tmpRoot?: string;
}

/** How a demo run ended. */
export interface DemoResult {
  /** Every check passed (and the run was not interrupted). */
  readonly ok: boolean;
  readonly interrupted: boolean;
  /** Checks that passed (each printed with ✓). */
  readonly passed: number;
  /** The temporary directory the run used; removed by the time the result is returned. */
  readonly tempDir: string;
  readonly elapsedMs: number;
}

/** A step's effect did not show up in time; the message says what was expected and what was seen. */
class DemoStepError extends PerkbridgeError {
  constructor(message: string) {
    super("ERR_DEMO_STEP", message);
  }
}

class DemoInterrupted extends PerkbridgeError {
  constructor() {
    super("ERR_DEMO_INTERRUPTED", "interrupted");
  }
}

const POLL_MS = 5;
const PLAN = "plan_premium";

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * `perkbridge demo`: starts the emulators and the real daemon on loopback with a generated config
 * in a temporary directory, plays a short story (purchase, trial, failed payment with grace,
 * cancellation, forged webhook, Discord rejoin), narrating each effect with the delay measured on
 * the emulators, then stops everything and removes the directory. Never throws: a failure is
 * printed with ✗ and reported in the result.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const say = (line = ""): void => options.write(`${line}\n`);
  const generate = options.generateSecret ?? (() => randomBytes(24).toString("hex"));
  const timeoutMs = options.effectTimeoutMs ?? 5_000;
  const graceSeconds = options.graceSeconds ?? 3;
  const signal = options.signal;

  const secrets: DemoSecrets = {
    paymenthubApiKey: generate(),
    paymenthubWebhookSecret: generate(),
    discordToken: generate(),
    rconPassword: generate(),
  };
  options.onSecrets?.(Object.values(secrets));

  const tempDir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), "perkbridge-demo-"));
  const configPath = join(tempDir, "perkbridge.yaml");
  const logPath = join(tempDir, "perkbridge.log");
  let world: DemoWorld | undefined;
  let daemon: Daemon | undefined;
  let logFd: number | undefined;
  let passed = 0;
  let ok = false;
  let interrupted = false;

  try {
    say("perkbridge demo: a billing platform, a Discord server and a Minecraft server, all emulated on 127.0.0.1.");
    say("No account, token or network needed; everything is removed at the end.");
    say();

    world = await startDemoWorld(secrets);
    await writeFile(configPath, demoConfigYaml(world, join(tempDir, "state"), graceSeconds), { mode: 0o600 });
    const env = {
      [DEMO_ENV.paymenthubApiKey]: secrets.paymenthubApiKey,
      [DEMO_ENV.paymenthubWebhookSecret]: secrets.paymenthubWebhookSecret,
      [DEMO_ENV.discordToken]: secrets.discordToken,
      [DEMO_ENV.rconPassword]: secrets.rconPassword,
    };
    const loaded = await loadConfig(configPath, env);

    // The daemon's JSON log goes to a file, so only the narration reaches the terminal.
    const fd = openSync(logPath, "a", 0o600);
    logFd = fd;
    const logger = createLogger({ level: "info", format: "json", secrets: loaded.secrets, destination: { write: (line: string) => void writeSync(fd, line) } });
    let engine: ReconcileEngine | undefined;
    daemon = await createDaemon(loaded.config, {
      secrets: loaded.secrets,
      logger,
      env,
      components: perkbridgeComponents(loaded, { onEngine: (e) => (engine = e) }),
    });
    if (engine === undefined) throw new PerkbridgeError("ERR_DEMO_ENGINE", "the daemon started without a reconcile engine");
    const eng: ReconcileEngine = engine;
    world.paymenthub.setWebhookUrl(`${daemon.url}/webhooks/paymenthub`);

    const w = world;
    say(`  PaymentHub      ${w.paymenthub.url}  (webhooks go to the daemon)`);
    say(`  Discord         ${w.discord.url}  (guild "${DEMO_GUILD.name}", bot role above ${DEMO_ROLES.premium.name})`);
    say(`  Minecraft       "survival": RCON ${w.rcon.host}:${w.rcon.port}, status ${w.status.host}:${w.status.port}, LuckPerms group ${DEMO_GROUP}`);
    say(`  perkbridge      ${daemon.url}  (the real daemon, generated config, temporary state)`);
    say(`  Plan ${PLAN}: Discord role ${DEMO_ROLES.premium.name} + LuckPerms group ${DEMO_GROUP}; trial: the role only; grace ${graceSeconds} s`);
    say();

    // ── Observing the emulators ──────────────────────────────────────────
    const hasRole = (p: DemoPerson): boolean => w.discord.memberRoles(DEMO_GUILD.id, p.discordId)?.includes(DEMO_ROLES.premium.id) === true;
    const hasGroup = (p: DemoPerson): boolean => w.minecraft.luckperms.parentsOf(p.minecraft.uuid).includes(DEMO_GROUP);
    const roleText = (p: DemoPerson): string => `roles [${(w.discord.memberRoles(DEMO_GUILD.id, p.discordId) ?? []).join(", ")}]`;
    const groupText = (p: DemoPerson): string => `groups [${w.minecraft.luckperms.parentsOf(p.minecraft.uuid).join(", ")}]`;

    const waitFor = async (condition: () => boolean, limitMs: number): Promise<boolean> => {
      const deadline = performance.now() + limitMs;
      for (;;) {
        if (signal?.aborted) throw new DemoInterrupted();
        if (condition()) return true;
        if (performance.now() >= deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    };
    /** Waits for an effect, then prints it with the delay since `since`. */
    const expectEffect = async (text: string, condition: () => boolean, since: number, seen: () => string, limitMs = timeoutMs): Promise<void> => {
      if (!(await waitFor(condition, limitMs))) throw new DemoStepError(`${text}: expected within ${formatMs(limitMs)}, but saw ${seen()}`);
      passed += 1;
      say(`   ✓ ${text} after ${formatMs(performance.now() - since)}`);
    };
    /** Checks something that must already be so. */
    const expectNow = (text: string, condition: () => boolean, seen: () => string): void => {
      if (!condition()) throw new DemoStepError(`${text}: expected, but saw ${seen()}`);
      passed += 1;
      say(`   ✓ ${text}`);
    };
    /** Until the daemon has nothing left to do: webhooks delivered, engine idle, no action in flight. */
    const settle = async (): Promise<void> => {
      const quiet = async (): Promise<boolean> => {
        await w.paymenthub.settled();
        await eng.idle();
        return ![...eng.queue.all()].some((r) => r.state === "queued" || r.state === "sending");
      };
      const deadline = performance.now() + timeoutMs;
      while (!(await quiet())) {
        if (signal?.aborted) throw new DemoInterrupted();
        if (performance.now() >= deadline) throw new DemoStepError(`the daemon still had work queued after ${formatMs(timeoutMs)}`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    };
    const statusSeen = (p: DemoPerson, status: string) => (): boolean => eng.member(`paymenthub:${p.name}`)?.status === status;
    const addMember = (p: DemoPerson, extra: { status: string; trial_ends_at?: string }): void => {
      w.paymenthub.addMember({
        id: p.name,
        email: `${p.name}@example.com`,
        name: p.name,
        plan_id: PLAN,
        metadata: { discord_id: p.discordId, minecraft_uuid: p.minecraft.uuid, minecraft_name: p.minecraft.name },
        ...extra,
      });
    };
    const steps: string[] = [];
    const step = (title: string): void => {
      steps.push(title);
      say(`${steps.length}. ${title}`);
    };

    // ── The story ────────────────────────────────────────────────────────
    const { alice, bob, carol, dave, mallory } = DEMO_PEOPLE;

    step("alice buys premium on PaymentHub");
    let t = performance.now();
    addMember(alice, { status: "active" });
    await expectEffect(`Discord role ${DEMO_ROLES.premium.name} granted to alice`, () => hasRole(alice), t, () => roleText(alice));
    await expectEffect(`LuckPerms group ${DEMO_GROUP} granted to alice on survival`, () => hasGroup(alice), t, () => groupText(alice));

    step("bob starts a free trial");
    t = performance.now();
    addMember(bob, { status: "trial", trial_ends_at: new Date(Date.now() + 7 * 86_400_000).toISOString() });
    await expectEffect(`Discord role ${DEMO_ROLES.premium.name} granted to bob (the trial perk)`, () => hasRole(bob), t, () => roleText(bob));
    await settle();
    expectNow(`no LuckPerms group for bob: the group is for paying members`, () => !hasGroup(bob), () => groupText(bob));

    step("carol's renewal payment fails");
    for (const p of [carol, dave]) addMember(p, { status: "active" });
    await expectEffect("carol and dave (both premium) have their perks", () => [carol, dave].every((p) => hasRole(p) && hasGroup(p)), performance.now(), () => `carol ${roleText(carol)} ${groupText(carol)}, dave ${roleText(dave)} ${groupText(dave)}`);
    say(`   PaymentHub marks the subscription canceled after the failed payment;`);
    say(`   perkbridge keeps the perks for the ${graceSeconds} s grace, then revokes.`);
    t = performance.now();
    w.paymenthub.cancelSubscription(carol.name, "payment_failed", { emit: false });
    w.paymenthub.recordPayment(carol.name, { succeeded: false });
    await expectEffect("perkbridge looked carol up and read status canceled", statusSeen(carol, "canceled"), t, () => `status ${eng.member(`paymenthub:${carol.name}`)?.status ?? "unknown"}`);
    expectNow("carol keeps her role and group during the grace", () => hasRole(carol) && hasGroup(carol), () => `${roleText(carol)} ${groupText(carol)}`);
    const graceLimit = graceSeconds * 1000 + timeoutMs;
    await expectEffect(`Discord role ${DEMO_ROLES.premium.name} revoked from carol`, () => !hasRole(carol), t, () => roleText(carol), graceLimit);
    await expectEffect(`LuckPerms group ${DEMO_GROUP} revoked from carol`, () => !hasGroup(carol), t, () => groupText(carol), graceLimit);

    step("dave cancels his subscription");
    t = performance.now();
    w.paymenthub.cancelSubscription(dave.name, "canceled_by_user");
    await expectEffect("perkbridge read status canceled", statusSeen(dave, "canceled"), t, () => `status ${eng.member(`paymenthub:${dave.name}`)?.status ?? "unknown"}`);
    expectNow("dave keeps his role and group during the grace", () => hasRole(dave) && hasGroup(dave), () => `${roleText(dave)} ${groupText(dave)}`);
    await expectEffect(`Discord role ${DEMO_ROLES.premium.name} revoked from dave`, () => !hasRole(dave), t, () => roleText(dave), graceLimit);
    await expectEffect(`LuckPerms group ${DEMO_GROUP} revoked from dave`, () => !hasGroup(dave), t, () => groupText(dave), graceLimit);

    step("someone forges a webhook: \"mallory bought premium\", signed with a guessed secret");
    t = performance.now();
    const forged = JSON.stringify({
      id: "evt_forged_0001",
      type: "member.created",
      created: new Date().toISOString(),
      data: { member: { id: mallory.name, email: "mallory@example.com", name: mallory.name, plan_id: PLAN, status: "active", created_at: new Date().toISOString(), metadata: { discord_id: mallory.discordId, minecraft_uuid: mallory.minecraft.uuid } } },
    });
    const outcome = await w.paymenthub.sendRaw(forged, { "content-type": "application/json", "x-paymenthub-signature": signPayload(forged, "whsec_guessed") });
    const refused = "status" in outcome && outcome.status === 401;
    if (!refused) throw new DemoStepError(`the forged webhook: expected 401, but the daemon answered ${"status" in outcome ? outcome.status : "nothing"}`);
    passed += 1;
    say(`   ✓ the daemon refused it with 401 after ${formatMs(performance.now() - t)}`);
    await settle();
    expectNow("mallory got nothing", () => !hasRole(mallory) && !hasGroup(mallory) && eng.member(`paymenthub:${mallory.name}`) === undefined, () => `${roleText(mallory)} ${groupText(mallory)}`);

    step("alice leaves the Discord server and joins again (Discord forgets her roles)");
    w.discord.removeMember(DEMO_GUILD.id, alice.discordId);
    t = performance.now();
    w.discord.addMember(DEMO_GUILD.id, { id: alice.discordId, username: alice.name });
    await expectEffect(`Discord role ${DEMO_ROLES.premium.name} restored to alice`, () => hasRole(alice), t, () => roleText(alice));

    const elapsed = performance.now() - started;
    say();
    say(`All ${passed} checks passed in ${formatMs(elapsed)}:`);
    for (const title of steps) say(`  ✓ ${title}`);
    ok = true;

    if (options.keep === true) {
      say();
      say("Still running (--keep). Poke at it:");
      say(`  curl ${daemon.url}/healthz`);
      say(`  curl ${daemon.url}/metrics`);
      say(`  config ${configPath}`);
      say(`  state  ${join(tempDir, "state")}`);
      say(`  log    ${logPath}`);
      say("Press Ctrl-C to stop and clean up.");
      await new Promise<void>((resolve) => {
        if (signal === undefined || signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  } catch (error) {
    ok = false;
    if (error instanceof DemoInterrupted) {
      interrupted = true;
      say("   interrupted");
    } else {
      say(`   ✗ ${error instanceof DemoStepError ? error.message : `unexpected error: ${error instanceof Error ? error.message : String(error)}`}`);
    }
  } finally {
    // Each part is stopped even if another fails to, so nothing is left behind.
    await daemon?.stop().catch(() => undefined);
    await world?.close();
    if (logFd !== undefined) closeSync(logFd);
    await rm(tempDir, { recursive: true, force: true });
  }
  const elapsedMs = performance.now() - started;
  const ending = ok ? "Stopped" : interrupted ? "Interrupted; stopped" : `Demo failed after ${formatMs(elapsedMs)}; stopped`;
  say(`${ending} everything and removed the temporary directory.`);
  return { ok: ok && !interrupted, interrupted, passed, tempDir, elapsedMs };
}
