// The monitor's game part at start: the arena policy from the flags installed (versioned) in the
// registry, and the arena gate with its fixed opponents.
import type { Bus } from "../../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import type { ArenaPolicy } from "../../../src/domain/games/index.js";
import type { SessionHost } from "../../../src/engine/index.js";
import { openMonitorRecords, type GatePolicyRecordKey, type Registry } from "../../../src/domain/registry/index.js";
import type { Logger } from "../../../src/platform/telemetry/index.js";
import { createArenaGate, type ArenaGate } from "./arena-gate.js";
import { arenaPolicyOf, installArenaPolicy, type ArenaFlags } from "./arena-policy.js";

/** The monitor flags the game part reads. */
export interface ArenaServiceFlags extends ArenaFlags {
  readonly eloGames: number;
  readonly eloSimulations: number;
  readonly anchorDepths: readonly string[];
  readonly calibrationGames: number;
}

/** Installs the arena policy and creates the gate; what createMonitor takes as `games`. */
export async function startArena(bus: Bus, registry: Registry, host: SessionHost, flags: ArenaServiceFlags, logger: Logger): Promise<{ gate: ArenaGate; policy(): Promise<ArenaPolicy> }> {
  const depths = flags.anchorDepths.map((d) => Number(d));
  if (depths.some((d) => !Number.isInteger(d) || d < 1 || d > 8)) throw new AutodidactError(`--anchor-depths must be integers in 1..8, got ${flags.anchorDepths.join(",")}`, Code.InvalidArgument);
  const records = openMonitorRecords<never, GatePolicyRecordKey>(bus);
  const installed = await installArenaPolicy(records, arenaPolicyOf(flags));
  logger.info("arena policy", { version: installed.version, rule: installed.rule, games: installed.maxGames, threshold: installed.threshold });
  const gate = createArenaGate({
    registry,
    host,
    anchors: { depths, calibrationGames: flags.calibrationGames, games: flags.eloGames, simulations: flags.eloSimulations, seed: "anchors" },
    logger,
  });
  return { gate, policy: async () => (await records.getArenaPolicy<ArenaPolicy>())?.policy ?? installed };
}
