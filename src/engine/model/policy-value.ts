import { AutodidactError, Code } from "../../platform/errors/index.js";
import { GraphBuilder } from "../graph/builder.js";
import type { Model, ValueInfo } from "../graph/ir.js";
import { createRng } from "../random.js";
import { convForward, convGeometry, convParamSpecs } from "./policy-value-conv.js";
import type { FloatDType } from "./transformer.js";
import type { Parameters } from "./params.js";

/**
 * Trunk of a policy/value network. `mlp`: the tokens one-hot encoded, a linear input layer and
 * pre-norm residual MLP blocks. `conv`: the board tokens as a grid, k×k convolutions with weights
 * shared across the board (see policy-value-conv.ts).
 */
export type PolicyValueArch = "mlp" | "conv";

/**
 * A policy/value network over a fixed-length token sequence (a game position encoded by its
 * game), with two heads: move logits (one per move) and a scalar value in (−1, 1) (tanh). No
 * attention encoder: at 43 cells a transformer costs ~50× the FLOPs per position of the MLP, and
 * search needs thousands of evaluations per second on two cores.
 */
export interface PolicyValueConfig {
  /** Default "mlp". */
  readonly arch?: PolicyValueArch;
  /** conv only: the first rows×cols tokens are the board, row-major; later tokens are global. */
  readonly board?: { readonly rows: number; readonly cols: number };
  /** conv only: kernel size (odd). Default 3. */
  readonly kernel?: number;
  /** Tokens per position. */
  readonly inputLength: number;
  /** Token ids are in [0, vocabSize). */
  readonly vocabSize: number;
  /** Width of the policy head (the game's move space). */
  readonly numMoves: number;
  /** Width of the trunk (conv: channels per cell). */
  readonly hidden: number;
  /** Residual blocks in the trunk. */
  readonly blocks: number;
  /** Width of the value head's hidden layer. */
  readonly valueHidden: number;
  readonly normEps: number;
}

/** Fills defaults (hidden 128, 2 blocks, value head 64) and checks every field. */
export function createPolicyValueConfig(partial: Partial<PolicyValueConfig> & Pick<PolicyValueConfig, "inputLength" | "vocabSize" | "numMoves">): PolicyValueConfig {
  const c: PolicyValueConfig = { hidden: 128, blocks: 2, valueHidden: 64, normEps: 1e-5, ...partial };
  for (const k of ["inputLength", "vocabSize", "numMoves", "hidden", "valueHidden"] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new AutodidactError(`policy-value config: ${k} must be a positive integer, got ${c[k]}`, Code.InvalidArgument);
  }
  if (!Number.isInteger(c.blocks) || c.blocks < 0) throw new AutodidactError(`policy-value config: blocks must be a non-negative integer, got ${c.blocks}`, Code.InvalidArgument);
  if (!(c.normEps > 0)) throw new AutodidactError("policy-value config: normEps must be > 0", Code.InvalidArgument);
  const arch = c.arch ?? "mlp";
  if (arch !== "mlp" && arch !== "conv") throw new AutodidactError(`policy-value config: arch must be "mlp" or "conv", got "${String(arch)}"`, Code.InvalidArgument);
  if (arch === "conv") convGeometry(c);
  return c;
}

/** Role of a policy/value parameter (init and weight decay key on it). */
export type PolicyValueParamKind = "embedding" | "linear" | "bias" | "norm_weight" | "norm_bias";

/** Name, shape and role of one parameter. Linear weights are stored [in, out] (ONNX MatMul order). */
export interface PolicyValueParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: PolicyValueParamKind;
  /** Standard deviation of the initial values of a linear weight or embedding. */
  readonly initStd?: number;
}

/** Parameter names of the MLP network, in one place so graphs, init and checkpoints agree (conv: `convNames`). */
export const policyValueNames = {
  inputWeight: "input.weight",
  inputBias: "input.bias",
  block: (i: number, part: "norm.weight" | "norm.bias" | "fc1.weight" | "fc1.bias" | "fc2.weight" | "fc2.bias"): string => `blocks.${i}.${part}`,
  trunkNormWeight: "trunk_norm.weight",
  trunkNormBias: "trunk_norm.bias",
  policyWeight: "policy.weight",
  policyBias: "policy.bias",
  valueWeight: "value.fc.weight",
  valueBias: "value.fc.bias",
  valueOutWeight: "value.out.weight",
  valueOutBias: "value.out.bias",
} as const;

