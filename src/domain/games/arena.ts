import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Agent } from "./agents.js";
import { expectedScore } from "./elo.js";
import type { Game } from "./game.js";
import { addTallies, playMatch, tallyScore, type MatchGame, type Tally } from "./match.js";

/** Sequential probability ratio test settings (the hypotheses are Elo differences candidate − promoted). */
export interface SprtSettings {
  /** H0: the candidate is this much stronger (usually 0: no better). */
  readonly elo0: number;
  /** H1: the candidate is this much stronger (must exceed elo0). */
  readonly elo1: number;
  /** Probability of promoting when H0 holds. */
  readonly alpha: number;
  /** Probability of rejecting when H1 holds. */
  readonly beta: number;
  /** No decision before this many games (the variance estimate needs some). Default 10. */
  readonly minGames?: number;
}

/** How the candidate plays in the arena. */
export interface ArenaPlay {
  /** `search`: PUCT with `simulations` visits per move; `policy`: the network's most probable move. */
  readonly mode: "search" | "policy";
  readonly simulations: number;
}

/**
 * The arena's rule for promoting a candidate over the promoted model, versioned like the
 * monitor's gate policy: decisions record the version they were made under.
 */
export interface ArenaPolicy {
  readonly version: number;
  /**
   * `threshold`: score ≥ threshold over maxGames games; `sprt`: stop as soon as the test decides;
   * `none`: the `--no-gate` ablation, every candidate promoted after maxGames games (played to
   * record what got through).
   */
  readonly rule: "threshold" | "sprt" | "none";
  /** Games of a threshold arena; the cap of an SPRT (reaching it without a decision rejects). */
  readonly maxGames: number;
  /** Score (wins + draws/2) / games the candidate needs under `threshold`. Leela Zero: 0.55. */
  readonly threshold: number;
  readonly sprt: SprtSettings;
  readonly play: ArenaPlay;
  /** Random plies opening each pair of games (see playMatch). */
  readonly openingPlies: number;
  /** Games played between two decision checks. */
  readonly chunk: number;
  readonly note: string;
}

/** Leela Zero's original gate at the scale of this machine: 55 % over 40 games, searching. */
export const DEFAULT_ARENA_POLICY: ArenaPolicy = {
  version: 1,
  rule: "threshold",
  maxGames: 40,
  threshold: 0.55,
  sprt: { elo0: 0, elo1: 35, alpha: 0.05, beta: 0.05, minGames: 10 },
  play: { mode: "search", simulations: 64 },
  openingPlies: 2,
  chunk: 10,
  note: "default",
};

/** Rejects a policy whose numbers make no sense (InvalidArgument naming the field). */
export function checkArenaPolicy(p: ArenaPolicy): ArenaPolicy {
  const fail = (msg: string): never => {
    throw new AutodidactError(`arena policy: ${msg}`, Code.InvalidArgument);
  };
  if (p.rule !== "threshold" && p.rule !== "sprt" && p.rule !== "none") fail(`rule must be "threshold", "sprt" or "none", got "${String(p.rule)}"`);
  if (!Number.isInteger(p.maxGames) || p.maxGames < 1) fail(`maxGames must be a positive integer, got ${p.maxGames}`);
  if (!Number.isInteger(p.chunk) || p.chunk < 1) fail(`chunk must be a positive integer, got ${p.chunk}`);
  if (!(p.threshold > 0 && p.threshold <= 1)) fail(`threshold must be in (0, 1], got ${p.threshold}`);
  const s = p.sprt;
  if (!(s.elo1 > s.elo0)) fail(`sprt elo1 (${s.elo1}) must exceed elo0 (${s.elo0})`);
  if (!(s.alpha > 0 && s.alpha < 0.5) || !(s.beta > 0 && s.beta < 0.5)) fail(`sprt alpha and beta must be in (0, 0.5), got ${s.alpha}, ${s.beta}`);
  if (s.minGames !== undefined && (!Number.isInteger(s.minGames) || s.minGames < 1)) fail(`sprt minGames must be a positive integer, got ${s.minGames}`);
  if (p.play.mode !== "search" && p.play.mode !== "policy") fail(`play.mode must be "search" or "policy", got "${String(p.play.mode)}"`);
  if (!Number.isInteger(p.play.simulations) || p.play.simulations < 1) fail(`play.simulations must be a positive integer, got ${p.play.simulations}`);
  if (!Number.isInteger(p.openingPlies) || p.openingPlies < 0) fail(`openingPlies must be a non-negative integer, got ${p.openingPlies}`);
  return p;
}

