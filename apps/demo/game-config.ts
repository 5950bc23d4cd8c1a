// The configuration of a game demo run (`autodidact demo --task <game>`): the self-play, training,
// arena and rating settings the mesh runs with, the default (the 2-core budget) and the quick
// variant (CI: a couple of tiny rounds through the real mesh).
import type { NetworkSize } from "../../src/domain/games/index.js";

/** Everything a game demo run sets. */
export interface GameDemoConfig {
  readonly task: string;
  /** Network of the random-weights base model (default: the game pack's). */
  readonly network?: NetworkSize;
  readonly rounds: number;
  /** Stop starting rounds once another would end after this many minutes (0 = no budget). */
  readonly minutes: number;
  readonly gamesPerRound: number;
  readonly simulations: number;
  readonly concurrency: number;
  readonly temperatureMoves: number;
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
  readonly windowGames: number;
  /** `threshold`, `sprt` or `none` (the --no-gate ablation). */
  readonly arenaRule: "threshold" | "sprt" | "none";
  readonly arenaGames: number;
  readonly arenaThreshold: number;
  readonly arenaSimulations: number;
  readonly eloGames: number;
  readonly eloSimulations: number;
  readonly anchorDepths: readonly number[];
  readonly calibrationGames: number;
  readonly seed: number;
}

/** The default run: the budget measured with scripts/selfplay-smoke.ts (MLP 128×2, 64 simulations, 200 games a round). */
export function defaultGameConfig(task: string): GameDemoConfig {
  return {
    task,
    rounds: 60,
    minutes: 17,
    gamesPerRound: 200,
    simulations: 64,
    concurrency: 128,
    temperatureMoves: 8,
    steps: 150,
    batchSize: 256,
    lr: 2e-3,
    weightDecay: 1e-2,
    maxGradNorm: 5,
    windowGames: 1200,
    arenaRule: "threshold",
    arenaGames: 40,
    arenaThreshold: 0.55,
    arenaSimulations: 64,
    eloGames: 20,
    eloSimulations: 64,
    anchorDepths: [1, 2, 4],
    calibrationGames: 40,
    seed: 1,
  };
}

/** The quick variant: the same path at toy size (a tiny network, a few short games, two rounds). */
export function quickGameConfig(task: string): GameDemoConfig {
  return {
    ...defaultGameConfig(task),
    network: { arch: "mlp", hidden: 32, blocks: 1, valueHidden: 16 },
    rounds: 2,
    minutes: 0,
    gamesPerRound: 12,
    simulations: 8,
    concurrency: 12,
    steps: 10,
    batchSize: 64,
    windowGames: 100,
    arenaGames: 4,
    arenaSimulations: 8,
    eloGames: 2,
    eloSimulations: 8,
    anchorDepths: [1],
    calibrationGames: 2,
  };
}
