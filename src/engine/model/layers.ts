import { AutodidactError, Code } from "../../platform/errors/index.js";
import { GraphBuilder } from "../graph/builder.js";
import { attr, type ValueInfo } from "../graph/ir.js";
import { headDim, kvHeads, type TransformerConfig } from "./config.js";
import { paramNames, type ParamSpec } from "./params.js";

// Pieces shared by the forward (training) graph and the serving graphs of transformer.ts / serving.ts.

/** Float dtype a forward graph computes in (float64 for gradient checks; note Erf is float32-only in ORT). */
export type FloatDType = "float32" | "float64";

/** Additive mask value for disallowed attention (finite so fully-masked rows stay NaN-free). */
export const MASK_VALUE = -1e9;

/** What layer pieces need: builders, config, dtype, weights and the linear of the graph being built. */
export interface Ctx {
  /** Where ops go (a Loop body's builder inside the greedy decoding graph). */
  readonly b: GraphBuilder;
  /** The model's top-level builder, which holds the initializers. */
  readonly root: GraphBuilder;
  readonly c: TransformerConfig;
  readonly dtype: FloatDType;
  readonly fused: boolean;
  weight(name: string): ValueInfo;
  /**
   * x·Wᵀ (+ LoRA path) (+ bias). `scale` multiplies the product and the LoRA path through the
   * weights (a pass over W, not over the output); `scaleBias` says whether it also applies to the
   * bias (an output scale) or not (an input scale). Only the forward graph supports `scale`.
   */
  linear(x: ValueInfo, spec: ParamSpec, biasName?: string, scale?: number, scaleBias?: boolean): ValueInfo;
}

/** A scalar constant of the graph's float dtype. */
export function scalar(b: GraphBuilder, v: number, dtype: FloatDType): ValueInfo {
  return b.scalar(v, dtype);
}

/** A float constant in the graph's dtype from float64 data. */
export function floatConst(b: GraphBuilder, dtype: FloatDType, dims: number[], data: Float64Array): ValueInfo {
  return dtype === "float64" ? b.constant("float64", dims, data) : b.constant("float32", dims, Float32Array.from(data));
}

/** Additive causal mask [n,n]: 0 on and below the diagonal, MASK_VALUE above. */
export function causalMaskTable(b: GraphBuilder, n: number, dtype: FloatDType): ValueInfo {
  const data = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) data[i * n + j] = MASK_VALUE;
  return floatConst(b, dtype, [n, n], data);
}

/** cos/sin tables [maxPositions, headDim] in the "rotate half" layout of HF LLaMA. */
export function ropeTables(c: TransformerConfig, dtype: FloatDType, b: GraphBuilder): { cos: ValueInfo; sin: ValueInfo } {
  const hd = headDim(c);
  const half = hd / 2;
  const cos = new Float64Array(c.maxPositions * hd);
  const sin = new Float64Array(c.maxPositions * hd);
  for (let p = 0; p < c.maxPositions; p++) {
    for (let j = 0; j < hd; j++) {
      const invFreq = Math.pow(c.ropeTheta, -(2 * (j % half)) / hd);
      cos[p * hd + j] = Math.cos(p * invFreq);
      sin[p * hd + j] = Math.sin(p * invFreq);
    }
  }
  return { cos: floatConst(b, dtype, [c.maxPositions, hd], cos), sin: floatConst(b, dtype, [c.maxPositions, hd], sin) };
}

/** [B,T,D] → [B,H,T,hd]. */
export function splitHeads(ctx: Ctx, x: ValueInfo): ValueInfo {
  const { b, c } = ctx;
  return b.transpose(b.reshape(x, [0, 0, c.numHeads, headDim(c)]), [0, 2, 1, 3]);
}

/** x·cos + rotate_half(x)·sin on [B,H,T,hd]. */
export function applyRope(ctx: Ctx, x: ValueInfo, cos: ValueInfo, sin: ValueInfo): ValueInfo {
  const { b, c } = ctx;
  const hd = headDim(c);
  const x1 = b.slice(x, [0], [hd / 2], [-1]);
  const x2 = b.slice(x, [hd / 2], [hd], [-1]);
  const rotated = b.concat([b.neg(x2), x1], -1);
  return b.add(b.mul(x, cos), b.mul(rotated, sin));
}

/**
 * softmax(q·kᵀ/√hd + mask)·v, then merge heads: [B,H,T,hd] → [B,T,D]. `kT` is [B,H,hd,L];
 * `prescaled`: q already carries the 1/√hd factor.
 */
