import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createRng, type Rng } from "../../engine/index.js";
import { AlphaBetaSearch, alphaBetaMove } from "./alpha-beta.js";
import type { Evaluator } from "./evaluator.js";
import type { Game } from "./game.js";
import { SearchTree, type MctsOptions } from "./mcts.js";

/**
 * A player in a match. It is asked for moves in batches (one position from each game in flight
 * where it is to move), so a model-backed player judges them in shared evaluator calls.
 */
export interface Agent<S> {
  /** Name in match tables and Elo lists (`random`, `alphabeta-2`, `model-v3`…). */
  readonly name: string;
  /** One legal move for each position (positions are never finished games). */
  selectMoves(states: readonly S[]): Promise<number[]>;
}

/** Uniformly random legal moves from a seeded stream: the Elo anchor (pinned at 0). */
export function randomAgent<S>(game: Game<S>, seed: number | string, name = "random"): Agent<S> {
  const rng = createRng(`${name}/${seed}`);
  return {
    name,
    selectMoves(states) {
      return Promise.resolve(
        states.map((s) => {
          const legal = game.legalMoves(s);
          return legal[rng.int(legal.length)] as number;
        }),
      );
    },
  };
}

/**
 * A fixed-depth alpha-beta player over the game's fixed heuristic; ties among equally good moves
 * are broken by a seeded stream, so it never changes and its games still vary. It searches on the
 * calling thread (depth 4 on 6×7 Connect Four: a few thousand nodes per move).
 */
export function alphaBetaAgent<S>(game: Game<S>, depth: number, seed: number | string, name = `alphabeta-${depth}`): Agent<S> {
  const search = new AlphaBetaSearch(game, depth);
  const rng = createRng(`${name}/${seed}`);
  return {
    name,
    selectMoves(states) {
      return Promise.resolve(states.map((s) => alphaBetaMove(search, s, rng)));
    },
  };
}

/** Options of {@link mctsAgent}. */
export interface MctsAgentOptions {
  readonly mcts: MctsOptions;
  /** 0 (default) plays the most visited move; > 0 samples ∝ visits^(1/t) from `seed`'s stream. */
  readonly temperature?: number;
  readonly seed?: number | string;
}

/**
 * A player that searches each position with PUCT guided by `evaluator` (no root noise unless
 * asked) and plays the most visited move. The searches of all positions of a call run in lock
 * step, their leaves judged in one evaluator call per step.
 */
export function mctsAgent<S>(game: Game<S>, evaluator: Evaluator<S>, name: string, options: MctsAgentOptions): Agent<S> {
  const seed = options.seed ?? 0;
  const rng: Rng = createRng(`${name}/${seed}`);
  const temperature = options.temperature ?? 0;
  const noisy = (options.mcts.dirichletEpsilon ?? 0) > 0;
  let searches = 0;
  return {
    name,
    async selectMoves(states) {
      // Each search draws its root noise from its own stream.
      const trees = states.map((s) => new SearchTree(game, s, { ...options.mcts, reuseTree: false }, noisy ? rng.fork(`noise-${searches++}`) : null));
      await runSearches(trees, evaluator);
      return trees.map((t) => t.chooseMove(temperature, temperature > 0 ? rng : null));
    },
  };
}

/** Runs searches to completion, batching each step's leaves into one evaluator call. */
export async function runSearches<S>(trees: readonly SearchTree<S>[], evaluator: Evaluator<S>): Promise<void> {
  for (;;) {
    const leaves: S[] = [];
    const waiting: SearchTree<S>[] = [];
    for (const t of trees) {
      const leaf = t.nextLeaf();
      if (leaf !== null) {
        leaves.push(leaf);
        waiting.push(t);
      }
    }
    if (leaves.length === 0) return;
    const evals = await evaluator.evaluate(leaves);
    if (evals.length !== leaves.length) throw new AutodidactError(`evaluator answered ${evals.length} of ${leaves.length} positions`, Code.Internal);
    waiting.forEach((t, k) => t.deliver(evals[k]!));
  }
}

/**
 * A player that follows the evaluator's policy without search: the most probable legal move
 * (temperature 0, ties to the lower move) or a draw ∝ p^(1/t). Measures what the network alone learned.
 */
export function policyAgent<S>(game: Game<S>, evaluator: Evaluator<S>, name: string, options: { temperature?: number; seed?: number | string } = {}): Agent<S> {
  const temperature = options.temperature ?? 0;
  const rng = createRng(`${name}/${options.seed ?? 0}`);
  return {
    name,
    async selectMoves(states) {
      const evals = await evaluator.evaluate(states);
      return evals.map((e, k) => {
        const legal = game.legalMoves(states[k]!);
        if (temperature > 0) {
          const w = legal.map((m) => Math.pow(e.policy[m] as number, 1 / temperature));
          const total = w.reduce((a, b) => a + b, 0);
          if (total > 0) {
            let u = rng.next() * total;
            for (let i = 0; i < w.length; i++) {
              u -= w[i] as number;
              if (u < 0) return legal[i] as number;
            }
          }
        }
        let best = legal[0] as number;
        for (const m of legal) if ((e.policy[m] as number) > (e.policy[best] as number)) best = m;
        return best;
      });
    },
  };
}

/**
 * A fixed player between two others: each move comes from `a` with probability `pA`, else from
 * `b` (seeded). A rung of the anchor ladder between random play and the shallowest alpha-beta, so
 * Elo fits of weak models have opponents they can score against.
 */
export function mixedAgent<S>(name: string, a: Agent<S>, b: Agent<S>, pA: number, seed: number | string): Agent<S> {
  if (!(pA >= 0 && pA <= 1)) throw new AutodidactError(`mixed agent: pA must be in [0, 1], got ${pA}`, Code.InvalidArgument);
  const rng = createRng(`${name}/${seed}`);
  return {
    name,
    async selectMoves(states) {
      const fromA = states.map(() => rng.next() < pA);
      const [ma, mb] = await Promise.all([a.selectMoves(states.filter((_, i) => fromA[i])), b.selectMoves(states.filter((_, i) => !fromA[i]))]);
      let ia = 0;
      let ib = 0;
      return fromA.map((x) => (x ? ma[ia++]! : mb[ib++]!));
    },
  };
}

/** The fixed opponents of a game, weakest first: random, a 50/50 mix of random and alpha-beta-1, alpha-beta at depths 1, 2 and 4. */
export function anchorLadder<S>(game: Game<S>, seed: number | string, depths: readonly number[] = [1, 2, 4]): Agent<S>[] {
  const random = randomAgent(game, seed);
  const ab = depths.map((d) => alphaBetaAgent(game, d, seed));
  const mix = mixedAgent("alphabeta-1-half", alphaBetaAgent(game, 1, `${seed}/mix`), randomAgent(game, `${seed}/mix`), 0.5, seed);
  return [random, mix, ...ab];
}
