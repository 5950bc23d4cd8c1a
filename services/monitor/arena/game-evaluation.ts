// What the monitor records about a game checkpoint: its Elo against the fixed opponents (the
// real-world anchor), the arena against the promoted model with the gate's decision, the
// forgetting / cycle alarms, and one game of it for the dashboard and the report.
import type { ArenaDecision, ForgettingAlarm, Tally } from "../../../src/domain/games/index.js";
import type { EvaluationReport } from "../evaluation/index.js";

/** One game as moves, for drawing boards (the candidate's colour and the result). */
export interface ShownGame {
  readonly opponent: string;
  /** True when the evaluated model moved first. */
  readonly modelFirst: boolean;
  readonly moves: readonly number[];
  /** Absolute outcome (+1 = the first player won). */
  readonly outcome: number;
}

/** The monitor's evaluation of a game checkpoint (the `game` part of a stored evaluation). */
export interface GameEvaluation {
  /** Game pack (task) name and the game's variant. */
  readonly task: string;
  readonly game: string;
  /** Elo on the anchors' scale (random play = 0), with the fit's standard error. */
  readonly elo: number;
  readonly eloStderr: number;
  /** The anchors' ratings the Elo was fitted against (calibrated once per monitor process). */
  readonly anchorRatings: Readonly<Record<string, number>>;
  /** Tally of the model's search player against each fixed opponent. */
  readonly anchors: Readonly<Record<string, Tally>>;
  /** The arena against the promoted model (absent for the first model of a lineage). */
  readonly arena?: {
    readonly promotedVersion: number;
    readonly tally: Tally;
    readonly decision: ArenaDecision;
  };
  readonly alarms: readonly ForgettingAlarm[];
  /** Gate outcome (also stored as the evaluation's gate). */
  readonly passed: boolean;
  readonly reasons: readonly string[];
  readonly arenaPolicyVersion: number;
  /** One game against the strongest anchor played, for boards. */
  readonly shown?: ShownGame;
  /** Wall time of anchors and arena. */
  readonly anchorSeconds: number;
  readonly arenaSeconds: number;
}

/**
 * A game evaluation in the shape every stored evaluation has (dashboards, GetEvaluation, History):
 * `accuracy` is the mean score against the fixed opponents, the labelled-task signals are zero, the
 * alarms are the forgetting / cycle alarms, and `game` holds the whole game evaluation.
 */
export function gameReport(g: GameEvaluation, durationMs: number): EvaluationReport & { game: GameEvaluation } {
  const tallies = Object.values(g.anchors);
  const games = tallies.reduce((a, t) => a + t.wins + t.draws + t.losses, 0);
  const points = tallies.reduce((a, t) => a + t.wins + t.draws / 2, 0);
  return {
    task: g.task,
    // Games have no held-out split: play against the fixed opponents is the test.
    split: "test",
    perDifficulty: [],
    accuracy: games > 0 ? points / games : 0,
    loss: 0,
    calibrationEce: 0,
    overconfidentWrongRate: 0,
    distinctN: {},
    tokenEntropy: 0,
    tailCoverage: 0,
    sliceAccuracy: Object.fromEntries(Object.entries(g.anchors).map(([k, t]) => [`vs-${k}`, (t.wins + t.draws / 2) / Math.max(1, t.wins + t.draws + t.losses)])),
    driftKl: 0,
    frontier: 0,
    evalSetDigest: `games:${g.game}:${Object.keys(g.anchors).join(",")}`,
    alarms: g.alarms.map((a) => ({ kind: "forgetting", stage: "late", metric: `score vs ${a.opponent}`, value: a.candidateScore, threshold: a.promotedScore, severity: "warning", message: a.message, difficulty: 0 })),
    durationMs,
    game: g,
  };
}
