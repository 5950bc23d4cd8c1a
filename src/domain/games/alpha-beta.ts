import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Rng } from "../../engine/index.js";
import type { Game } from "./game.js";

/** Score of a won position, minus the plies it takes (so the search prefers quicker wins). */
export const WIN_SCORE = 1_000_000;

/**
 * Negamax with alpha-beta pruning to a fixed depth, leaves scored by the game's fixed
 * {@link Game.heuristic}, wins and losses exactly. Children are tried centre-first (Connect Four's
 * best ordering; for other games, the natural order around the middle move).
 */
export class AlphaBetaSearch<S> {
  /** Nodes visited by the last {@link bestMoves} call. */
  nodes = 0;
  private readonly order: readonly number[];

  constructor(
    private readonly game: Game<S>,
    readonly depth: number,
  ) {
    if (!Number.isInteger(depth) || depth < 1) throw new AutodidactError(`alpha-beta depth must be a positive integer, got ${depth}`, Code.InvalidArgument);
    const mid = (game.numMoves - 1) / 2;
    this.order = Array.from({ length: game.numMoves }, (_, m) => m).sort((a, b) => Math.abs(a - mid) - Math.abs(b - mid) || a - b);
  }

  /** Every legal move of `s` tied for the best score, with that score (for the player to move). */
  bestMoves(s: S): { moves: number[]; score: number } {
    if (this.game.isTerminal(s)) throw new AutodidactError("alpha-beta on a finished game", Code.FailedPrecondition);
    this.nodes = 0;
    let best = -Infinity;
    let moves: number[] = [];
    for (const m of this.order) {
      if (!this.game.isLegal(s, m)) continue;
      // A window one wider than the best so far keeps exact scores for ties.
      const v = -this.negamax(this.game.apply(s, m), this.depth - 1, -Infinity, -(best - 1), 1);
      if (v > best) {
        best = v;
        moves = [m];
      } else if (v === best) moves.push(m);
    }
    return { moves: moves.sort((a, b) => a - b), score: best };
  }

  private negamax(s: S, depth: number, alpha: number, beta: number, ply: number): number {
    this.nodes++;
    const outcome = this.game.outcomeForToMove(s);
    if (outcome !== null) return outcome === 0 ? 0 : outcome * (WIN_SCORE - ply);
    if (depth === 0) return this.game.heuristic(s);
    let best = -Infinity;
    for (const m of this.order) {
      if (!this.game.isLegal(s, m)) continue;
      const v = -this.negamax(this.game.apply(s, m), depth - 1, -beta, -alpha, ply + 1);
      if (v > best) best = v;
      if (v > alpha) alpha = v;
      if (alpha >= beta) break;
    }
    return best;
  }
}

/** The move a fixed-depth alpha-beta player makes: among the equally best, one drawn from `rng`. */
export function alphaBetaMove<S>(search: AlphaBetaSearch<S>, s: S, rng: Rng): number {
  const { moves } = search.bestMoves(s);
  return moves[rng.int(moves.length)] as number;
}
