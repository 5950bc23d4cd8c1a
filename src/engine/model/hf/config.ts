import { AutodidactError, Code } from "../../../platform/errors/index.js";
import { createTransformerConfig, type TransformerConfig } from "../config.js";

/** Hugging Face model families the engine imports. */
export type HfFamily = "gpt2" | "llama";

/** `model_type` values read as each family (Llama-family models share one graph). */
export const HF_MODEL_TYPES: Readonly<Record<string, HfFamily>> = { gpt2: "gpt2", llama: "llama", qwen2: "llama", mistral: "llama" };

/** A Hugging Face config.json read into the engine's config, with what export needs to go back. */
export interface HfModelConfig {
  readonly family: HfFamily;
  readonly modelType: string;
  readonly config: TransformerConfig;
  /** The config.json document as read (written back unchanged on export). */
  readonly json: Readonly<Record<string, unknown>>;
}

/** Options of {@link parseHfConfig}. */
export interface ParseHfConfigOptions {
  /**
   * Context length the engine's tables are built for; default min(max_position_embeddings, 2048)
   * (rotary and mask tables grow with it; Llama 3 declares 131072).
   */
  readonly maxPositions?: number;
  /** Names the file in error messages. */
  readonly source?: string;
}

/** Default cap on the context length of imported rotary models (see {@link ParseHfConfigOptions}). */
export const DEFAULT_MAX_POSITIONS = 2048;

/**
 * Reads a Hugging Face config.json of a supported family into a TransformerConfig. Options the
 * engine does not implement (rope scaling, sliding windows, mixtures of experts, unusual
 * attention variants) are refused with InvalidArgument naming the field, never ignored.
 */
export function parseHfConfig(json: Record<string, unknown>, options: ParseHfConfigOptions = {}): HfModelConfig {
  const source = options.source ?? "config.json";
  const modelType = json.model_type;
  const family = typeof modelType === "string" ? HF_MODEL_TYPES[modelType] : undefined;
  if (family === undefined) {
    throw refuse(source, "model_type", `${JSON.stringify(modelType)} is not supported (supported: ${Object.keys(HF_MODEL_TYPES).join(", ")})`);
  }
  const read = new FieldReader(json, source);
  const config = family === "gpt2" ? gpt2Config(read, options) : llamaConfig(read, modelType as string, options);
  return { family, modelType: modelType as string, config, json };
}

function gpt2Config(r: FieldReader, o: ParseHfConfigOptions): TransformerConfig {
  r.refuseTrue("scale_attn_by_inverse_layer_idx", "attention scaled by the inverse layer index is not implemented");
  r.refuseTrue("add_cross_attention", "cross-attention is not part of a decoder-only model");
  if (r.json.scale_attn_weights === false) throw refuse(r.source, "scale_attn_weights", "false is not implemented");
  const act = r.str("activation_function", "gelu_new");
  const activation = act === "gelu_new" || act === "gelu_pytorch_tanh" ? "gelu_tanh" : act === "gelu" ? "gelu" : null;
  if (activation === null) throw refuse(r.source, "activation_function", `"${act}" is not implemented (gelu_new, gelu_pytorch_tanh, gelu)`);
  const hidden = r.int("n_embd");
  const inner = r.json.n_inner;
  const positions = r.int("n_positions");
  return wrap(r.source, () =>
    createTransformerConfig({
      vocabSize: r.int("vocab_size"),
      numLayers: r.int("n_layer"),
      hiddenSize: hidden,
      numHeads: r.int("n_head"),
      intermediateSize: inner === null || inner === undefined ? 4 * hidden : r.int("n_inner"),
      maxPositions: Math.min(positions, o.maxPositions ?? positions),
      positional: "learned",
      norm: "layernorm",
      activation,
      normEps: r.num("layer_norm_epsilon", 1e-5),
      tieEmbeddings: r.bool("tie_word_embeddings", true),
      bias: true,
      family: "gpt2",
    }),
  );
}

