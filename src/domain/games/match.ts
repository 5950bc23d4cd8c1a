import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createRng } from "../../engine/index.js";
import type { Agent } from "./agents.js";
import type { Game, Outcome } from "./game.js";

/** Wins, draws and losses of one side. */
export interface Tally {
  readonly wins: number;
  readonly draws: number;
  readonly losses: number;
}

/** Games and score (wins + draws/2) / games of a tally; score 0.5 for no games. */
export function tallyScore(t: Tally): { games: number; score: number } {
  const games = t.wins + t.draws + t.losses;
  return { games, score: games === 0 ? 0.5 : (t.wins + t.draws / 2) / games };
}

/** Sum of tallies. */
export function addTallies(...ts: readonly Tally[]): Tally {
  return ts.reduce<Tally>((a, b) => ({ wins: a.wins + b.wins, draws: a.draws + b.draws, losses: a.losses + b.losses }), { wins: 0, draws: 0, losses: 0 });
}

/** One game of a match. */
export interface MatchGame {
  /** Index of the game in the match. */
  readonly index: number;
  /** True when agent `a` moved first. */
  readonly aFirst: boolean;
  /** Plies of the random opening (shared by the pair of games 2k, 2k+1). */
  readonly openingPlies: number;
  readonly moves: readonly number[];
  /** Absolute outcome (+1 = the first player won). */
  readonly outcome: Outcome;
  /** Result for `a`: 1 win, 0.5 draw, 0 loss. */
  readonly scoreA: number;
}

/** A finished match between `a` and `b`, tallied for `a`. */
export interface MatchResult extends Tally {
  readonly a: string;
  readonly b: string;
  readonly games: readonly MatchGame[];
  /** (wins + draws/2) / games for `a`. */
  readonly score: number;
}

/** Options of {@link playMatch}. */
export interface MatchOptions {
  readonly games: number;
  /**
   * Random plies before the agents take over. Games 2k and 2k+1 share the opening with colours
   * swapped, so deterministic agents still play different, colour-balanced games. Default 2.
   */
  readonly openingPlies?: number;
  readonly seed: number | string;
  /** Index of the first game (openings continue the series of an earlier chunk). Default 0. */
  readonly firstGame?: number;
}

/**
 * Plays `a` against `b` with alternating colours (a moves first in even games). All games run
 * at once: each step asks each agent once, for every position where it is to move, and both
 * agents are asked concurrently (a model's worker computes while the other agent thinks).
 */
export async function playMatch<S>(game: Game<S>, a: Agent<S>, b: Agent<S>, options: MatchOptions): Promise<MatchResult> {
  if (!Number.isInteger(options.games) || options.games < 0) throw new AutodidactError(`games must be a non-negative integer, got ${options.games}`, Code.InvalidArgument);
  const openingPlies = options.openingPlies ?? 2;
  const first = options.firstGame ?? 0;
  interface Live {
    readonly index: number;
    readonly aFirst: boolean;
    state: S;
    readonly moves: number[];
  }
  const live: Live[] = [];
  for (let k = 0; k < options.games; k++) {
    const index = first + k;
    const rng = createRng(`${options.seed}/opening-${Math.floor(index / 2)}`);
    let state = game.initial();
    const moves: number[] = [];
    for (let p = 0; p < openingPlies && !game.isTerminal(state); p++) {
      const legal = game.legalMoves(state);
      const m = legal[rng.int(legal.length)] as number;
      moves.push(m);
      state = game.apply(state, m);
    }
    live.push({ index, aFirst: index % 2 === 0, state, moves });
  }
  const done: MatchGame[] = [];
  const finish = (g: Live): void => {
    const outcome = game.outcome(g.state) as Outcome;
    const forA = g.aFirst ? outcome : -outcome;
    done.push({ index: g.index, aFirst: g.aFirst, openingPlies, moves: g.moves, outcome, scoreA: (forA + 1) / 2 });
  };
  let active = live.filter((g) => {
    if (!game.isTerminal(g.state)) return true;
    finish(g);
    return false;
  });
  while (active.length > 0) {
    const aTurn = active.filter((g) => (game.toMove(g.state) === 0) === g.aFirst);
    const bTurn = active.filter((g) => (game.toMove(g.state) === 0) !== g.aFirst);
    const [aMoves, bMoves] = await Promise.all([
      aTurn.length > 0 ? a.selectMoves(aTurn.map((g) => g.state)) : Promise.resolve([]),
      bTurn.length > 0 ? b.selectMoves(bTurn.map((g) => g.state)) : Promise.resolve([]),
    ]);
    const play = (gs: Live[], ms: readonly number[], who: Agent<S>): void => {
      if (ms.length !== gs.length) throw new AutodidactError(`${who.name} answered ${ms.length} moves for ${gs.length} positions`, Code.Internal);
      gs.forEach((g, k) => {
        const m = ms[k]!;
        if (!game.isLegal(g.state, m)) throw new AutodidactError(`${who.name} chose illegal move ${m} in ${game.stateText(g.state)}`, Code.Internal);
        g.moves.push(m);
        g.state = game.apply(g.state, m);
      });
    };
    play(aTurn, aMoves, a);
    play(bTurn, bMoves, b);
    active = active.filter((g) => {
      if (!game.isTerminal(g.state)) return true;
      finish(g);
      return false;
    });
  }
  done.sort((x, y) => x.index - y.index);
  const wins = done.filter((g) => g.scoreA === 1).length;
  const draws = done.filter((g) => g.scoreA === 0.5).length;
  const losses = done.length - wins - draws;
  return { a: a.name, b: b.name, games: done, wins, draws, losses, score: done.length === 0 ? 0.5 : (wins + draws / 2) / done.length };
}
