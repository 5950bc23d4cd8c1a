import type { Game } from "./game.js";

/** What a model says about one position. */
export interface Evaluation {
  /** Probabilities over the full move space: zero on illegal moves, summing to 1 over legal ones. */
  readonly policy: Float32Array;
  /** Expected outcome for the player to move, in [−1, 1]. */
  readonly value: number;
}

/**
 * Anything that judges positions in batches: the network (one engine run per call), a uniform
 * prior for tests and baselines. Search hands it the leaves of many games at once, so one call
 * serves a whole batch. States are never terminal.
 */
export interface Evaluator<S> {
  evaluate(states: readonly S[]): Promise<Evaluation[]>;
}

/** Uniform policy over the legal moves and value 0: search guided by nothing but the rules. */
export function uniformEvaluator<S>(game: Game<S>): Evaluator<S> {
  return {
    evaluate(states) {
      return Promise.resolve(
        states.map((s) => {
          const policy = new Float32Array(game.numMoves);
          const legal = game.legalMoves(s);
          for (const m of legal) policy[m] = 1 / legal.length;
          return { policy, value: 0 };
        }),
      );
    },
  };
}

/**
 * Turns raw policy logits (one per move) into probabilities over the legal moves only (softmax
 * restricted to them; illegal moves get exactly 0). Shared by every evaluator built on a network.
 */
export function legalSoftmax(logits: ArrayLike<number>, offset: number, legal: readonly number[], numMoves: number): Float32Array {
  const out = new Float32Array(numMoves);
  let max = -Infinity;
  for (const m of legal) max = Math.max(max, logits[offset + m] as number);
  let sum = 0;
  for (const m of legal) {
    const e = Math.exp((logits[offset + m] as number) - max);
    out[m] = e;
    sum += e;
  }
  for (const m of legal) out[m] = (out[m] as number) / sum;
  return out;
}

/** Counts what passes through an evaluator (calls, positions), for throughput reports. */
export class CountingEvaluator<S> implements Evaluator<S> {
  calls = 0;
  positions = 0;
  constructor(private readonly inner: Evaluator<S>) {}
  evaluate(states: readonly S[]): Promise<Evaluation[]> {
    this.calls++;
    this.positions += states.length;
    return this.inner.evaluate(states);
  }
}
