import type { PerkTarget } from "../../core/ports.js";
import type { Perk } from "../../core/perk.js";
import type { LoadedConfig } from "../config/load-config.js";
import type { DaemonContext } from "../create-daemon.js";
import type { ReconcileEngine } from "../reconcile/reconcile-engine.js";

/**
 * Builds one target from the config, or nothing when the config names none.
 * `engine` returns the engine once it is built (after the store opens), for the
 * target's events: joins, role edits, players coming online.
 */
export type LaneFactory = (
  loaded: LoadedConfig,
  context: DaemonContext,
  engine: () => ReconcileEngine | undefined,
) => Promise<PerkTarget | undefined>;

/** Every perk any plan grants (trial perks included). */
export function allPlanPerks(plans: LoadedConfig["plans"]): Perk[] {
  return [...plans.values()].flatMap((plan) => [...plan.perks, ...(plan.trialPerks ?? [])]);
}