/**
 * Every parameter in a stable order. Init scales: He (√(2/fan_in)) for layers followed by ReLU,
 * the second layer of each block scaled down by √(2·blocks) (residual branches start small), and
 * small heads (0.01), so a fresh network has a near-uniform policy and values near 0.
 */
export function policyValueParamSpecs(c: PolicyValueConfig): PolicyValueParamSpec[] {
  if (c.arch === "conv") return convParamSpecs(c);
  const n = policyValueNames;
  const H = c.hidden;
  const inWidth = c.inputLength * c.vocabSize;
  // The one-hot input has inputLength ones, so the input layer's fan-in is that, not its width.
  const specs: PolicyValueParamSpec[] = [
    { name: n.inputWeight, shape: [inWidth, H], kind: "linear", initStd: Math.sqrt(2 / c.inputLength) },
    { name: n.inputBias, shape: [H], kind: "bias" },
  ];
  for (let i = 0; i < c.blocks; i++) {
    specs.push(
      { name: n.block(i, "norm.weight"), shape: [H], kind: "norm_weight" },
      { name: n.block(i, "norm.bias"), shape: [H], kind: "norm_bias" },
      { name: n.block(i, "fc1.weight"), shape: [H, H], kind: "linear", initStd: Math.sqrt(2 / H) },
      { name: n.block(i, "fc1.bias"), shape: [H], kind: "bias" },
      { name: n.block(i, "fc2.weight"), shape: [H, H], kind: "linear", initStd: Math.sqrt(2 / H) / Math.sqrt(2 * c.blocks) },
      { name: n.block(i, "fc2.bias"), shape: [H], kind: "bias" },
    );
  }
  specs.push(
    { name: n.trunkNormWeight, shape: [H], kind: "norm_weight" },
    { name: n.trunkNormBias, shape: [H], kind: "norm_bias" },
    { name: n.policyWeight, shape: [H, c.numMoves], kind: "linear", initStd: 0.01 },
    { name: n.policyBias, shape: [c.numMoves], kind: "bias" },
    { name: n.valueWeight, shape: [H, c.valueHidden], kind: "linear", initStd: Math.sqrt(2 / H) },
    { name: n.valueBias, shape: [c.valueHidden], kind: "bias" },
    { name: n.valueOutWeight, shape: [c.valueHidden, 1], kind: "linear", initStd: 0.01 },
    { name: n.valueOutBias, shape: [1], kind: "bias" },
  );
  return specs;
}

/** Number of scalar parameters. */
export function policyValueParameterCount(c: PolicyValueConfig): number {
  return policyValueParamSpecs(c).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}

/** Seeded init (see {@link policyValueParamSpecs}); each tensor from its own stream forked by name. */
export function initPolicyValueParams(c: PolicyValueConfig, seed: number | string): Parameters {
  const rng = createRng(`policy-value:${seed}`);
  const out: Parameters = {};
  for (const s of policyValueParamSpecs(c)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.kind === "linear" || s.kind === "embedding") rng.fork(s.name).fillNormal(data, 0, s.initStd ?? 0.02);
    else if (s.kind === "norm_weight") data.fill(1);
    out[s.name] = { dtype: "float32", dims: [...s.shape], data };
  }
  return out;
}

