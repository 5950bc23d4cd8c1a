import { AutodidactError, Code } from "../../platform/errors/index.js";
import { buildGradientModel } from "../autodiff/gradient.js";
import { serialize } from "../graph/serialize.js";
import type { Model } from "../graph/ir.js";
import type { Parameters } from "../model/params.js";
import { buildPolicyValueLossGraph, checkPolicyValueParams, POLICY_VALUE_IO, type PolicyValueConfig } from "../model/policy-value.js";
import type { FloatDType } from "../model/transformer.js";
import { createSession, type ModelSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { AdamW, type AdamWOptions, type AdamWState } from "./optimizer.js";

/** Options of {@link buildPolicyValueTrainingGraph}. */
export interface PolicyValueTrainingGraphOptions {
  readonly dtype?: FloatDType;
  /** Fixed batch size (faster kernels) or a symbolic name. Default "batch". */
  readonly batch?: number | string;
  /** Weight of the value loss. Default 1. */
  readonly valueWeight?: number;
  /** com.microsoft FusedMatMul in the backward (float32 only). Default true for float32. */
  readonly contrib?: boolean;
}

/** The one graph a policy/value training step runs, and where its gradients come out. */
export interface PolicyValueTrainingGraph {
  readonly model: Model;
  readonly trainable: readonly string[];
  /** Parameter → gradient output. */
  readonly gradients: ReadonlyMap<string, string>;
}

/**
 * Forward pass, AlphaZero loss (soft-target cross-entropy + value MSE, see
 * `buildPolicyValueLossGraph`) and the gradient of the loss w.r.t. every parameter, as ONE ONNX
 * graph (outputs: loss, policy_loss, value_loss, then the gradients). Full training: a network
 * this small (tens of thousands of weights) is trained from scratch, where LoRA has nothing to adapt.
 */
export function buildPolicyValueTrainingGraph(c: PolicyValueConfig, options: PolicyValueTrainingGraphOptions = {}): PolicyValueTrainingGraph {
  const dtype = options.dtype ?? "float32";
  const lossGraph = buildPolicyValueLossGraph(c, { dtype, ...(options.batch !== undefined ? { batch: options.batch } : {}), ...(options.valueWeight !== undefined ? { valueWeight: options.valueWeight } : {}) });
  const { model, gradients } = buildGradientModel(lossGraph.model, {
    wrt: lossGraph.trainable,
    loss: POLICY_VALUE_IO.loss,
    keep: [POLICY_VALUE_IO.policyLoss, POLICY_VALUE_IO.valueLoss],
    contrib: options.contrib ?? dtype === "float32",
  });
  return { model, trainable: lossGraph.trainable, gradients };
}

/**
 * A batch of training positions as the training graph takes it. Plain typed arrays, so it
 * crosses into the trainer's worker without conversion.
 */
export interface PolicyValueBatch {
  readonly batchSize: number;
  /** [B, inputLength] token ids. */
  readonly tokens: BigInt64Array;
  /** [B, numMoves]: 1 for legal moves. */
  readonly legal: Uint8Array;
  /** [B, numMoves]: target move distribution (sums to 1 over legal moves). */
  readonly policy: Float32Array;
  /** [B]: target value in [−1, 1] for the player to move. */
  readonly value: Float32Array;
}

/** What a policy/value step reports. */
export interface PolicyValueStepResult {
  readonly loss: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  readonly gradNorm: number;
  readonly lr: number;
  readonly step: number;
}

/** Everything a policy/value trainer starts from (plain data: it crosses into a worker). */
export interface PolicyValueTrainerOptions {
  readonly config: PolicyValueConfig;
  /** Initial weights; copied. */
  readonly weights: Parameters;
  readonly optimizer: AdamWOptions;
  /** Weight of the value loss. Default 1. */
  readonly valueWeight?: number;
  /** Static batch size of the graph; default symbolic. */
  readonly batchSize?: number;
  /** ORT intra-op threads; default ORT's choice. */
  readonly threads?: number;
}

/** Checks a batch against the config: sizes, token range, targets on legal moves only. */
export function checkPolicyValueBatch(c: PolicyValueConfig, batch: PolicyValueBatch): void {
  const B = batch.batchSize;
  const bad = (msg: string): AutodidactError => new AutodidactError(`policy-value batch: ${msg}`, Code.InvalidArgument);
  if (!Number.isInteger(B) || B < 1) throw bad(`batchSize must be a positive integer, got ${B}`);
  if (batch.tokens.length !== B * c.inputLength) throw bad(`tokens has ${batch.tokens.length} entries, expected ${B}×${c.inputLength}`);
  for (const [name, arr] of [
    ["legal", batch.legal],
    ["policy", batch.policy],
  ] as const) {
    if (arr.length !== B * c.numMoves) throw bad(`${name} has ${arr.length} entries, expected ${B}×${c.numMoves}`);
  }
  if (batch.value.length !== B) throw bad(`value has ${batch.value.length} entries, expected ${B}`);
  const V = BigInt(c.vocabSize);
  for (let i = 0; i < batch.tokens.length; i++) {
    const t = batch.tokens[i]!;
    if (t < 0n || t >= V) throw bad(`token ${t} at ${i} is outside [0, ${c.vocabSize})`);
  }
  for (let r = 0; r < B; r++) {
    let any = false;
    for (let m = 0; m < c.numMoves; m++) {
      const k = r * c.numMoves + m;
      const p = batch.policy[k]!;
      if (!(p >= 0 && p <= 1)) throw bad(`policy target ${p} at row ${r}, move ${m} is not a probability`);
      if (batch.legal[k] === 1) any = true;
      else if (p > 0) throw bad(`row ${r} puts probability ${p} on illegal move ${m}`);
    }
    if (!any) throw bad(`row ${r} has no legal move`);
    const v = batch.value[r]!;
    if (!(v >= -1 && v <= 1)) throw bad(`value target ${v} at row ${r} is outside [-1, 1]`);
  }
}

/**
 * The policy/value training loop's state in one thread: the training-graph session, the weights
 * and AdamW. One `step` = one ORT run (forward, loss and every gradient) + one update. Run in a
 * worker through `createPolicyValueTrainer`; tests may drive it directly.
 */
export class PolicyValueTrainerCore {
  private constructor(
    readonly config: PolicyValueConfig,
    readonly graph: PolicyValueTrainingGraph,
    private readonly session: ModelSession,
    private readonly params: Map<string, HostTensor<"float32">>,
    private readonly optimizer: AdamW,
    private readonly gradBuffers: TensorMap,
  ) {}

  /** Builds the training graph, loads it into ORT in this thread and sets up AdamW. */
  static async create(options: PolicyValueTrainerOptions): Promise<PolicyValueTrainerCore> {
    const c = options.config;
    checkPolicyValueParams(c, options.weights, "initial weights");
    const graph = buildPolicyValueTrainingGraph(c, {
      ...(options.batchSize !== undefined ? { batch: options.batchSize } : {}),
      ...(options.valueWeight !== undefined ? { valueWeight: options.valueWeight } : {}),
    });
    const session = await createSession(serialize(graph.model), { ...(options.threads !== undefined ? { intraOpThreads: options.threads } : {}), interOpThreads: 1 });
    const params = new Map<string, HostTensor<"float32">>();
    for (const name of graph.trainable) {
      const t = options.weights[name]!;
      params.set(name, { dtype: "float32", dims: [...t.dims], data: Float32Array.from(t.data) });
    }
    const optimizer = new AdamW([...params].map(([name, t]) => ({ name, dims: t.dims, data: t.data })), options.optimizer);
    const gradBuffers: TensorMap = {};
    for (const [name, t] of params) gradBuffers[graph.gradients.get(name)!] = { dtype: "float32", dims: t.dims, data: new Float32Array(t.data.length) };
    return new PolicyValueTrainerCore(c, graph, session, params, optimizer, gradBuffers);
  }

  private feeds(batch: PolicyValueBatch): TensorMap {
    checkPolicyValueBatch(this.config, batch);
    const B = batch.batchSize;
    const c = this.config;
    const io = POLICY_VALUE_IO;
    const feeds: TensorMap = {
      [io.tokens]: { dtype: "int64", dims: [B, c.inputLength], data: batch.tokens },
      [io.legal]: { dtype: "bool", dims: [B, c.numMoves], data: batch.legal },
      [io.targetPolicy]: { dtype: "float32", dims: [B, c.numMoves], data: batch.policy },
      [io.targetValue]: { dtype: "float32", dims: [B], data: batch.value },
    };
    for (const [name, t] of this.params) feeds[name] = t;
    return feeds;
  }

  /** One update. Rejects with `Code.Aborted` (weights untouched) on a non-finite or exploding step. */
  async step(batch: PolicyValueBatch): Promise<PolicyValueStepResult> {
    const io = POLICY_VALUE_IO;
    const names = [io.loss, io.policyLoss, io.valueLoss, ...this.graph.trainable.map((t) => this.graph.gradients.get(t)!)];
    const out = await this.session.run(this.feeds(batch), names, this.gradBuffers);
    const loss = Number(out[io.loss]!.data[0]);
    const grads = this.graph.trainable.map((t) => this.gradBuffers[this.graph.gradients.get(t)!]!.data as Float32Array);
    const r = this.optimizer.update(grads, loss);
    return { loss, policyLoss: Number(out[io.policyLoss]!.data[0]), valueLoss: Number(out[io.valueLoss]!.data[0]), gradNorm: r.gradNorm, lr: r.lr, step: r.step };
  }

  /** Losses on a batch without updating anything. */
  async evaluate(batch: PolicyValueBatch): Promise<{ loss: number; policyLoss: number; valueLoss: number }> {
    const io = POLICY_VALUE_IO;
    const out = await this.session.run(this.feeds(batch), [io.loss, io.policyLoss, io.valueLoss]);
    return { loss: Number(out[io.loss]!.data[0]), policyLoss: Number(out[io.policyLoss]!.data[0]), valueLoss: Number(out[io.valueLoss]!.data[0]) };
  }

  /** Copies of the current weights. */
  weights(): Parameters {
    const out: Parameters = {};
    for (const [k, t] of this.params) out[k] = { dtype: "float32", dims: [...t.dims], data: t.data.slice() };
    return out;
  }

  /** Replaces the weights in place (optimizer moments kept). */
  setWeights(weights: Parameters): void {
    checkPolicyValueParams(this.config, weights, "weights");
    for (const [k, t] of this.params) t.data.set(weights[k]!.data);
  }

  optimizerState(): AdamWState {
    return this.optimizer.state();
  }

  loadOptimizerState(state: AdamWState): void {
    this.optimizer.loadState(state);
  }

  get stepCount(): number {
    return this.optimizer.step;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
