import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createRng, type Rng } from "../../engine/index.js";
import type { Evaluator } from "./evaluator.js";
import type { Game, Outcome } from "./game.js";
import { SearchTree, type MctsOptions } from "./mcts.js";

/** One finished self-play game: what the trainer learns from. Plain data (JSON-safe). */
export interface GameRecord {
  /** {@link Game.name} of the game played. */
  readonly game: string;
  /** Moves in order from the start position. */
  readonly moves: readonly number[];
  /** The search's visit distribution before each move (length numMoves): the policy targets. */
  readonly policies: readonly (readonly number[])[];
  /** The search's value of each position for its player to move (diagnostics). */
  readonly rootValues: readonly number[];
  /** Absolute outcome. */
  readonly outcome: Outcome;
}

/** Options of {@link selfPlay}. */
export interface SelfPlayOptions {
  /** Games to play. */
  readonly games: number;
  readonly mcts: MctsOptions;
  /** Games in flight at once (over all lanes); their leaves share evaluator calls. Default min(games, 64). */
  readonly concurrency?: number;
  /**
   * Independent groups of games whose evaluator calls overlap: while one lane waits for the model
   * (in a worker thread), another walks its trees on the main thread. Default 2.
   */
  readonly lanes?: number;
  /** Moves are drawn ∝ visits^(1/temperature) for the first `temperatureMoves` plies. Default 1. */
  readonly temperature?: number;
  /** Plies played with temperature; later moves take the most visited. Default 8. */
  readonly temperatureMoves?: number;
  readonly seed: number | string;
  /** Called with each game as it finishes (in completion order). */
  readonly onGame?: (record: GameRecord, index: number) => void;
}

/** Throughput of a self-play call. */
export interface SelfPlayStats {
  readonly games: number;
  /** Positions searched (= moves played). */
  readonly positions: number;
  /** Leaves sent to the evaluator. */
  readonly evaluations: number;
  /** Evaluator calls. */
  readonly batches: number;
  readonly seconds: number;
  readonly positionsPerSecond: number;
  readonly evaluationsPerSecond: number;
}

/** One game in progress: its tree, its random stream and what it has recorded so far. */
class SelfPlayGame<S> {
  readonly moves: number[] = [];
  readonly policies: number[][] = [];
  readonly rootValues: number[] = [];
  readonly tree: SearchTree<S>;
  private readonly rng: Rng;

  constructor(
    private readonly game: Game<S>,
    readonly index: number,
    seed: string,
    private readonly options: SelfPlayOptions,
  ) {
    this.rng = createRng(`${seed}/game-${index}`);
    this.tree = new SearchTree(game, game.initial(), { ...options.mcts, dirichletEpsilon: options.mcts.dirichletEpsilon ?? 0.25 }, this.rng.fork("noise"));
  }

  /** Searches (and plays moves) until a leaf needs the evaluator (returned) or the game ends (null). */
  advance(): S | null {
    for (;;) {
      if (this.tree.finished) return null;
      const leaf = this.tree.nextLeaf();
      if (leaf !== null) return leaf;
      this.playMove();
    }
  }

  private playMove(): void {
    const ply = this.moves.length;
    this.policies.push(Array.from(this.tree.visitDistribution()));
    this.rootValues.push(this.tree.rootValue());
    const t = ply < (this.options.temperatureMoves ?? 8) ? (this.options.temperature ?? 1) : 0;
    const move = this.tree.chooseMove(t, this.rng);
    this.moves.push(move);
    this.tree.advance(move);
  }

  record(): GameRecord {
    const outcome = this.game.outcome(this.tree.root.state);
    if (outcome === null) throw new AutodidactError("record of an unfinished game", Code.Internal);
    return { game: this.game.name, moves: [...this.moves], policies: this.policies, rootValues: this.rootValues, outcome };
  }
}

/**
 * Plays `games` games of the evaluator against itself with PUCT search (root noise, temperature
 * for the opening plies) and returns their records in game order. Leaves of all games in a lane
 * go to the evaluator in ONE call per step (one pending leaf per game), so a batch holds up to
 * concurrency/lanes positions. Deterministic for a deterministic evaluator: each game draws from
 * its own seeded stream, whatever the interleaving.
 */
export async function selfPlay<S>(game: Game<S>, evaluator: Evaluator<S>, options: SelfPlayOptions): Promise<{ records: GameRecord[]; stats: SelfPlayStats }> {
  if (!Number.isInteger(options.games) || options.games < 0) throw new AutodidactError(`games must be a non-negative integer, got ${options.games}`, Code.InvalidArgument);
  const lanes = Math.max(1, Math.min(options.lanes ?? 2, options.games || 1));
  const concurrency = Math.max(lanes, options.concurrency ?? Math.min(options.games, 64));
  const perLane = Math.ceil(concurrency / lanes);
  const seed = String(options.seed);
  const records = new Array<GameRecord>(options.games);
  let next = 0;
  let positions = 0;
  let evaluations = 0;
  let batches = 0;
  let finished = 0;
  const started = performance.now();
  const take = (): SelfPlayGame<S> | null => (next < options.games ? new SelfPlayGame(game, next++, seed, options) : null);

  const runLane = async (): Promise<void> => {
    const slots: SelfPlayGame<S>[] = [];
    for (let i = 0; i < perLane; i++) {
      const g = take();
      if (g !== null) slots.push(g);
    }
    while (slots.length > 0) {
      const leaves: S[] = [];
      const waiting: SelfPlayGame<S>[] = [];
      for (let i = 0; i < slots.length; ) {
        const g = slots[i]!;
        const leaf = g.advance();
        if (leaf !== null) {
          leaves.push(leaf);
          waiting.push(g);
          i++;
          continue;
        }
        const rec = g.record();
        records[g.index] = rec;
        positions += rec.moves.length;
        finished++;
        options.onGame?.(rec, g.index);
        const replacement = take();
        if (replacement !== null) slots[i] = replacement;
        else slots.splice(i, 1);
      }
      if (leaves.length === 0) continue;
      const evals = await evaluator.evaluate(leaves);
      if (evals.length !== leaves.length) throw new AutodidactError(`evaluator answered ${evals.length} of ${leaves.length} positions`, Code.Internal);
      batches++;
      evaluations += leaves.length;
      waiting.forEach((g, k) => g.tree.deliver(evals[k]!));
    }
  };
  await Promise.all(Array.from({ length: lanes }, () => runLane()));
  const seconds = (performance.now() - started) / 1000;
  return {
    records,
    stats: {
      games: finished,
      positions,
      evaluations,
      batches,
      seconds,
      positionsPerSecond: positions / Math.max(seconds, 1e-9),
      evaluationsPerSecond: evaluations / Math.max(seconds, 1e-9),
    },
  };
}