/** Checks that a weight set has exactly the config's parameters with the right shapes. */
export function checkPolicyValueParams(c: PolicyValueConfig, params: Readonly<Record<string, { readonly dims: readonly number[] }>>, source = "parameters"): void {
  const specs = policyValueParamSpecs(c);
  for (const s of specs) {
    const p = params[s.name];
    if (!p) throw new AutodidactError(`${source}: missing parameter ${s.name}`, Code.InvalidArgument);
    if (p.dims.length !== s.shape.length || p.dims.some((d, i) => d !== s.shape[i])) {
      throw new AutodidactError(`${source}: ${s.name} has shape [${p.dims.join(",")}], config needs [${s.shape.join(",")}]`, Code.InvalidArgument);
    }
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = Object.keys(params).filter((k) => !known.has(k));
  if (extra.length > 0) throw new AutodidactError(`${source}: unexpected parameters ${extra.slice(0, 5).join(", ")}`, Code.InvalidArgument);
}

/** Input and output names of the policy/value graphs. */
export const POLICY_VALUE_IO = {
  tokens: "tokens",
  logits: "policy_logits",
  value: "value",
  legal: "legal",
  targetPolicy: "target_policy",
  targetValue: "target_value",
  policyLoss: "policy_loss",
  valueLoss: "value_loss",
  loss: "loss",
} as const;

/** Options of {@link buildPolicyValueGraph}. */
export interface PolicyValueGraphOptions {
  /** Weights as initializers (an inference model); without them every parameter is a graph input. */
  readonly params?: Parameters;
  readonly dtype?: FloatDType;
  /** Batch dimension: fixed or symbolic. Default "batch". */
  readonly batch?: number | string;
}

/**
 * The forward graph: `tokens` int64 [B, inputLength] → `policy_logits` [B, numMoves] and `value`
 * [B] (tanh). Standard ONNX ops with gradient rules only (Equal/Cast one-hot, MatMul, Add, Relu,
 * LayerNormalization, Tanh), so the same builder serves inference and training.
 */
export function buildPolicyValueGraph(c: PolicyValueConfig, options: PolicyValueGraphOptions = {}): Model {
  const b = new GraphBuilder("autodidact_policy_value");
  const dtype = options.dtype ?? "float32";
  const tokens = b.input(POLICY_VALUE_IO.tokens, "int64", [options.batch ?? "batch", c.inputLength]);
  const weight = parameterSource(b, c, dtype, options.params);
  const { logits, value } = policyValueForward(b, c, dtype, weight, tokens);
  b.output(logits, POLICY_VALUE_IO.logits);
  b.output(value, POLICY_VALUE_IO.value);
  return b.buildModel({ metadata: { "autodidact.graph": options.params ? "policy-value-inference" : "policy-value-forward", "autodidact.config": JSON.stringify(c) } });
}

/** Declares the parameters (inputs, or initializers when weights are given) and returns a lookup. */
export function parameterSource(b: GraphBuilder, c: PolicyValueConfig, dtype: FloatDType, params?: Parameters): (name: string) => ValueInfo {
  if (params !== undefined) checkPolicyValueParams(c, params);
  const values = new Map<string, ValueInfo>();
  for (const s of policyValueParamSpecs(c)) {
    if (params === undefined) values.set(s.name, b.input(s.name, dtype, s.shape));
    else {
      const src = params[s.name]!.data;
      values.set(s.name, dtype === "float32" ? b.initializer(s.name, "float32", s.shape, Float32Array.from(src)) : b.initializer(s.name, "float64", s.shape, Float64Array.from(src)));
    }
  }
  return (name) => {
    const v = values.get(name);
    if (v === undefined) throw new AutodidactError(`no parameter ${name}`, Code.Internal);
    return v;
  };
}

/** The network's body on `tokens` [B, L]: logits [B, M] and value [B]. */
export function policyValueForward(b: GraphBuilder, c: PolicyValueConfig, dtype: FloatDType, w: (name: string) => ValueInfo, tokens: ValueInfo): { logits: ValueInfo; value: ValueInfo } {
  if (c.arch === "conv") return convForward(b, c, dtype, w, tokens);
  const n = policyValueNames;
  const ids = b.constant("int64", [c.vocabSize], BigInt64Array.from({ length: c.vocabSize }, (_, i) => BigInt(i)));
  // One-hot [B, L, V] as Equal + Cast (works in any float dtype, unlike ORT's OneHot kernels).
  const oneHot = b.cast(b.compare("Equal", b.unsqueeze(tokens, [-1]), ids), dtype);
  const flat = b.reshape(oneHot, [-1, c.inputLength * c.vocabSize]);
  let h = b.unary("Relu", b.linear(flat, w(n.inputWeight), w(n.inputBias)));
  for (let i = 0; i < c.blocks; i++) {
    const a = b.layerNorm(h, w(n.block(i, "norm.weight")), w(n.block(i, "norm.bias")), c.normEps);
    const mid = b.unary("Relu", b.linear(a, w(n.block(i, "fc1.weight")), w(n.block(i, "fc1.bias"))));
    h = b.add(h, b.linear(mid, w(n.block(i, "fc2.weight")), w(n.block(i, "fc2.bias"))));
  }
  h = b.layerNorm(h, w(n.trunkNormWeight), w(n.trunkNormBias), c.normEps);
  const logits = b.linear(h, w(n.policyWeight), w(n.policyBias));
  const v = b.unary("Relu", b.linear(h, w(n.valueWeight), w(n.valueBias)));
  const value = b.reshape(b.tanh(b.linear(v, w(n.valueOutWeight), w(n.valueOutBias))), [-1]);
  return { logits, value };
}

/** Options of {@link buildPolicyValueLossGraph}. */
export interface PolicyValueLossOptions {
  readonly dtype?: FloatDType;
  readonly batch?: number | string;
  /** Weight of the value MSE against the policy cross-entropy. Default 1. */
  readonly valueWeight?: number;
}

/** A loss graph and the names a trainer feeds and reads. */
export interface PolicyValueLossGraph {
  readonly model: Model;
  /** Parameter inputs, spec order (all trained: full training). */
  readonly trainable: readonly string[];
}

/**
 * The forward graph plus the AlphaZero loss, before differentiation. New inputs: `legal` bool
 * [B, M], `target_policy` [B, M] (the search's visit distribution, zero off `legal`),
 * `target_value` [B] (the game's outcome for the player to move). Outputs:
 *   policy_loss = mean_b −Σ_m π_bm · log softmax_legal(logits_b)_m   (soft-target cross-entropy,
 *                 illegal logits replaced by −1e9 before the LogSoftmax),
 *   value_loss  = mean_b (v_b − z_b)²,
 *   loss        = policy_loss + valueWeight · value_loss.
 * Weight decay is the optimizer's (AdamW), not a term here.
 */
export function buildPolicyValueLossGraph(c: PolicyValueConfig, options: PolicyValueLossOptions = {}): PolicyValueLossGraph {
  const io = POLICY_VALUE_IO;
  const dtype = options.dtype ?? "float32";
  const batch = options.batch ?? "batch";
  const b = new GraphBuilder("autodidact_policy_value_loss");
  const tokens = b.input(io.tokens, "int64", [batch, c.inputLength]);
  const weight = parameterSource(b, c, dtype);
  const legal = b.input(io.legal, "bool", [batch, c.numMoves]);
  const target = b.input(io.targetPolicy, dtype, [batch, c.numMoves]);
  const z = b.input(io.targetValue, dtype, [batch]);
  const { logits, value } = policyValueForward(b, c, dtype, weight, tokens);
  b.output(logits, io.logits);
  b.output(value, io.value);
  const masked = b.where(legal, logits, b.scalar(-1e9, dtype));
  const logp = b.logSoftmax(masked, -1);
  const ce = b.neg(b.reduceSum(b.mul(target, logp), [1], false));
  const policyLoss = b.reduceMean(ce, [0], false, io.policyLoss);
  const diff = b.sub(value, z);
  const valueLoss = b.reduceMean(b.mul(diff, diff), [0], false, io.valueLoss);
  const vw = options.valueWeight ?? 1;
  if (!(vw >= 0)) throw new AutodidactError(`valueWeight must be >= 0, got ${vw}`, Code.InvalidArgument);
  const loss = b.add(policyLoss, b.mul(valueLoss, b.scalar(vw, dtype)), io.loss);
  b.output(policyLoss);
  b.output(valueLoss);
  b.output(loss);
  return {
    model: b.buildModel({ metadata: { "autodidact.graph": "policy-value-loss", "autodidact.config": JSON.stringify(c) } }),
    trainable: policyValueParamSpecs(c).map((s) => s.name),
  };
}
