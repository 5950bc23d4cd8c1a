import { AutodidactError, Code } from "../../platform/errors/index.js";
import { serialize } from "../graph/serialize.js";
import type { TransformerConfig } from "../model/config.js";
import { checkParameters, type Parameters } from "../model/params.js";
import { createSession, type ModelSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import type { Batch } from "./batch.js";
import { buildTrainingGraph, DEFAULT_LORA, type LoraOptions, type TrainMode, type TrainingGraph } from "./graph.js";
import { checkAdapters, initLoraAdapters, type Adapters } from "./lora.js";
import { AdamW, type AdamWOptions, type AdamWState } from "./optimizer.js";

/** Everything needed to start training (plain data: it crosses into the trainer's worker). */
export interface TrainerOptions {
  readonly config: TransformerConfig;
  /** Initial (or base, in LoRA mode) weights; copied. */
  readonly weights: Parameters;
  readonly mode: TrainMode;
  readonly lora?: LoraOptions;
  /** Starting adapters (LoRA mode); default: fresh PEFT-style init from `seed`. */
  readonly adapters?: Adapters;
  readonly optimizer: AdamWOptions;
  readonly seed?: number;
  /** Static batch size / sequence length of the graph (faster kernels); default symbolic. */
  readonly batchSize?: number;
  readonly seqLen?: number;
  /** ORT intra-op threads; default ORT's choice (all cores). */
  readonly threads?: number;
}

/** What a step reports. */
export interface StepResult {
  readonly loss: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  readonly lr: number;
  /** Updates applied so far, including this one. */
  readonly step: number;
}

/**
 * The training loop's state in one thread: the training-graph session, the trainable tensors,
 * frozen tensors and AdamW. The `Trainer` runs it inside a worker thread; tests and benchmarks
 * may drive it directly. One `step` = one ORT run (forward + loss + all gradients) + one update.
 */
export class TrainerCore {
  private constructor(
    readonly config: TransformerConfig,
    readonly mode: TrainMode,
    readonly lora: LoraOptions | undefined,
    readonly graph: TrainingGraph,
    private readonly session: ModelSession,
    /** Trainable tensors, in graph order (params in full mode, adapters in LoRA mode). */
    private readonly trainable: Map<string, HostTensor<"float32">>,
    /** Frozen base tensors (LoRA mode). */
    private readonly frozen: Map<string, HostTensor<"float32">>,
    private readonly optimizer: AdamW,
    private readonly gradBuffers: TensorMap,
  ) {}

  /** Builds the training graph, loads it into ORT (in this thread) and sets up the optimizer. */
  static async create(options: TrainerOptions): Promise<TrainerCore> {
    const c = options.config;
    checkParameters(c, options.weights, "initial weights");
    const lora = options.mode === "lora" ? (options.lora ?? DEFAULT_LORA) : undefined;
    const graph = buildTrainingGraph(c, {
      mode: options.mode,
      ...(lora !== undefined ? { lora } : {}),
      dtype: "float32",
      ...(options.batchSize !== undefined ? { batch: options.batchSize } : {}),
      ...(options.seqLen !== undefined ? { seq: options.seqLen } : {}),
    });
    const session = await createSession(serialize(graph.model), {
      ...(options.threads !== undefined ? { intraOpThreads: options.threads } : {}),
      interOpThreads: 1,
    });
    const copy = (t: HostTensor): HostTensor<"float32"> => ({ dtype: "float32", dims: [...t.dims], data: Float32Array.from(t.data as Float32Array) });
    const trainable = new Map<string, HostTensor<"float32">>();
    const frozen = new Map<string, HostTensor<"float32">>();
    if (lora !== undefined) {
      const adapters = options.adapters ?? initLoraAdapters(c, lora, options.seed ?? 0);
      checkAdapters(c, lora, adapters);
      for (const name of graph.trainable) trainable.set(name, copy(adapters[name]!));
      for (const name of graph.frozen) frozen.set(name, copy(options.weights[name]!));
    } else {
      for (const name of graph.trainable) trainable.set(name, copy(options.weights[name]!));
    }
    const params = [...trainable.entries()].map(([name, t]) => ({ name, dims: t.dims, data: t.data }));
    const optimizer = new AdamW(params, options.optimizer);
    const gradBuffers: TensorMap = {};
    for (const [name, t] of trainable) {
      gradBuffers[graph.gradients.get(name)!] = { dtype: "float32", dims: t.dims, data: new Float32Array(t.data.length) };
    }
    return new TrainerCore(c, options.mode, lora, graph, session, trainable, frozen, optimizer, gradBuffers);
  }

  private feeds(batch: Batch): TensorMap {
    this.checkBatch(batch);
    const dims = [batch.batchSize, batch.seqLen];
    const feeds: TensorMap = {
      [this.graph.dataInputs.ids]: { dtype: "int64", dims, data: batch.inputIds },
      [this.graph.dataInputs.targets]: { dtype: "int64", dims, data: batch.targets },
      [this.graph.dataInputs.mask]: { dtype: "float32", dims, data: batch.mask },
    };
    for (const [k, t] of this.trainable) feeds[k] = t;
    for (const [k, t] of this.frozen) feeds[k] = t;
    return feeds;
  }

  private checkBatch(batch: Batch): void {
    const n = batch.batchSize * batch.seqLen;
    if (batch.inputIds.length !== n || batch.targets.length !== n || batch.mask.length !== n) {
      throw new AutodidactError(`batch arrays do not match [${batch.batchSize}, ${batch.seqLen}]`, Code.InvalidArgument);
    }
    if (batch.seqLen > this.config.maxPositions) {
      throw new AutodidactError(`sequence length ${batch.seqLen} exceeds the model's ${this.config.maxPositions} positions`, Code.InvalidArgument);
    }
    const V = BigInt(this.config.vocabSize);
    for (let i = 0; i < n; i++) {
      const a = batch.inputIds[i]!;
      const b = batch.targets[i]!;
      if (a < 0n || a >= V || b < 0n || b >= V) throw new AutodidactError(`token id out of range [0, ${V}) at position ${i}`, Code.InvalidArgument);
    }
  }

  /**
   * One optimization step. Throws `Code.Aborted` (weights untouched) when the loss or the
   * gradients are not finite or explode.
   */
  async step(batch: Batch): Promise<StepResult> {
    const names = [this.graph.loss, ...this.graph.trainable.map((t) => this.graph.gradients.get(t)!)];
    const out = await this.session.run(this.feeds(batch), names, this.gradBuffers);
    const loss = Number(out[this.graph.loss]!.data[0]);
    const grads = this.graph.trainable.map((t) => this.gradBuffers[this.graph.gradients.get(t)!]!.data as Float32Array);
    const r = this.optimizer.update(grads, loss);
    return { loss, gradNorm: r.gradNorm, lr: r.lr, step: r.step };
  }

  /** The loss on a batch without updating anything. */
  async evaluate(batch: Batch): Promise<number> {
    const out = await this.session.run(this.feeds(batch), [this.graph.loss]);
    return Number(out[this.graph.loss]!.data[0]);
  }

  /** Current full weights (trained ones in full mode; the frozen base in LoRA mode); copies. */
  weights(): Parameters {
    const src = this.mode === "full" ? this.trainable : this.frozen;
    const out: Parameters = {};
    for (const [k, t] of src) out[k] = { dtype: "float32", dims: [...t.dims], data: t.data.slice() };
    return out;
  }

  /** Current adapters (LoRA mode); copies. */
  adapters(): Adapters {
    if (this.mode !== "lora") throw new AutodidactError("adapters exist only in LoRA mode", Code.FailedPrecondition);
    const out: Adapters = {};
    for (const [k, t] of this.trainable) out[k] = { dtype: "float32", dims: [...t.dims], data: t.data.slice() };
    return out;
  }

  /** Replaces the weights in place (same session; optimizer moments kept unless `resetOptimizer`). */
  setWeights(weights: Parameters): void {
    checkParameters(this.config, weights, "weights");
    const dst = this.mode === "full" ? this.trainable : this.frozen;
    for (const [k, t] of dst) t.data.set(weights[k]!.data);
  }

  /** Swaps in other adapters: a tensor swap, the session stays. */
  setAdapters(adapters: Adapters): void {
    if (this.mode !== "lora" || this.lora === undefined) throw new AutodidactError("adapters exist only in LoRA mode", Code.FailedPrecondition);
    checkAdapters(this.config, this.lora, adapters);
    for (const [k, t] of this.trainable) t.data.set(adapters[k]!.data);
  }

  /** Optimizer moments and step count (for resumable checkpoints). */
  optimizerState(): AdamWState {
    return this.optimizer.state();
  }

  /** Restores optimizer moments and step count (resuming from a checkpoint). */
  loadOptimizerState(state: AdamWState): void {
    this.optimizer.loadState(state);
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.optimizer.step;
  }

  /** Frees the ORT session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
