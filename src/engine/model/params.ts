import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createRng } from "../random.js";
import type { HostTensor } from "../runtime/tensor.js";
import { hasBias, kvHeads, headDim, type TransformerConfig } from "./config.js";

/** Role of a parameter; init and LoRA targeting key on it. */
export type ParamKind = "embedding" | "linear" | "bias" | "norm_weight" | "norm_bias";

/** Name, shape and role of one parameter. Linear weights are [out, in] as in Hugging Face/PyTorch. */
export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: ParamKind;
  /** For linears: the module name LoRA `target_modules` match (`q_proj`, `up_proj`...). */
  readonly module?: string;
  /** Layer index, for per-layer parameters. */
  readonly layer?: number;
}

/** A full set of float32 weights keyed by parameter name. */
export type Parameters = Record<string, HostTensor<"float32">>;

/** Hugging Face/LLaMA-style parameter names, in one place so graphs, checkpoints and PEFT agree. */
export const paramNames = {
  embed: "model.embed_tokens.weight",
  positions: "model.embed_positions.weight",
  finalNorm: "model.norm.weight",
  finalNormBias: "model.norm.bias",
  lmHead: "lm_head.weight",
  layer: (i: number, sub: string): string => `model.layers.${i}.${sub}`,
  attn: (i: number, proj: "q_proj" | "k_proj" | "v_proj" | "o_proj", what: "weight" | "bias" = "weight"): string =>
    `model.layers.${i}.self_attn.${proj}.${what}`,
  mlp: (i: number, proj: "up_proj" | "down_proj" | "gate_proj", what: "weight" | "bias" = "weight"): string => `model.layers.${i}.mlp.${proj}.${what}`,
  inputNorm: (i: number, what: "weight" | "bias" = "weight"): string => `model.layers.${i}.input_layernorm.${what}`,
  postAttnNorm: (i: number, what: "weight" | "bias" = "weight"): string => `model.layers.${i}.post_attention_layernorm.${what}`,
} as const;

/** Every parameter of a config, in a stable order (embeddings, layers, final norm, head). */
export function parameterSpecs(c: TransformerConfig): ParamSpec[] {
  const D = c.hiddenSize;
  const M = c.intermediateSize;
  const specs: ParamSpec[] = [{ name: paramNames.embed, shape: [c.vocabSize, D], kind: "embedding" }];
  if (c.positional === "learned") specs.push({ name: paramNames.positions, shape: [c.maxPositions, D], kind: "embedding" });
  const norm = (name: (w: "weight" | "bias") => string, layer?: number): void => {
    specs.push({ name: name("weight"), shape: [D], kind: "norm_weight", ...(layer !== undefined ? { layer } : {}) });
    if (c.norm === "layernorm") specs.push({ name: name("bias"), shape: [D], kind: "norm_bias", ...(layer !== undefined ? { layer } : {}) });
  };
  const linear = (layer: number, module: string, weight: string, bias: string, out: number, inp: number): void => {
    specs.push({ name: weight, shape: [out, inp], kind: "linear", module, layer });
    if (hasBias(c, module)) specs.push({ name: bias, shape: [out], kind: "bias", module, layer });
  };
  for (let i = 0; i < c.numLayers; i++) {
    norm((w) => paramNames.inputNorm(i, w), i);
    const kvDim = kvHeads(c) * headDim(c);
    for (const p of ["q_proj", "k_proj", "v_proj", "o_proj"] as const) linear(i, p, paramNames.attn(i, p), paramNames.attn(i, p, "bias"), p === "k_proj" || p === "v_proj" ? kvDim : D, D);
    norm((w) => paramNames.postAttnNorm(i, w), i);
    if (c.mlp === "gated") linear(i, "gate_proj", paramNames.mlp(i, "gate_proj"), paramNames.mlp(i, "gate_proj", "bias"), M, D);
    linear(i, "up_proj", paramNames.mlp(i, "up_proj"), paramNames.mlp(i, "up_proj", "bias"), M, D);
    linear(i, "down_proj", paramNames.mlp(i, "down_proj"), paramNames.mlp(i, "down_proj", "bias"), D, M);
  }
  norm((w) => (w === "weight" ? paramNames.finalNorm : paramNames.finalNormBias));
  if (!c.tieEmbeddings) specs.push({ name: paramNames.lmHead, shape: [c.vocabSize, D], kind: "linear", module: "lm_head" });
  return specs;
}

/** Total number of scalar parameters. */
export function parameterCount(c: TransformerConfig): number {
  return parameterSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Deterministic GPT-2-style init: N(0, 0.02) weights, residual output projections scaled by
 * 1/√(2·layers), zero biases, unit norm weights. Each tensor draws from its own stream forked by
 * name, so adding a parameter never changes the others' values.
 */
export function initParameters(c: TransformerConfig, seed: number | string): Parameters {
  const rng = createRng(`init:${seed}`);
  const out: Parameters = {};
  const residualStd = 0.02 / Math.sqrt(2 * c.numLayers);
  for (const s of parameterSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    switch (s.kind) {
      case "embedding":
      case "linear":
        rng.fork(s.name).fillNormal(data, 0, s.module === "o_proj" || s.module === "down_proj" ? residualStd : 0.02);
        break;
      case "norm_weight":
        data.fill(1);
        break;
      case "bias":
      case "norm_bias":
        break;
    }
    out[s.name] = { dtype: "float32", dims: [...s.shape], data };
  }
  return out;
}

/** Checks that a weight set has exactly the config's parameters with the right shapes. */
export function checkParameters(c: TransformerConfig, params: Readonly<Record<string, { readonly dims: readonly number[] }>>, source = "parameters"): void {
  const specs = parameterSpecs(c);
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
