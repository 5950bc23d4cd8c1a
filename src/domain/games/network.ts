import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createPolicyValueConfig, type PolicyValueArch, type PolicyValueBatch, type PolicyValueConfig, type PolicyValueNetwork } from "../../engine/index.js";
import { legalSoftmax, type Evaluation, type Evaluator } from "./evaluator.js";
import type { Game } from "./game.js";
import type { TrainingExample } from "./replay.js";

/** Network shape knobs; the input and output shapes come from the game. */
export interface NetworkSize {
  /** `conv` needs a game whose encoding declares its grid. Default "mlp". */
  readonly arch?: PolicyValueArch;
  readonly hidden?: number;
  readonly blocks?: number;
  readonly valueHidden?: number;
  readonly kernel?: number;
}

/** The policy/value config of a game: its token encoding in (and its grid, for conv), its move space out. */
export function policyValueConfigFor<S>(game: Game<S>, size: NetworkSize = {}): PolicyValueConfig {
  const grid = game.tokens.grid;
  if (size.arch === "conv" && grid === undefined) throw new AutodidactError(`${game.name} declares no grid to convolve over`, Code.InvalidArgument);
  return createPolicyValueConfig({
    inputLength: game.tokens.length,
    vocabSize: game.tokens.vocabulary.length,
    numMoves: game.numMoves,
    ...size,
    ...(size.arch === "conv" ? { board: { rows: grid!.rows, cols: grid!.cols } } : {}),
  });
}

/** Options of {@link networkEvaluator}. */
export interface NetworkEvaluatorOptions {
  /**
   * Remember this many evaluations by position (transpositions and repeated openings hit it).
   * Default 0 (off). The oldest entries go first.
   */
  readonly cacheSize?: number;
}

/**
 * An {@link Evaluator} backed by a policy/value network in a worker: each call encodes the states
 * and runs them as ONE batch; the logits become probabilities over the legal moves only.
 */
export class NetworkEvaluator<S> implements Evaluator<S> {
  private readonly cache = new Map<string, Evaluation>();
  /** Positions answered from the cache. */
  hits = 0;

  constructor(
    private readonly game: Game<S>,
    private readonly network: PolicyValueNetwork,
    private readonly options: NetworkEvaluatorOptions = {},
  ) {
    const c = network.config;
    if (c.inputLength !== game.tokens.length || c.numMoves !== game.numMoves || c.vocabSize !== game.tokens.vocabulary.length) {
      throw new AutodidactError(`network (${c.inputLength} tokens of ${c.vocabSize}, ${c.numMoves} moves) does not fit ${game.name}`, Code.InvalidArgument);
    }
  }

  async evaluate(states: readonly S[]): Promise<Evaluation[]> {
    const cacheSize = this.options.cacheSize ?? 0;
    const out = new Array<Evaluation | undefined>(states.length);
    const keys = cacheSize > 0 ? states.map((s) => this.game.key(s)) : null;
    const todo: number[] = [];
    states.forEach((_, i) => {
      const hit = keys === null ? undefined : this.cache.get(keys[i]!);
      if (hit !== undefined) {
        out[i] = hit;
        this.hits++;
      } else todo.push(i);
    });
    if (todo.length > 0) {
      const L = this.game.tokens.length;
      const M = this.game.numMoves;
      const tokens = new Int32Array(todo.length * L);
      todo.forEach((i, k) => tokens.set(this.game.encode(states[i]!), k * L));
      const { logits, values } = await this.network.evaluate(tokens, todo.length);
      todo.forEach((i, k) => {
        const e: Evaluation = { policy: legalSoftmax(logits, k * M, this.game.legalMoves(states[i]!), M), value: values[k] as number };
        out[i] = e;
        if (keys !== null) {
          this.cache.set(keys[i]!, e);
          if (this.cache.size > cacheSize) this.cache.delete(this.cache.keys().next().value as string);
        }
      });
    }
    return out as Evaluation[];
  }
}

/** Packs training examples into the engine's batch layout. */
export function toPolicyValueBatch(examples: readonly TrainingExample[]): PolicyValueBatch {
  const B = examples.length;
  if (B === 0) throw new AutodidactError("cannot make a batch of zero examples", Code.InvalidArgument);
  const L = examples[0]!.tokens.length;
  const M = examples[0]!.policy.length;
  const tokens = new BigInt64Array(B * L);
  const legal = new Uint8Array(B * M);
  const policy = new Float32Array(B * M);
  const value = new Float32Array(B);
  examples.forEach((e, r) => {
    for (let i = 0; i < L; i++) tokens[r * L + i] = BigInt(e.tokens[i] as number);
    legal.set(e.legal, r * M);
    policy.set(e.policy, r * M);
    value[r] = e.value;
  });
  return { batchSize: B, tokens, legal, policy, value };
}