function llamaConfig(r: FieldReader, modelType: string, o: ParseHfConfigOptions): TransformerConfig {
  for (const moe of ["num_local_experts", "num_experts", "moe_intermediate_size", "num_experts_per_tok"]) {
    if (r.json[moe] !== undefined && r.json[moe] !== null && r.json[moe] !== 0) throw refuse(r.source, moe, "mixture-of-experts models are not implemented");
  }
  const scaling = r.json.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    const kind = (scaling as Record<string, unknown>).rope_type ?? (scaling as Record<string, unknown>).type;
    if (kind !== "default") throw refuse(r.source, "rope_scaling", `rope_type ${JSON.stringify(kind)} is not implemented (only plain rotary with rope_theta)`);
  }
  if (modelType === "qwen2") r.refuseTrue("use_sliding_window", "sliding-window attention is not implemented");
  else if (r.json.sliding_window !== undefined && r.json.sliding_window !== null) throw refuse(r.source, "sliding_window", "sliding-window attention is not implemented");
  r.refuseTrue("mlp_bias", "MLP biases are not implemented for the Llama family");
  if (modelType !== "qwen2") r.refuseTrue("attention_bias", "attention biases on every projection are not implemented (Qwen2's q/k/v biases are)");
  const act = r.str("hidden_act", "silu");
  if (act !== "silu") throw refuse(r.source, "hidden_act", `"${act}" is not implemented (silu)`);
  const hidden = r.int("hidden_size");
  const heads = r.int("num_attention_heads");
  const hd = r.json.head_dim;
  if (hd !== undefined && hd !== null && hd !== hidden / heads) throw refuse(r.source, "head_dim", `${String(hd)} differs from hidden_size / num_attention_heads`);
  const pretrainingTp = r.json.pretraining_tp;
  if (typeof pretrainingTp === "number" && pretrainingTp > 1) throw refuse(r.source, "pretraining_tp", `${pretrainingTp} is not implemented`);
  const positions = r.int("max_position_embeddings");
  return wrap(r.source, () =>
    createTransformerConfig({
      vocabSize: r.int("vocab_size"),
      numLayers: r.int("num_hidden_layers"),
      hiddenSize: hidden,
      numHeads: heads,
      numKvHeads: r.json.num_key_value_heads === undefined || r.json.num_key_value_heads === null ? heads : r.int("num_key_value_heads"),
      intermediateSize: r.int("intermediate_size"),
      maxPositions: Math.min(positions, o.maxPositions ?? DEFAULT_MAX_POSITIONS),
      positional: "rotary",
      norm: "rmsnorm",
      activation: "silu",
      mlp: "gated",
      normEps: r.num("rms_norm_eps", 1e-6),
      ropeTheta: r.num("rope_theta", 10000),
      tieEmbeddings: r.bool("tie_word_embeddings", false),
      bias: false,
      qkvBias: modelType === "qwen2",
      family: "llama",
    }),
  );
}

/** Typed reads of config.json fields; errors name the field. */
class FieldReader {
  constructor(
    readonly json: Record<string, unknown>,
    readonly source: string,
  ) {}

  int(field: string): number {
    const v = this.json[field];
    if (!Number.isInteger(v) || (v as number) <= 0) throw refuse(this.source, field, `must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  }

  num(field: string, fallback: number): number {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !(v > 0)) throw refuse(this.source, field, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  str(field: string, fallback: string): string {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "string") throw refuse(this.source, field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw refuse(this.source, field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  refuseTrue(field: string, why: string): void {
    if (this.json[field] === true) throw refuse(this.source, field, why);
  }
}

function refuse(source: string, field: string, why: string): AutodidactError {
  return new AutodidactError(`${source}: ${field}: ${why}`, Code.InvalidArgument, { details: { file: source, field } });
}

function wrap(source: string, make: () => TransformerConfig): TransformerConfig {
  try {
    return make();
  } catch (e) {
    throw new AutodidactError(`${source}: ${AutodidactError.from(e).rawMessage}`, Code.InvalidArgument, { cause: e, details: { file: source } });
  }
}
