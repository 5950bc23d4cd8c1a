// The arena gate of game candidates: the candidate's search player against the promoted model's
// (alternating colours, N games, threshold or SPRT as the versioned arena policy says), its Elo
// against fixed opponents that never change, and the forgetting / cycle alarm. Kept apart from the
// gate of labelled tasks (services/monitor/evaluation).
import {
  anchorLadder,
  fitElo,
  forgettingAlarms,
  getGamePack,
  mctsAgent,
  NetworkEvaluator,
  playMatch,
  policyAgent,
  runArena,
  type Agent,
  type ArenaPolicy,
  type GamePack,
  type PairResult,
  type Tally,
} from "../../../src/domain/games/index.js";
import type { SessionHost } from "../../../src/engine/index.js";
import { loadPolicyValueServing, type PolicyValueModel } from "../../../src/domain/serving/index.js";
import type { LoadedModel } from "../../../src/domain/serving/index.js";
import type { CheckpointRecord, Registry } from "../../../src/domain/registry/index.js";
import type { Logger } from "../../../src/platform/telemetry/index.js";
import type { GameEvaluation, ShownGame } from "./game-evaluation.js";

/** How the monitor rates game checkpoints against the fixed opponents (flags). */
export interface AnchorSettings {
  /** Alpha-beta depths of the fixed opponents beside random play and the random/depth-1 mix. */
  readonly depths: readonly number[];
  /** Games per anchor pair when calibrating the ladder (random pinned at 0). */
  readonly calibrationGames: number;
  /** Games of each evaluated model against each anchor. */
  readonly games: number;
  /** Simulations per move of the evaluated model's search player. */
  readonly simulations: number;
  readonly seed: string;
}

/** Options of {@link createArenaGate}. */
export interface ArenaGateOptions {
  readonly registry: Registry;
  readonly host: SessionHost;
  readonly anchors: AnchorSettings;
  readonly logger: Logger;
}

/** Evaluates and gates game checkpoints. */
export interface ArenaGate {
  /**
   * Rates `record` against the fixed opponents and, when `promoted` names another version, plays the
   * arena against it under `policy`; `promotedEvaluation` (its anchors' tallies) feeds the alarm.
   */
  evaluate(record: CheckpointRecord, policy: ArenaPolicy, promoted: { version: number; evaluation?: GameEvaluation } | undefined): Promise<GameEvaluation>;
}

/** Creates the arena gate; anchor ladders are calibrated once per game and kept. */
export function createArenaGate(options: ArenaGateOptions): ArenaGate {
  const { registry, host, anchors: settings, logger } = options;
  const ladders = new Map<string, Promise<{ agents: Agent<unknown>[]; ratings: Record<string, number> }>>();

  const ladderOf = (pack: GamePack): Promise<{ agents: Agent<unknown>[]; ratings: Record<string, number> }> => {
    let l = ladders.get(pack.name);
    if (l === undefined) {
      l = (async () => {
        const agents = anchorLadder(pack.game, settings.seed, settings.depths);
        const results: PairResult[] = [];
        for (let i = 0; i < agents.length; i++) {
          for (let j = i + 1; j < agents.length; j++) {
            const r = await playMatch(pack.game, agents[j]!, agents[i]!, { games: settings.calibrationGames, seed: `calibrate-${i}-${j}` });
            results.push({ a: r.a, b: r.b, wins: r.wins, draws: r.draws, losses: r.losses });
          }
        }
        const ratings = Object.fromEntries(fitElo(results, { fixed: { random: 0 } }).map((r) => [r.name, r.elo]));
        logger.info("anchor ladder calibrated", { game: pack.game.name, ratings: JSON.stringify(ratings) });
        return { agents, ratings };
      })();
      l.catch(() => ladders.delete(pack.name));
      ladders.set(pack.name, l);
    }
    return l;
  };

  const open = async (lineage: string, version: number): Promise<LoadedModel<PolicyValueModel>> =>
    loadPolicyValueServing(host, await registry.materialize(lineage, version), `${lineage}@${version}`);

  return {
    async evaluate(record, policy, promoted) {
      const pack = getGamePack(String(record.manifest["task"]));
      const game = pack.game;
      const ladder = await ladderOf(pack);
      const name = `${record.lineage}@${record.version}`;
      const candidate = await open(record.lineage, record.version);
      const loaded: LoadedModel<PolicyValueModel>[] = [candidate];
      try {
        const player = (m: LoadedModel<PolicyValueModel>, simulations: number): Agent<unknown> =>
          mctsAgent(game, new NetworkEvaluator(game, m.model.network), m.version, { mcts: { simulations } }) as Agent<unknown>;
        const t0 = performance.now();
        const tallies: Record<string, Tally> = {};
        const results: PairResult[] = [];
        let shown: ShownGame | undefined;
        for (const anchor of ladder.agents) {
          const r = await playMatch(game, player(candidate, settings.simulations), anchor, { games: settings.games, seed: `elo-${name}-${anchor.name}` });
          tallies[anchor.name] = { wins: r.wins, draws: r.draws, losses: r.losses };
          results.push({ a: name, b: anchor.name, wins: r.wins, draws: r.draws, losses: r.losses });
          const g = r.games[0];
          if (g !== undefined) shown = { opponent: anchor.name, modelFirst: g.aFirst, moves: [...g.moves], outcome: g.outcome };
        }
        const fit = fitElo(results, { fixed: ladder.ratings }).find((r) => r.name === name)!;
        const anchorSeconds = (performance.now() - t0) / 1000;
        const base = {
          task: pack.name,
          game: game.name,
          elo: fit.elo,
          eloStderr: fit.stderr,
          anchorRatings: ladder.ratings,
          anchors: tallies,
          arenaPolicyVersion: policy.version,
          anchorSeconds,
          ...(shown ? { shown } : {}),
        };
        if (promoted === undefined || promoted.version === record.version) {
          return { ...base, alarms: [], passed: true, reasons: ["first model of the lineage: no arena"], arenaSeconds: 0 };
        }
        const incumbent = await open(record.lineage, promoted.version);
        loaded.push(incumbent);
        const t1 = performance.now();
        // Search players, or the raw policies (most probable move) when the arena policy says so.
        const arenaPlayer = (m: LoadedModel<PolicyValueModel>): Agent<unknown> =>
          policy.play.mode === "policy" ? (policyAgent(game, new NetworkEvaluator(game, m.model.network), m.version) as Agent<unknown>) : player(m, policy.play.simulations);
        const arena = await runArena(game, arenaPlayer(candidate), arenaPlayer(incumbent), policy, `arena-${name}-vs-${promoted.version}`);
        const arenaSeconds = (performance.now() - t1) / 1000;
        const alarms = promoted.evaluation ? forgettingAlarms(arena.tally, tallies, promoted.evaluation.anchors) : [];
        const passed = arena.decision.verdict === "accept";
        const { wins, draws, losses } = arena.tally;
        const reasons = [
          `arena (policy v${policy.version}, ${policy.rule}) vs v${promoted.version}: ${wins}-${draws}-${losses}, ${arena.decision.reason}`,
          ...alarms.map((a) => `alarm: ${a.message}`),
        ];
        return { ...base, arena: { promotedVersion: promoted.version, tally: arena.tally, decision: arena.decision }, alarms, passed, reasons, arenaSeconds };
      } finally {
        for (const m of loaded) await m.release().catch(() => undefined);
      }
    },
  };
}