export function attend(ctx: Ctx, q: ValueInfo, kT: ValueInfo, v: ValueInfo, mask: ValueInfo, prescaled = false): ValueInfo {
  const { b, c, dtype } = ctx;
  const qs = prescaled ? q : b.mul(q, scalar(b, 1 / Math.sqrt(headDim(c)), dtype));
  const scores = b.add(b.matMul(qs, kT), mask);
  const probs = b.softmax(scores, -1);
  const out = b.transpose(b.matMul(probs, v), [0, 2, 1, 3]);
  return b.reshape(out, [0, 0, c.hiddenSize]);
}

/** LayerNorm (with bias) or RMSNorm of the config on the last axis. */
export function norm(ctx: Ctx, x: ValueInfo, weight: string, bias: string): ValueInfo {
  const { b, c, dtype } = ctx;
  const w = ctx.weight(weight);
  if (c.norm === "layernorm") {
    if (ctx.fused) return b.layerNorm(x, w, ctx.weight(bias), c.normEps);
    const mean = b.reduceMean(x, [-1]);
    const xc = b.sub(x, mean);
    const variance = b.reduceMean(b.mul(xc, xc), [-1]);
    const y = b.div(xc, b.sqrt(b.add(variance, scalar(b, c.normEps, dtype))));
    return b.add(b.mul(y, w), ctx.weight(bias));
  }
  if (ctx.fused) {
    // One kernel (ORT's RMSNorm; autodiff has its rule) instead of five.
    return b.op("SimplifiedLayerNormalization", [x, w], [{ dtype, shape: x.shape }], { attrs: { axis: attr.int(-1), epsilon: attr.float(c.normEps) } })[0]!;
  }
  const ms = b.reduceMean(b.mul(x, x), [-1]);
  return b.mul(b.div(x, b.sqrt(b.add(ms, scalar(b, c.normEps, dtype)))), w);
}

/** The MLP activation of the config (erf or tanh GELU, or SiLU). */
export function gelu(ctx: Ctx, x: ValueInfo): ValueInfo {
  const { b, c, dtype } = ctx;
  if (c.activation === "silu") return b.mul(x, b.op("Sigmoid", [x], [{ dtype, shape: x.shape }])[0]!);
  if (c.activation === "gelu") {
    if (ctx.fused && dtype === "float32") return b.msGelu(x);
    const scaled = b.mul(x, scalar(b, Math.SQRT1_2, dtype));
    // ORT has no float64 Erf kernel: compute erf in float32 for float64 graphs.
    const e = dtype === "float64" ? b.cast(b.erf(b.cast(scaled, "float32")), "float64") : b.erf(scaled);
    return b.mul(b.mul(x, scalar(b, 0.5, dtype)), b.add(e, scalar(b, 1, dtype)));
  }
  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  const x3 = b.mul(b.mul(x, x), x);
  const inner = b.mul(b.add(x, b.mul(x3, scalar(b, 0.044715, dtype))), scalar(b, Math.sqrt(2 / Math.PI), dtype));
  return b.mul(b.mul(x, scalar(b, 0.5, dtype)), b.add(b.tanh(inner), scalar(b, 1, dtype)));
}


/**
 * Grouped-query attention: repeats each of the kvHeads key/value heads of x [B,T,kvH·hd] for the
 * numHeads/kvHeads query heads that share it → [B,T,H·hd] (head h reads kv head ⌊h/g⌋, as the
 * Hugging Face `repeat_kv` does). Identity without GQA.
 */
export function repeatKv(ctx: Ctx, x: ValueInfo): ValueInfo {
  const { b, c } = ctx;
  const kv = kvHeads(c);
  if (kv === c.numHeads) return x;
  const g = c.numHeads / kv;
  const hd = headDim(c);
  const grouped = b.reshape(x, [0, 0, kv, 1, hd]);
  const [wide] = b.op("Expand", [grouped, b.ints([1, 1, 1, g, 1])], [{ dtype: ctx.dtype, shape: [x.shape[0] ?? null, x.shape[1] ?? null, kv, g, hd] }]);
  return b.reshape(wide!, [0, 0, c.hiddenSize]);
}

/**
 * The MLP of layer i on its normed input: down(act(up(x))), or down(act(gate(x))·up(x)) for
 * `mlp: "gated"` (SwiGLU when the activation is silu).
 */
export function mlpBlock(ctx: Ctx, x: ValueInfo, i: number, spec: (name: string) => ParamSpec): ValueInfo {
  const { b, c } = ctx;
  const up = ctx.linear(x, spec(paramNames.mlp(i, "up_proj")), paramNames.mlp(i, "up_proj", "bias"));
  const hidden = c.mlp === "gated" ? b.mul(gelu(ctx, ctx.linear(x, spec(paramNames.mlp(i, "gate_proj")), paramNames.mlp(i, "gate_proj", "bias"))), up) : gelu(ctx, up);
  return ctx.linear(hidden, spec(paramNames.mlp(i, "down_proj")), paramNames.mlp(i, "down_proj", "bias"));
}
