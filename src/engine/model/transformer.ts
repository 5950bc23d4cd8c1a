import { AutodidactError, Code } from "../../platform/errors/index.js";
import { GraphBuilder } from "../graph/builder.js";
import { AD_DOMAIN, attr, MS_DOMAIN, type Dim, type Model, type ValueInfo } from "../graph/ir.js";
import { hasBias, headDim, type TransformerConfig } from "./config.js";
import { paramNames, parameterSpecs, type ParamSpec } from "./params.js";
import { loraSites, type LoraSite } from "./lora-sites.js";
import { applyRope, attend, causalMaskTable, mlpBlock, norm, repeatKv, ropeTables, scalar, splitHeads, type Ctx, type FloatDType } from "./layers.js";

export type { FloatDType } from "./layers.js";
export { MASK_VALUE } from "./layers.js";
export type { ServingGraphOptions } from "./serving.js";
export { buildGreedyDecodingGraph, buildServingGraph, GREEDY_OUTPUTS, NEW_KV, SERVING_DIMS } from "./serving.js";

/** LoRA settings for the forward graph: adapters become extra graph inputs with PEFT names. */
export interface LoraGraphOptions {
  readonly rank: number;
  readonly alpha: number;
  /** Module names (`q_proj`, `v_proj`, `up_proj`, ...) whose linears get adapters. */
  readonly targetModules: readonly string[];
}

/** Options of {@link buildForwardGraph}. */
export interface ForwardGraphOptions {
  /** Batch dimension: a fixed size or a symbolic name (default "batch"). */
  readonly batch?: number | string;
  /** Sequence dimension: fixed (static mask) or symbolic (default "seq"). */
  readonly seq?: number | string;
  readonly dtype?: FloatDType;
  readonly lora?: LoraGraphOptions;
  /** Also expose the final hidden states (after the last norm) as output `hidden`. */
  readonly hiddenOutput?: boolean;
  /**
   * Use fused ops (LayerNormalization; com.microsoft Gelu in float32) instead of their standard-op
   * compositions: fewer, faster kernels for training graphs (autodiff has rules for both). Default false.
   */
  readonly fused?: boolean;
  /**
   * Training graphs only (needs `fused`, float32, erf-GELU): the MLP computes gelu(x) as
   * √(2/π)·u·F(u) with u = x/√2 and F(u) = (1 + erf u)·√π/2, the 1/√2 folded into up_proj (weight,
   * bias, LoRA path) and the √(2/π) into down_proj's input (weight, LoRA path), and u·F(u) left as
   * the private node {@link SCALED_GELU} for the training-graph builder to expand. Then the
   * activation takes three full-size passes forward (Erf, affine, Mul) and five backward, where
   * x·Φ(x) takes five and six. The graph is not runnable until that node is expanded.
   */
  readonly scaledGelu?: boolean;
}

/**
 * The private op (domain {@link AD_DOMAIN}) of {@link ForwardGraphOptions.scaledGelu}: y = u·F(u),
 * F(u) = (1 + erf u)·√π/2, so that gelu(x) = √(2/π)·y at u = x/√2 and dy/du = F(u) + u·exp(−u²).
 */
export const SCALED_GELU = "ScaledGelu";

/** A forward graph and the names of its inputs, in order. */
export interface ForwardGraph {
  readonly model: Model;
  /** Base parameter input names (one per {@link ParamSpec}, spec order). */
  readonly paramInputs: readonly string[];
  /** LoRA input names (A then B per adapted linear) in graph order; empty without LoRA. */
  readonly loraInputs: readonly LoraInput[];
}

/** One LoRA input of a forward graph. */
export interface LoraInput {
  readonly name: string;
  /** The base weight it adapts (the first of a packed site such as GPT-2's c_attn). */
  readonly base: string;
  /** The PEFT module path of its site. */
  readonly module: string;
  readonly which: "A" | "B";
  readonly shape: readonly number[];
}