/** Where a test stands. */
export type ArenaVerdict = "accept" | "reject" | "continue";

/** The arena's decision on the results so far. */
export interface ArenaDecision {
  readonly verdict: ArenaVerdict;
  readonly games: number;
  readonly score: number;
  /** SPRT only: log-likelihood ratio and its bounds [ln(β/(1−α)), ln((1−β)/α)]. */
  readonly llr?: number;
  readonly bounds?: readonly [number, number];
  readonly reason: string;
  readonly policyVersion: number;
}

/** The SPRT's stopping bounds on the log-likelihood ratio (Wald): [ln(β/(1−α)), ln((1−β)/α)]. */
export function sprtBounds(s: SprtSettings): [number, number] {
  return [Math.log(s.beta / (1 - s.alpha)), Math.log((1 - s.beta) / s.alpha)];
}

/**
 * Log-likelihood ratio of H1 (Elo difference elo1) against H0 (elo0) from a W/D/L tally, in the
 * normal approximation of the game score (the generalized SPRT fishtest used): with n games,
 * mean score x̄, per-game score variance σ² and expected scores s_k = 1/(1 + 10^(−elo_k/400)),
 *   LLR = n·(s1 − s0)·(2x̄ − s0 − s1) / (2σ²).
 * σ² is the variance of the observed scores with half a virtual win, draw and loss added, so a
 * first run of identical results does not divide by zero (the correction fades with n).
 */
export function sprtLlr(t: Tally, s: SprtSettings): number {
  const { games: n, score } = tallyScore(t);
  if (n === 0) return 0;
  const w = t.wins + 0.5;
  const d = t.draws + 0.5;
  const l = t.losses + 0.5;
  const m = w + d + l;
  const mean = (w + 0.5 * d) / m;
  const variance = (w * (1 - mean) ** 2 + d * (0.5 - mean) ** 2 + l * mean ** 2) / m;
  const s0 = expectedScore(s.elo0);
  const s1 = expectedScore(s.elo1);
  return (n * (s1 - s0) * (2 * score - s0 - s1)) / (2 * variance);
}

/**
 * The arena's decision on a tally of the candidate's results against the promoted model. Pure.
 * `threshold`: accepts once the score is at least the threshold even if every remaining game were
 * lost, rejects once it cannot reach it even if every remaining game were won, else continues
 * until maxGames. `sprt`: accepts when LLR ≥ upper bound, rejects when LLR ≤ lower bound or at
 * maxGames, else continues (never before minGames).
 */
export function arenaDecision(policy: ArenaPolicy, t: Tally): ArenaDecision {
  const { games, score } = tallyScore(t);
  const base = { games, score, policyVersion: policy.version };
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  if (policy.rule === "none") {
    if (games >= policy.maxGames) return { ...base, verdict: "accept", reason: `no gate (ablation): promoted at ${pct(score)} over ${games} games` };
    return { ...base, verdict: "continue", reason: `${games} of ${policy.maxGames} games (no gate)` };
  }
  if (policy.rule === "threshold") {
    const N = policy.maxGames;
    const points = t.wins + t.draws / 2;
    const need = policy.threshold * N;
    if (points >= need - 1e-9) return { ...base, verdict: "accept", reason: `${points} points of ${N} games reach ${pct(policy.threshold)}` };
    if (points + Math.max(0, N - games) < need - 1e-9) {
      return { ...base, verdict: "reject", reason: `${points} points after ${games} games cannot reach ${pct(policy.threshold)} of ${N}` };
    }
    return { ...base, verdict: "continue", reason: `${points} points after ${games} of ${N} games` };
  }
  const bounds = sprtBounds(policy.sprt);
  const llr = sprtLlr(t, policy.sprt);
  const more = { ...base, llr, bounds } as const;
  const minGames = policy.sprt.minGames ?? 10;
  if (games >= minGames && llr >= bounds[1]) return { ...more, verdict: "accept", reason: `LLR ${llr.toFixed(2)} ≥ ${bounds[1].toFixed(2)}: stronger by ${policy.sprt.elo1} Elo` };
  if (games >= minGames && llr <= bounds[0]) return { ...more, verdict: "reject", reason: `LLR ${llr.toFixed(2)} ≤ ${bounds[0].toFixed(2)}: not stronger than ${policy.sprt.elo0} Elo` };
  if (games >= policy.maxGames) return { ...more, verdict: "reject", reason: `no decision after ${games} games (LLR ${llr.toFixed(2)}): not promoted` };
  return { ...more, verdict: "continue", reason: `LLR ${llr.toFixed(2)} in (${bounds[0].toFixed(2)}, ${bounds[1].toFixed(2)})` };
}

