import { AutodidactError, Code } from "../../platform/errors/index.js";

/** How token positions enter the model. `none` = NoPE (what Lee et al. use for length generalization). */
export type PositionalEncoding = "none" | "learned" | "rotary";
/** Normalization layer kind. */
export type NormKind = "layernorm" | "rmsnorm";
/** MLP activation: exact (erf) GELU, its tanh approximation, or SiLU (x·σ(x), the Llama family's). */
export type Activation = "gelu" | "gelu_tanh" | "silu";
/** MLP shape: `plain` down(act(up(x))), or `gated` down(act(gate(x))·up(x)) (SwiGLU with silu). */
export type MlpKind = "plain" | "gated";

/** Shape and flavour of a decoder-only transformer; everything a graph builder needs. */
export interface TransformerConfig {
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  /** Longest sequence (context) the model supports: learned/rotary tables and masks have this size. */
  readonly maxPositions: number;
  readonly positional: PositionalEncoding;
  readonly norm: NormKind;
  readonly activation: Activation;
  readonly normEps: number;
  /** Rotary base (θ); only for `positional: "rotary"`. */
  readonly ropeTheta: number;
  /** Reuse the token embedding as the output projection (no separate lm_head). */
  readonly tieEmbeddings: boolean;
  /** Biases on attention/MLP projections. */
  readonly bias: boolean;
  /** Key/value heads (grouped-query attention when fewer than numHeads; default numHeads). */
  readonly numKvHeads?: number;
  /** MLP shape (default `plain`). */
  readonly mlp?: MlpKind;
  /** Biases on the q, k, v projections only (Qwen2), when `bias` is false. */
  readonly qkvBias?: boolean;
  /**
   * The Hugging Face family whose module names the model keeps (set by imports): LoRA targets,
   * PEFT keys and exports use them. Absent for our own models (Llama-style names).
   */
  readonly family?: "gpt2" | "llama";
}

/** The reference model of the benchmarks: ~0.8M parameters for the addition task. */
export const REFERENCE_CONFIG: TransformerConfig = {
  vocabSize: 16,
  numLayers: 4,
  hiddenSize: 128,
  numHeads: 4,
  intermediateSize: 512,
  maxPositions: 48,
  positional: "none",
  norm: "layernorm",
  activation: "gelu",
  normEps: 1e-5,
  ropeTheta: 10000,
  tieEmbeddings: false,
  bias: false,
};

/** Fills defaults and checks consistency; throws InvalidArgument naming the bad field. */
export function createTransformerConfig(partial: Partial<TransformerConfig> & Pick<TransformerConfig, "vocabSize">): TransformerConfig {
  const c: TransformerConfig = { ...REFERENCE_CONFIG, ...partial };
  const positive = ["vocabSize", "numLayers", "hiddenSize", "numHeads", "intermediateSize", "maxPositions"] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new AutodidactError(`transformer config: ${k} must be a positive integer, got ${c[k]}`, Code.InvalidArgument);
  }
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new AutodidactError(`transformer config: hiddenSize ${c.hiddenSize} not divisible by numHeads ${c.numHeads}`, Code.InvalidArgument);
  }
  if (c.positional === "rotary" && (c.hiddenSize / c.numHeads) % 2 !== 0) {
    throw new AutodidactError("transformer config: rotary needs an even head size", Code.InvalidArgument);
  }
  if (!["none", "learned", "rotary"].includes(c.positional)) throw new AutodidactError(`transformer config: positional "${c.positional}"`, Code.InvalidArgument);
  if (!["layernorm", "rmsnorm"].includes(c.norm)) throw new AutodidactError(`transformer config: norm "${c.norm}"`, Code.InvalidArgument);
  const kv = c.numKvHeads ?? c.numHeads;
  if (!Number.isInteger(kv) || kv <= 0 || c.numHeads % kv !== 0) {
    throw new AutodidactError(`transformer config: numKvHeads ${kv} must be a positive divisor of numHeads ${c.numHeads}`, Code.InvalidArgument);
  }
  if (c.mlp !== undefined && !["plain", "gated"].includes(c.mlp)) throw new AutodidactError(`transformer config: mlp "${c.mlp}"`, Code.InvalidArgument);
  if (!["gelu", "gelu_tanh", "silu"].includes(c.activation)) throw new AutodidactError(`transformer config: activation "${c.activation}"`, Code.InvalidArgument);
  if (!(c.normEps > 0)) throw new AutodidactError("transformer config: normEps must be > 0", Code.InvalidArgument);
  return c;
}

/** Size of one attention head. */
export function headDim(c: TransformerConfig): number {
  return c.hiddenSize / c.numHeads;
}

/** Key/value heads (numHeads unless grouped-query attention). */
export function kvHeads(c: TransformerConfig): number {
  return c.numKvHeads ?? c.numHeads;
}

/** Whether the linear of `module` has a bias under this config. */
export function hasBias(c: TransformerConfig, module: string): boolean {
  if (c.bias) return module !== "lm_head";
  return (c.qkvBias ?? false) && (module === "q_proj" || module === "k_proj" || module === "v_proj");
}