/** PEFT tensor names of the adapter pair on a base linear weight (`...q_proj.weight`). */
export function loraParamNames(baseWeight: string): { a: string; b: string } {
  const module = baseWeight.replace(/\.weight$/, "");
  return { a: `base_model.model.${module}.lora_A.weight`, b: `base_model.model.${module}.lora_B.weight` };
}

/**
 * The training/analysis forward graph: `input_ids` [B,T] int64 + every parameter as a graph
 * input → `logits` [B,T,V]. Built only from standard ONNX ops with composable gradients (Gather,
 * MatMul, Transpose, Reshape, Add/Sub/Mul/Div, ReduceMean, Sqrt, Softmax, Erf/Tanh, Slice,
 * Concat, Neg), so autodiff can differentiate it and one graph serves any weights.
 */
export function buildForwardGraph(c: TransformerConfig, options: ForwardGraphOptions = {}): ForwardGraph {
  const dtype = options.dtype ?? "float32";
  const batch = options.batch ?? "batch";
  const seq = options.seq ?? "seq";
  const b = new GraphBuilder("autodidact_forward");
  const ids = b.input("input_ids", "int64", [batch, seq]);
  const specs = parameterSpecs(c);
  const values = new Map<string, ValueInfo>();
  for (const s of specs) values.set(s.name, b.input(s.name, dtype, s.shape));
  const lora = options.lora;
  if (lora && !(lora.rank > 0)) throw new AutodidactError("LoRA rank must be positive", Code.InvalidArgument);
  const sites = lora ? loraSites(c, lora.targetModules) : [];
  const siteByBase = new Map<string, LoraSite>();
  const loraInputs: LoraInput[] = [];
  for (const site of sites) {
    const out = site.outs.reduce((n, o) => n + o, 0);
    const rank = (lora as LoraGraphOptions).rank;
    b.input(site.a, dtype, [rank, site.in]);
    b.input(site.b, dtype, [out, rank]);
    loraInputs.push({ name: site.a, base: site.bases[0]!, module: site.module, which: "A", shape: [rank, site.in] }, { name: site.b, base: site.bases[0]!, module: site.module, which: "B", shape: [out, rank] });
    for (const base of site.bases) siteByBase.set(base, site);
  }
  const specByName = new Map(specs.map((s) => [s.name, s]));
  const spec = (name: string): ParamSpec => specByName.get(name) as ParamSpec;
  const transposed = new Map<string, ValueInfo>();
  const scaledGelu = options.scaledGelu ?? false;
  if (scaledGelu && !(options.fused && dtype === "float32" && c.activation === "gelu" && c.mlp !== "gated")) {
    throw new AutodidactError("scaledGelu needs a fused float32 graph of an erf-GELU model", Code.InvalidArgument);
  }
  const ctx: Ctx = {
    b,
    root: b,
    c,
    dtype,
    fused: options.fused ?? false,
    weight: (name) => {
      const v = values.get(name);
      if (!v) throw new AutodidactError(`no parameter ${name}`, Code.Internal);
      return v;
    },
    linear(x, spec, biasName, scale = 1, scaleBias = false) {
      let wt = scale === 1 ? transposed.get(spec.name) : undefined;
      if (!wt) {
        const w = ctx.weight(spec.name);
        wt = b.transpose(scale === 1 ? w : b.mul(w, scalar(b, scale, dtype)), [1, 0]);
        if (scale === 1) transposed.set(spec.name, wt);
      }
      let y = b.matMul(x, wt);
      const delta = loraDelta(x, spec, scale);
      if (delta) y = b.add(y, delta);
      if (biasName && spec.module !== undefined && hasBias(c, spec.module)) {
        const bias = ctx.weight(biasName);
        y = b.add(y, scaleBias && scale !== 1 ? b.mul(bias, scalar(b, scale, dtype)) : bias);
      }
      return y;
    },
  };
  /** The adapter path s·(x·Aᵀ)·Bᵀ of a LoRA site, times `extraScale`. */
  const sitePath = (x: ValueInfo, site: LoraSite, extraScale: number): ValueInfo => {
    const l = lora as LoraGraphOptions;
    const down = b.matMul(x, b.transpose(b.get(site.a), [1, 0]));
    const up = b.matMul(down, b.transpose(b.get(site.b), [1, 0]));
    return b.mul(up, scalar(b, (l.alpha / l.rank) * extraScale, dtype));
  };
  /** The adapter path of a LoRA-targeted single linear (null when not targeted or packed). */
  const loraDelta = (x: ValueInfo, spec: ParamSpec, extraScale: number): ValueInfo | null => {
    const site = siteByBase.get(spec.name);
    return site && site.bases.length === 1 ? sitePath(x, site, extraScale) : null;
  };
  /**
   * q, k, v of layer `i` from ONE MatMul against [Wq·s; Wk; Wv] (concatenated in the graph, so
   * the weights stay separate inputs) and a Split. The attention scale s = 1/√hd is folded into
   * Wq (a [D,D] pass instead of a [B,H,T,hd] one, forward and backward), and one wide product and
   * its one weight gradient run at a far better rate than three narrow ones.
   */
  const projectQkv = (x: ValueInfo, i: number): [ValueInfo, ValueInfo, ValueInfo] => {
    const mods = ["q_proj", "k_proj", "v_proj"] as const;
    const qScale = 1 / Math.sqrt(headDim(c));
    const s = scalar(b, qScale, dtype);
    const ws = mods.map((m) => ctx.weight(paramNames.attn(i, m)));
    const packed = b.concat([b.mul(ws[0]!, s), ws[1]!, ws[2]!], 0);
    let y = b.matMul(x, b.transpose(packed, [1, 0]));
    if (hasBias(c, "q_proj")) {
      const bs = mods.map((m) => ctx.weight(paramNames.attn(i, m, "bias")));
      y = b.add(y, b.concat([b.mul(bs[0]!, s), bs[1]!, bs[2]!], 0));
    }
    const outs = ws.map((w) => w.shape[0] as number);
    const sizes = b.constant("int64", [3], BigInt64Array.from(outs.map((n) => BigInt(n))));
    const parts = b.op("Split", [y, sizes], outs.map((n) => ({ dtype, shape: [...y.shape.slice(0, -1), n] })), { attrs: { axis: attr.int(-1) } });
    const packedSite = siteByBase.get(paramNames.attn(i, "q_proj"));
    if (packedSite && packedSite.bases.length === 3) {
      // GPT-2's c_attn: one adapter on the packed output, split like it; q's part carries the scale.
      const delta = sitePath(x, packedSite, 1);
      const dparts = b.op("Split", [delta, sizes], outs.map((n) => ({ dtype, shape: [...y.shape.slice(0, -1), n] })), { attrs: { axis: attr.int(-1) } });
      return mods.map((_, k) => b.add(parts[k]!, k === 0 ? b.mul(dparts[0]!, s) : dparts[k]!)) as [ValueInfo, ValueInfo, ValueInfo];
    }
    return mods.map((m, k) => {
      const delta = loraDelta(x, spec(paramNames.attn(i, m)), k === 0 ? qScale : 1);
      return delta ? b.add(parts[k]!, delta) : parts[k]!;
    }) as [ValueInfo, ValueInfo, ValueInfo];
  };

  let h = b.gather(ctx.weight(paramNames.embed), ids);
  const staticSeq = typeof seq === "number" ? seq : null;
  if (staticSeq !== null && staticSeq > c.maxPositions) {
    throw new AutodidactError(`sequence length ${staticSeq} exceeds maxPositions ${c.maxPositions}`, Code.InvalidArgument);
  }
  // Run-time sequence length as an int64 [1] (only when the length is symbolic).
  const seqVec = staticSeq === null ? b.slice(b.shapeOf(ids), [1], [2], [0]) : null;
  const firstRows = (table: ValueInfo): ValueInfo =>
    seqVec === null
      ? b.slice(table, [0], [staticSeq as number], [0])
      : b.sliceDynamic(table, b.ints([0]), seqVec, b.ints([0]), [seq, ...table.shape.slice(1)]);

  if (c.positional === "learned") h = b.add(h, firstRows(ctx.weight(paramNames.positions)));
  let rope: { cos: ValueInfo; sin: ValueInfo } | null = null;
  if (c.positional === "rotary") {
    const t = ropeTables(c, dtype, b);
    rope = { cos: firstRows(t.cos), sin: firstRows(t.sin) };
  }
  // Causal additive mask [T,T].
  const P = staticSeq ?? c.maxPositions;
  const maskTable = causalMaskTable(b, P, dtype);
  const mask =
    seqVec === null
      ? maskTable
      : b.sliceDynamic(maskTable, b.ints([0, 0]), b.concat([seqVec, seqVec], 0), b.ints([0, 1]), [seq, seq]);

  for (let i = 0; i < c.numLayers; i++) {
    const a = norm(ctx, h, paramNames.inputNorm(i), paramNames.inputNorm(i, "bias"));
    // q comes out already scaled by 1/√hd.
    const [q, k0, v0] = projectQkv(a, i);
    const [k, v] = [repeatKv(ctx, k0), repeatKv(ctx, v0)];
    let qh = splitHeads(ctx, q);
    const vh = splitHeads(ctx, v);
    let kT: ValueInfo;
    if (rope) {
      qh = applyRope(ctx, qh, rope.cos, rope.sin);
      kT = b.transpose(applyRope(ctx, splitHeads(ctx, k), rope.cos, rope.sin), [0, 1, 3, 2]);
    } else {
      // [B,T,D] → [B,T,H,hd] → [B,H,hd,T] in one Transpose.
      kT = b.transpose(b.reshape(k, [0, 0, c.numHeads, headDim(c)]), [0, 2, 3, 1]);
    }
    const attn = attend(ctx, qh, kT, vh, mask, true);
    h = b.add(h, ctx.linear(attn, spec(paramNames.attn(i, "o_proj")), paramNames.attn(i, "o_proj", "bias")));
    const m = norm(ctx, h, paramNames.postAttnNorm(i), paramNames.postAttnNorm(i, "bias"));
    let down: ValueInfo;
    if (scaledGelu) {
      const u = ctx.linear(m, spec(paramNames.mlp(i, "up_proj")), paramNames.mlp(i, "up_proj", "bias"), Math.SQRT1_2, true);
      const y = b.op(SCALED_GELU, [u], [{ dtype, shape: u.shape }], { domain: AD_DOMAIN })[0]!;
      down = ctx.linear(y, spec(paramNames.mlp(i, "down_proj")), paramNames.mlp(i, "down_proj", "bias"), Math.sqrt(2 / Math.PI), false);
    } else {
      down = mlpBlock(ctx, m, i, spec);
    }
    h = b.add(h, down);
  }
  h = norm(ctx, h, paramNames.finalNorm, paramNames.finalNormBias);
  if (options.hiddenOutput) b.output(h, "hidden");
  const headSpec: ParamSpec = c.tieEmbeddings ? { name: paramNames.embed, shape: [c.vocabSize, c.hiddenSize], kind: "linear", module: "lm_head" } : spec(paramNames.lmHead);
  b.output(ctx.linear(h, headSpec), "logits");
  return {
    model: b.buildModel({ metadata: { "autodidact.graph": "forward", "autodidact.config": JSON.stringify(c) } }),
    paramInputs: specs.map((s) => s.name),
    loraInputs,
  };
}