/** An arena's outcome: the decision, the candidate's tally and every game. */
export interface ArenaResult {
  readonly decision: ArenaDecision;
  readonly tally: Tally;
  readonly games: readonly MatchGame[];
}

/**
 * Plays the candidate against the promoted model in chunks of `policy.chunk` games (alternating
 * colours, paired random openings) until {@link arenaDecision} stops continuing. The agents
 * embody `policy.play` (see the search and policy agents); this function only schedules games.
 */
export async function runArena<S>(game: Game<S>, candidate: Agent<S>, promoted: Agent<S>, policy: ArenaPolicy, seed: number | string): Promise<ArenaResult> {
  checkArenaPolicy(policy);
  let tally: Tally = { wins: 0, draws: 0, losses: 0 };
  const games: MatchGame[] = [];
  for (;;) {
    const played = games.length;
    const n = Math.min(policy.chunk, policy.maxGames - played);
    const r = await playMatch(game, candidate, promoted, { games: n, openingPlies: policy.openingPlies, seed, firstGame: played });
    games.push(...r.games);
    tally = addTallies(tally, r);
    const decision = arenaDecision(policy, tally);
    if (decision.verdict !== "continue") return { decision, tally, games };
    if (games.length >= policy.maxGames) throw new AutodidactError("arena reached maxGames without a decision", Code.Internal);
  }
}

/** Options of {@link forgettingAlarms}. */
export interface ForgettingOptions {
  /** The promoted model "beat" a fixed opponent when it scored at least this. Default 0.55. */
  readonly beatenScore?: number;
  /** The candidate must score at least this much lower to raise an alarm. Default 0.1. */
  readonly margin?: number;
  /** …and the drop must be this many standard errors (two-proportion z-test; 0 disables). Default 1.64. */
  readonly minZ?: number;
}

/** A fixed opponent the promoted model beat and the candidate does markedly worse against. */
export interface ForgettingAlarm {
  readonly opponent: string;
  readonly promotedScore: number;
  readonly candidateScore: number;
  readonly drop: number;
  readonly z: number;
  readonly message: string;
}

/**
 * The forgetting / cycle alarm: a candidate that beat the promoted model (arena score > 0.5) yet
 * scores markedly worse than it against a fixed opponent the promoted model used to beat has
 * learned to exploit its predecessor, not to play better (A beats B, B beats C, C beats A). Pure:
 * one alarm per such opponent, none when the candidate did not win the arena.
 */
export function forgettingAlarms(
  arena: Tally,
  candidate: Readonly<Record<string, Tally>>,
  promoted: Readonly<Record<string, Tally>>,
  options: ForgettingOptions = {},
): ForgettingAlarm[] {
  if (tallyScore(arena).score <= 0.5) return [];
  const beaten = options.beatenScore ?? 0.55;
  const margin = options.margin ?? 0.1;
  const minZ = options.minZ ?? 1.64;
  const alarms: ForgettingAlarm[] = [];
  for (const [opponent, before] of Object.entries(promoted)) {
    const after = candidate[opponent];
    if (after === undefined) continue;
    const p = tallyScore(before);
    const c = tallyScore(after);
    if (p.games === 0 || c.games === 0 || p.score < beaten) continue;
    const drop = p.score - c.score;
    const pooled = (p.score * p.games + c.score * c.games) / (p.games + c.games);
    const se = Math.sqrt(Math.max(pooled * (1 - pooled), 1e-9) * (1 / p.games + 1 / c.games));
    const z = drop / se;
    if (drop >= margin && z >= minZ) {
      alarms.push({
        opponent,
        promotedScore: p.score,
        candidateScore: c.score,
        drop,
        z,
        message: `beats the promoted model but scores ${(100 * c.score).toFixed(0)}% against ${opponent}, which the promoted model beat at ${(100 * p.score).toFixed(0)}% (z = ${z.toFixed(2)})`,
      });
    }
  }
  return alarms;
}
