// The arena policy in force, versioned in the registry (its arena-policy key) like the gating
// policy: a monitor started with other arena settings than the stored ones writes them as the next
// version, and every game gate decision records the version it was made under.
import { isKvConflict } from "../../../src/platform/bus/index.js";
import { checkArenaPolicy, DEFAULT_ARENA_POLICY, type ArenaPolicy } from "../../../src/domain/games/index.js";
import type { GatePolicyRecordKey, MonitorRecords } from "../../../src/domain/registry/index.js";

/** The monitor's arena flags. */
export interface ArenaFlags {
  readonly arenaRule: string;
  readonly arenaGames: number;
  readonly arenaThreshold: number;
  readonly arenaSimulations: number;
  readonly arenaSprtElo1: number;
  /** `search` (PUCT at arenaSimulations) or `policy` (the network's most probable move). */
  readonly arenaPlay?: string;
}

/** An arena policy from the flags (version 0: {@link installArenaPolicy} numbers it). */
export function arenaPolicyOf(f: ArenaFlags): ArenaPolicy {
  return checkArenaPolicy({
    ...DEFAULT_ARENA_POLICY,
    version: 0,
    rule: f.arenaRule as ArenaPolicy["rule"],
    maxGames: f.arenaGames,
    threshold: f.arenaThreshold,
    sprt: { ...DEFAULT_ARENA_POLICY.sprt, elo1: f.arenaSprtElo1 },
    play: { mode: (f.arenaPlay ?? "search") as ArenaPolicy["play"]["mode"], simulations: f.arenaSimulations },
    chunk: Math.min(DEFAULT_ARENA_POLICY.chunk, f.arenaGames),
    note: f.arenaRule === "none" ? "no gate (ablation): every candidate promoted" : "monitor flags",
  });
}

const sameRule = (a: ArenaPolicy, b: ArenaPolicy): boolean => JSON.stringify({ ...a, version: 0 }) === JSON.stringify({ ...b, version: 0 });

/** Makes `wanted` the stored arena policy (the next version unless it is the stored one) and returns it numbered. */
export async function installArenaPolicy(records: MonitorRecords<never, GatePolicyRecordKey>, wanted: ArenaPolicy): Promise<ArenaPolicy> {
  for (let attempt = 0; ; attempt++) {
    const stored = await records.getArenaPolicy<ArenaPolicy>();
    if (stored !== undefined && sameRule(stored.policy, wanted)) return stored.policy;
    const next = { ...wanted, version: (stored?.policy.version ?? 0) + 1 };
    try {
      await records.putArenaPolicy(next, stored?.revision ?? 0);
      return next;
    } catch (err) {
      if (attempt >= 4 || !(isKvConflict(err) || stored === undefined)) throw err;
    }
  }
}
