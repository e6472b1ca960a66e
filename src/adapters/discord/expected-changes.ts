import type { Clock } from "../../core/ports.js";

/** One role change the bot itself is about to make. */
export interface RoleChangeKey {
  readonly guildId: string;
  readonly userId: string;
  readonly roleId: string;
  readonly add: boolean;
}

const keyOf = (change: RoleChangeKey): string => `${change.guildId}:${change.userId}:${change.roleId}:${change.add ? "+" : "-"}`;

/**
 * A short-lived record of the role changes perkbridge makes, so that the
 * GUILD_MEMBER_UPDATE echo of its own edit is not mistaken for a human's
 * (the "expected changes" cache of DiscordSRV's group sync). Entries are
 * recorded before the request, because the gateway event may arrive before
 * the REST answer.
 */
export class ExpectedChanges {
  readonly #entries = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  record(change: RoleChangeKey): void {
    this.#prune();
    this.#entries.set(keyOf(change), this.clock.now() + this.ttlMs);
  }

  forget(change: RoleChangeKey): void {
    this.#entries.delete(keyOf(change));
  }

  /** True (and forgotten) when this change was expected and has not expired. */
  consume(change: RoleChangeKey): boolean {
    const key = keyOf(change);
    const expiresAt = this.#entries.get(key);
    if (expiresAt === undefined) return false;
    this.#entries.delete(key);
    return expiresAt > this.clock.now();
  }

  get size(): number {
    this.#prune();
    return this.#entries.size;
  }

  #prune(): void {
    const now = this.clock.now();
    for (const [key, expiresAt] of this.#entries) if (expiresAt <= now) this.#entries.delete(key);
  }
}
