import { AutodidactError, Code } from "../../platform/errors/index.js";
import { GraphBuilder } from "../graph/builder.js";
import { AD_DOMAIN, attr, MS_DOMAIN, type Dim, type Model, type ValueInfo } from "../graph/ir.js";
import { headDim, type TransformerConfig } from "./config.js";
import { checkParameters, paramNames, parameterSpecs, type ParamSpec, type Parameters } from "./params.js";

/** Float dtype a forward graph computes in (float64 for gradient checks; note Erf is float32-only in ORT). */
export type FloatDType = "float32" | "float64";

/** Additive mask value for disallowed attention (finite so fully-masked rows stay NaN-free). */
export const MASK_VALUE = -1e9;

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
  /** The base weight it adapts. */
  readonly base: string;
  readonly which: "A" | "B";
  readonly shape: readonly number[];
}

/** PEFT tensor names of the adapter pair on a base linear weight (`...q_proj.weight`). */
export function loraParamNames(baseWeight: string): { a: string; b: string } {
  const module = baseWeight.replace(/\.weight$/, "");
  return { a: `base_model.model.${module}.lora_A.weight`, b: `base_model.model.${module}.lora_B.weight` };
}

interface Ctx {
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
  const loraInputs: LoraInput[] = [];
  const lora = options.lora;
  if (lora) {
    if (!(lora.rank > 0)) throw new AutodidactError("LoRA rank must be positive", Code.InvalidArgument);
    for (const s of specs) {
      if (s.kind !== "linear" || !s.module || !lora.targetModules.includes(s.module)) continue;
      const { a, b: bn } = loraParamNames(s.name);
      const [out, inp] = s.shape as [number, number];
      b.input(a, dtype, [lora.rank, inp]);
      b.input(bn, dtype, [out, lora.rank]);
      loraInputs.push({ name: a, base: s.name, which: "A", shape: [lora.rank, inp] }, { name: bn, base: s.name, which: "B", shape: [out, lora.rank] });
    }
    if (loraInputs.length === 0) throw new AutodidactError(`LoRA target modules [${lora.targetModules.join(",")}] match no linear`, Code.InvalidArgument);
  }
  const specByName = new Map(specs.map((s) => [s.name, s]));
  const spec = (name: string): ParamSpec => specByName.get(name) as ParamSpec;
  const transposed = new Map<string, ValueInfo>();
  const scaledGelu = options.scaledGelu ?? false;
  if (scaledGelu && !(options.fused && dtype === "float32" && c.activation === "gelu")) {
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
      if (biasName && c.bias) {
        const bias = ctx.weight(biasName);
        y = b.add(y, scaleBias && scale !== 1 ? b.mul(bias, scalar(b, scale, dtype)) : bias);
      }
      return y;
    },
  };
  /** The adapter path s·(x·Aᵀ)·Bᵀ of a LoRA-targeted linear (null when not targeted), times `extraScale`. */
  const loraDelta = (x: ValueInfo, spec: ParamSpec, extraScale: number): ValueInfo | null => {
    if (!(lora && spec.module && lora.targetModules.includes(spec.module))) return null;
    const { a, b: bn } = loraParamNames(spec.name);
    const down = b.matMul(x, b.transpose(b.get(a), [1, 0]));
    const up = b.matMul(down, b.transpose(b.get(bn), [1, 0]));
    return b.mul(up, scalar(b, (lora.alpha / lora.rank) * extraScale, dtype));
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
    if (c.bias) {
      const bs = mods.map((m) => ctx.weight(paramNames.attn(i, m, "bias")));
      y = b.add(y, b.concat([b.mul(bs[0]!, s), bs[1]!, bs[2]!], 0));
    }
    const outs = ws.map((w) => w.shape[0] as number);
    const sizes = b.constant("int64", [3], BigInt64Array.from(outs.map((n) => BigInt(n))));
    const parts = b.op("Split", [y, sizes], outs.map((n) => ({ dtype, shape: [...y.shape.slice(0, -1), n] })), { attrs: { axis: attr.int(-1) } });
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
    const [q, k, v] = projectQkv(a, i);
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
      const up = ctx.linear(m, spec(paramNames.mlp(i, "up_proj")), paramNames.mlp(i, "up_proj", "bias"));
      down = ctx.linear(gelu(ctx, up), spec(paramNames.mlp(i, "down_proj")), paramNames.mlp(i, "down_proj", "bias"));
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

/** Options of {@link buildServingGraph}. */
export interface ServingGraphOptions {
  /**
   * Use fused/contrib ops (LayerNormalization, com.microsoft Gelu and MultiHeadAttention with
   * past/present KV) — default true. `false` composes everything from standard ops.
   */
  readonly fused?: boolean;
  /**
   * `hf` (default): the Hugging Face signature, `past_key_values.{i}.*` [B,H,past,hd] in and the
   * whole grown cache `present.{i}.*` out. `buffer`: our fast decoding signature: the caller's
   * fixed-capacity buffers `cache.{i}.key|value` [B,H,capacity,hd] in, whole, every step, with
   * `attention_mask` [B, capacity+S] marking the filled slots (and padding), and only the new
   * entries out, all layers in ONE output `new_kv` [2L,B,H,S,hd] ({@link NEW_KV}), which the caller
   * writes into its buffers: neither the cache nor a copy of it crosses the JS boundary, and the
   * graph needs no cache Transpose. Masking is MultiHeadAttention's own (`unidirectional` + key
   * padding), and `position_ids` is an input only for models with positions. Requires `fused`.
   */
  readonly kvLayout?: "hf" | "buffer";
}

/**
 * The serving graph with the Hugging Face ONNX decoder signature:
 * `input_ids` [B,S], `attention_mask` [B,past+S], `position_ids` [B,S],
 * `past_key_values.{i}.key|value` [B,H,past,hd] → `logits` [B,S,V], `present.{i}.key|value`.
 * Weights are initializers. The mask combines causality with `attention_mask`, so left-padded
 * batches decode correctly.
 */
export function buildServingGraph(c: TransformerConfig, params: Parameters, options: ServingGraphOptions = {}): Model {
  checkParameters(c, params);
  const dtype: FloatDType = "float32";
  const hd = headDim(c);
  const b = new GraphBuilder("autodidact_decoder");
  const B = "batch_size";
  const S = "sequence_length";
  const PAST = "past_sequence_length";
  const TOTAL = "total_sequence_length";
  const ids = b.input("input_ids", "int64", [B, S]);
  const amask = b.input("attention_mask", "int64", [B, TOTAL]);
  const bufferLayout = options.kvLayout === "buffer";
  // The decoding graph takes position_ids only when the model uses positions (one input less per step).
  const pos = bufferLayout && c.positional === "none" ? null : b.input("position_ids", "int64", [B, S]);
  if (bufferLayout && options.fused === false) throw new AutodidactError("kvLayout buffer needs the fused serving graph", Code.InvalidArgument);
  const past: { key: ValueInfo; value: ValueInfo }[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    if (bufferLayout) {
      // The caller's whole fixed-capacity buffer [B,H,capacity,hd], fed as is (no copy, no
      // Transpose); attention_mask hides the slots not written yet.
      past.push({ key: b.input(`cache.${i}.key`, dtype, [B, c.numHeads, PAST, hd]), value: b.input(`cache.${i}.value`, dtype, [B, c.numHeads, PAST, hd]) });
    } else {
      past.push({
        key: b.input(`past_key_values.${i}.key`, dtype, [B, c.numHeads, PAST, hd]),
        value: b.input(`past_key_values.${i}.value`, dtype, [B, c.numHeads, PAST, hd]),
      });
    }
  }
  const fused = options.fused ?? true;
  const ctx = servingCtx(b, c, params, fused);

  // Key j visible to query i iff j <= (TOTAL - S + i) and attention_mask[b, j] = 1. The decoding
  // graph hands both rules to MultiHeadAttention (`unidirectional` + an int32 key padding mask):
  // one Cast per step instead of the ~12 small nodes that build the additive mask below.
  const keyPadding = bufferLayout ? b.cast(amask, "int32") : null;
  const mask = bufferLayout ? null : additiveMask(b, ids, amask, S, TOTAL, B, dtype);
  const tables = c.positional === "rotary" ? ropeTables(c, dtype, b) : null;
  const specByName = new Map(parameterSpecs(c).map((s) => [s.name, s]));
  const spec = (name: string): ParamSpec => specByName.get(name) as ParamSpec;
  const newKv: ValueInfo[] = [];
  const logits = decoderStack(ctx, ids, pos, tables, (i, a, rope) => {
    const layerPast = past[i] as { key: ValueInfo; value: ValueInfo };
    if (fused) {
      // com.microsoft MultiHeadAttention: appends to the cache and attends in one kernel.
      const [q, k, v] = fusedQkv(ctx, a, i, params, rope);
      const mhaAttrs = { num_heads: attr.int(c.numHeads), scale: attr.float(1 / Math.sqrt(hd)) };
      const kv = { dtype, shape: [B, c.numHeads, TOTAL, hd] };
      if (bufferLayout) {
        newKv.push(k, v);
        // The CPU kernel only attends over past_key/past_value when the present outputs are
        // requested, so they are produced (and stay inside the graph).
        const [out] = b.op("MultiHeadAttention", [q, k, v, null, keyPadding, null, layerPast.key, layerPast.value], [{ dtype, shape: q.shape }, kv, kv], {
          domain: MS_DOMAIN,
          attrs: { ...mhaAttrs, unidirectional: attr.int(1) },
        });
        return out as ValueInfo;
      }
      const [out] = b.op("MultiHeadAttention", [q, k, v, null, null, mask as ValueInfo, layerPast.key, layerPast.value], [{ dtype, shape: q.shape }, kv, kv], {
        domain: MS_DOMAIN,
        attrs: mhaAttrs,
        names: [b.fresh("mha"), `present.${i}.key`, `present.${i}.value`],
      });
      return out as ValueInfo;
    }
    let qh = splitHeads(ctx, ctx.linear(a, spec(paramNames.attn(i, "q_proj")), paramNames.attn(i, "q_proj", "bias")));
    let kh = splitHeads(ctx, ctx.linear(a, spec(paramNames.attn(i, "k_proj")), paramNames.attn(i, "k_proj", "bias")));
    const vh = splitHeads(ctx, ctx.linear(a, spec(paramNames.attn(i, "v_proj")), paramNames.attn(i, "v_proj", "bias")));
    if (rope) {
      qh = applyRope(ctx, qh, rope.cos, rope.sin);
      kh = applyRope(ctx, kh, rope.cos, rope.sin);
    }
    const presentK = b.refine(b.concat([layerPast.key, kh], 2, `present.${i}.key`), [B, c.numHeads, TOTAL, hd]);
    const presentV = b.refine(b.concat([layerPast.value, vh], 2, `present.${i}.value`), [B, c.numHeads, TOTAL, hd]);
    return attend(ctx, qh, b.transpose(presentK, [0, 1, 3, 2]), presentV, mask as ValueInfo);
  });
  b.output(logits, "logits");
  if (bufferLayout) {
    // All new entries in ONE output [2L,B,H,S,hd] (layer l's key at 2l, value at 2l+1): each
    // output crossing into JS costs ~2.5 µs per step, a large share of a batch-1 step.
    const all = b.concat(newKv, -1); // [B,S,2L·D]
    const split = b.reshape(all, [0, 0, 2 * c.numLayers, c.numHeads, hd]);
    b.output(b.transpose(split, [2, 0, 3, 1, 4], NEW_KV), NEW_KV);
  } else {
    for (let i = 0; i < c.numLayers; i++) {
      b.output(`present.${i}.key`);
      b.output(`present.${i}.value`);
    }
  }
  return b.buildModel({ metadata: { "autodidact.graph": bufferLayout ? "decoding" : "serving", "autodidact.config": JSON.stringify(c) } });
}

/** Output names of {@link buildGreedyDecodingGraph}: [N, B, 1] each, one entry per step. */
export const GREEDY_OUTPUTS = { tokens: "tokens", logprobs: "logprobs" } as const;

/**
 * Greedy decoding of a whole batch in ONE run (at batch 1 most of a per-token `run` is boundary
 * cost: tensor conversion, promise hops, per-run allocations, not kernels). Inputs: the left-padded
 * prompts `input_ids` [B,L], their `attention_mask` [B,L] int64, `position_ids` [B,L] (models
 * with positions only), `max_new_tokens` int64 [] (≥ 1) and `stop_tokens` int64 [K] (K ≥ 1).
 * The prompt is prefilled outside an ONNX Loop whose body runs one decoder step with the KV cache
 * ([B,H,past,hd] per layer, grown by MultiHeadAttention's `present`) as loop-carried state, picks
 * the argmax, gathers its log-softmax, and stops when every row has emitted a stop token (rows
 * that stopped keep decoding, their tokens are ignored) or after `max_new_tokens` tokens.
 * Outputs {@link GREEDY_OUTPUTS}: the chosen ids and their log-probabilities per step, [N,B,1].
 */
export function buildGreedyDecodingGraph(c: TransformerConfig, params: Parameters): Model {
  checkParameters(c, params);
  const dtype: FloatDType = "float32";
  const hd = headDim(c);
  const V = c.vocabSize;
  const b = new GraphBuilder("autodidact_greedy");
  const B = "batch_size";
  const ids = b.input("input_ids", "int64", [B, "prompt_length"]);
  const amask = b.input("attention_mask", "int64", [B, "prompt_length"]);
  const pos0 = c.positional === "none" ? null : b.input("position_ids", "int64", [B, "prompt_length"]);
  const maxNew = b.input("max_new_tokens", "int64", []);
  const stops = b.input("stop_tokens", "int64", ["stop_count"]);
  const ctx = servingCtx(b, c, params, true);
  const tables = c.positional === "rotary" ? ropeTables(c, dtype, b) : null;
  const mhaAttrs = { num_heads: attr.int(c.numHeads), scale: attr.float(1 / Math.sqrt(hd)), unidirectional: attr.int(1) };

  /** argmax [B,1] of the last position's logits, its log-probability [B,1], and whether it stops its row (int32 [B,1]). */
  const pick = (g: GraphBuilder, logits: ValueInfo): { token: ValueInfo; logprob: ValueInfo; stop: ValueInfo } => {
    const last = g.reshape(g.slice(logits, [-1], [Number.MAX_SAFE_INTEGER], [1]), [0, V]); // [B,V]
    const [token] = g.op("ArgMax", [last], [{ dtype: "int64", shape: [B, 1] }], { attrs: { axis: attr.int(1), keepdims: attr.int(1) } });
    const [logprob] = g.op("GatherElements", [g.logSoftmax(last, 1), token as ValueInfo], [{ dtype, shape: [B, 1] }], { attrs: { axis: attr.int(1) } });
    const hits = g.cast(g.compare("Equal", token as ValueInfo, stops), "int32"); // [B,K]
    const stop = g.op("ReduceMax", [hits], [{ dtype: "int32", shape: [B, 1] }], { attrs: { axes: attr.ints([1]), keepdims: attr.int(1) } })[0] as ValueInfo;
    return { token: token as ValueInfo, logprob: logprob as ValueInfo, stop };
  };
  /** bool []: some row has not stopped yet. */
  const anyRunning = (g: GraphBuilder, done: ValueInfo): ValueInfo => {
    const [least] = g.op("ReduceMin", [done], [{ dtype: "int32", shape: [] }], { attrs: { keepdims: attr.int(0) } });
    return g.compare("Equal", least as ValueInfo, g.scalar(0, "int32"));
  };
  const heads = (g: GraphBuilder, x: ValueInfo): ValueInfo => g.transpose(g.reshape(x, [0, 0, c.numHeads, hd]), [0, 2, 1, 3]);

  // Prefill: the prompt attends causally to itself (no past); its keys/values become the cache.
  const padMask0 = b.cast(amask, "int32");
  const cache0: ValueInfo[] = [];
  const logits0 = decoderStack(ctx, ids, pos0, tables, (i, a, rope) => {
    const [q, k, v] = fusedQkv(ctx, a, i, params, rope);
    cache0.push(heads(b, k), heads(b, v));
    const [out] = b.op("MultiHeadAttention", [q, k, v, null, padMask0], [{ dtype, shape: q.shape }], { domain: MS_DOMAIN, attrs: mhaAttrs });
    return out as ValueInfo;
  });
  const first = pick(b, logits0);
  // One visible key column per step, [B,1] int32 of ones.
  const batchVec = b.slice(b.shapeOf(ids), [0], [1], [0]);
  const [onesCol] = b.op("Expand", [b.constant("int32", [1, 1], Int32Array.of(1)), b.concat([batchVec, b.ints([1])], 0)], [{ dtype: "int32", shape: [B, 1] }]);
  const nextPos0 = pos0 ? b.reduceSum(amask, [1], true) : null; // [B,1]: prompt lengths

  // Loop body: one decoding step. Carried: token, done, mask, (position), caches.
  const g = b.subgraph("greedy_step");
  g.input(b.fresh("iteration"), "int64", []);
  g.input(b.fresh("cond_in"), "bool", []);
  const token = g.input(b.fresh("token"), "int64", [B, 1]);
  const done = g.input(b.fresh("done"), "int32", [B, 1]);
  const padMask = g.input(b.fresh("mask"), "int32", [B, null]);
  const pos = nextPos0 ? g.input(b.fresh("position"), "int64", [B, 1]) : null;
  const cache = cache0.map(() => g.input(b.fresh("cache"), dtype, [B, c.numHeads, null, hd]));
  const maskNext = g.concat([padMask, onesCol as ValueInfo], 1);
  const cacheNext: ValueInfo[] = [];
  const gctx = ctx.on(g);
  const logits = decoderStack(gctx, token, pos, tables, (i, a, rope) => {
    const [q, k, v] = fusedQkv(gctx, a, i, params, rope);
    const kv = { dtype, shape: [B, c.numHeads, null, hd] };
    const [out, presentK, presentV] = g.op("MultiHeadAttention", [q, k, v, null, maskNext, null, cache[2 * i] as ValueInfo, cache[2 * i + 1] as ValueInfo], [{ dtype, shape: q.shape }, kv, kv], {
      domain: MS_DOMAIN,
      attrs: mhaAttrs,
    });
    cacheNext.push(presentK as ValueInfo, presentV as ValueInfo);
    return out as ValueInfo;
  });
  const step = pick(g, logits);
  const doneNext = g.binary("Max", done, step.stop);
  g.output(anyRunning(g, doneNext));
  g.output(step.token);
  g.output(doneNext);
  g.output(maskNext);
  if (pos) g.output(g.add(pos, g.scalar(1, "int64")));
  for (const v of cacheNext) g.output(v);
  g.output(g.identity(step.token));
  g.output(step.logprob);

  const carried = [first.token, first.stop, padMask0, ...(nextPos0 ? [nextPos0] : []), ...cache0];
  const outs = b.loop(b.sub(maxNew, b.scalar(1, "int64")), anyRunning(b, first.stop), carried, g.build());
  const [scanTokens, scanLogprobs] = outs.slice(carried.length) as [ValueInfo, ValueInfo];
  b.output(b.concat([b.unsqueeze(first.token, [0]), scanTokens], 0), GREEDY_OUTPUTS.tokens);
  b.output(b.concat([b.unsqueeze(first.logprob, [0]), scanLogprobs], 0), GREEDY_OUTPUTS.logprobs);
  return b.buildModel({ metadata: { "autodidact.graph": "greedy-decoding", "autodidact.config": JSON.stringify(c) } });
}

// ------------------------------------------------------------------ pieces

/**
 * The context of a serving graph's ops on builder `b`: weights become initializers of the
 * top-level builder on first use (weights only read packed are not stored twice), and each
 * weight's Transpose is made once there (ORT folds it at load time), so a Loop body built with
 * its own context (`on`) reads them from the outer scope.
 */
function servingCtx(b: GraphBuilder, c: TransformerConfig, params: Parameters, fused: boolean): Ctx & { on(body: GraphBuilder): Ctx } {
  const values = new Map<string, ValueInfo>();
  const weight = (name: string): ValueInfo => {
    let v = values.get(name);
    if (!v) {
      const p = params[name] as Parameters[string];
      v = b.initializer(name, "float32", p.dims, p.data);
      values.set(name, v);
    }
    return v;
  };
  const transposed = new Map<string, ValueInfo>();
  const make = (ops: GraphBuilder): Ctx => ({
    b: ops,
    root: b,
    c,
    dtype: "float32",
    fused,
    weight,
    linear(x, spec, biasName, scale = 1) {
      if (scale !== 1) throw new AutodidactError("serving graphs do not fold scales into linears", Code.Internal);
      let wt = transposed.get(spec.name);
      if (!wt) {
        wt = b.transpose(weight(spec.name), [1, 0]);
        transposed.set(spec.name, wt);
      }
      let y = ops.matMul(x, wt);
      if (biasName && c.bias) y = ops.add(y, weight(biasName));
      return y;
    },
  });
  return { ...make(b), on: make };
}

/**
 * Embedding, the layers and the head of a serving graph on `ids` [B,S] → logits [B,S,V];
 * `attention(i, a, rope)` computes layer i's attention output [B,S,D] from its normed input.
 * Residual Add + LayerNorm pairs are one com.microsoft SkipLayerNormalization in fused graphs
 * (8 nodes fewer per decoding step for the reference model, where per-node overhead is most of a
 * batch-1 step).
 */
function decoderStack(
  ctx: Ctx,
  ids: ValueInfo,
  pos: ValueInfo | null,
  tables: { cos: ValueInfo; sin: ValueInfo } | null,
  attention: (i: number, a: ValueInfo, rope: { cos: ValueInfo; sin: ValueInfo } | null) => ValueInfo,
): ValueInfo {
  const { b, c, dtype, fused } = ctx;
  let h = b.gather(ctx.weight(paramNames.embed), ids);
  if (c.positional === "learned") h = b.add(h, b.gather(ctx.weight(paramNames.positions), pos as ValueInfo));
  let rope: { cos: ValueInfo; sin: ValueInfo } | null = null;
  if (tables) {
    // [B,1,S,hd] for the composed [B,H,S,hd] layout; [B,S,1,hd] for the fused [B,S,H,hd] layout.
    const axis = fused ? 2 : 1;
    rope = { cos: b.unsqueeze(b.gather(tables.cos, pos as ValueInfo), [axis]), sin: b.unsqueeze(b.gather(tables.sin, pos as ValueInfo), [axis]) };
  }
  const specByName = new Map(parameterSpecs(c).map((s) => [s.name, s]));
  const spec = (name: string): ParamSpec => specByName.get(name) as ParamSpec;
  const addNorm = (x: ValueInfo, delta: ValueInfo, w: string, bias: string): { sum: ValueInfo; normed: ValueInfo } => {
    if (!(fused && c.norm === "layernorm")) {
      const sum = b.add(x, delta);
      return { sum, normed: norm(ctx, sum, w, bias) };
    }
    const stat = { dtype, shape: [...x.shape.slice(0, -1), 1] };
    const [normed, , , sum] = b.op("SkipLayerNormalization", [x, delta, ctx.weight(w), ctx.weight(bias)], [{ dtype, shape: x.shape }, stat, stat, { dtype, shape: x.shape }], {
      domain: MS_DOMAIN,
      attrs: { epsilon: attr.float(c.normEps) },
    });
    return { sum: sum as ValueInfo, normed: normed as ValueInfo };
  };
  let a = norm(ctx, h, paramNames.inputNorm(0), paramNames.inputNorm(0, "bias"));
  for (let i = 0; i < c.numLayers; i++) {
    const o = ctx.linear(attention(i, a, rope), spec(paramNames.attn(i, "o_proj")), paramNames.attn(i, "o_proj", "bias"));
    const post = addNorm(h, o, paramNames.postAttnNorm(i), paramNames.postAttnNorm(i, "bias"));
    h = post.sum;
    const up = ctx.linear(post.normed, spec(paramNames.mlp(i, "up_proj")), paramNames.mlp(i, "up_proj", "bias"));
    const down = ctx.linear(gelu(ctx, up), spec(paramNames.mlp(i, "down_proj")), paramNames.mlp(i, "down_proj", "bias"));
    const last = i === c.numLayers - 1;
    const next = addNorm(h, down, last ? paramNames.finalNorm : paramNames.inputNorm(i + 1), last ? paramNames.finalNormBias : paramNames.inputNorm(i + 1, "bias"));
    h = next.sum;
    a = next.normed;
  }
  const headSpec: ParamSpec = c.tieEmbeddings ? { name: paramNames.embed, shape: [c.vocabSize, c.hiddenSize], kind: "linear", module: "lm_head" } : spec(paramNames.lmHead);
  return ctx.linear(a, headSpec);
}

/** Layer i's q, k, v [B,S,D] of a fused serving graph (packed projection, then rotary if any). */
function fusedQkv(ctx: Ctx, a: ValueInfo, i: number, params: Parameters, rope: { cos: ValueInfo; sin: ValueInfo } | null): [ValueInfo, ValueInfo, ValueInfo] {
  const { b, c } = ctx;
  let [q, k, v] = packedQkv(ctx, a, i, params) as [ValueInfo, ValueInfo, ValueInfo];
  if (rope) {
    const rot = (x: ValueInfo): ValueInfo => b.reshape(applyRope(ctx, b.reshape(x, [0, 0, c.numHeads, headDim(c)]), rope.cos, rope.sin), [0, 0, c.hiddenSize]);
    q = rot(q);
    k = rot(k);
  }
  return [q, k, v];
}

/**
 * q, k, v of layer `i` from ONE MatMul against the three projections packed side by side
 * (an initializer [D, Dq+Dk+Dv], built here) and a Split: at decoding sizes each MatMul is
 * dominated by per-op overhead, so this saves two kernels per layer per step.
 */
function packedQkv(ctx: Ctx, x: ValueInfo, i: number, params: Parameters): ValueInfo[] {
  const { b, c } = ctx;
  const parts = (["q_proj", "k_proj", "v_proj"] as const).map((m) => params[paramNames.attn(i, m)] as Parameters[string]);
  const outs = parts.map((p) => p.dims[0] as number);
  const inDim = parts[0]?.dims[1] as number;
  const width = outs.reduce((s, n) => s + n, 0);
  const packed = new Float32Array(inDim * width);
  let col = 0;
  parts.forEach((p, k) => {
    const n = outs[k] as number;
    const w = p.data;
    // HF weights are [out, in]; the packed matrix is [in, out] (x · Wᵀ).
    for (let o = 0; o < n; o++) for (let j = 0; j < inDim; j++) packed[j * width + col + o] = w[o * inDim + j] as number;
    col += n;
  });
  const once = (name: string, dims: number[], data: Float32Array): ValueInfo => (ctx.root.has(name) ? ctx.root.get(name) : ctx.root.initializer(name, "float32", dims, data));
  let y = b.matMul(x, once(`qkv_packed.${i}`, [inDim, width], packed));
  if (c.bias) {
    const bias = new Float32Array(width);
    let off = 0;
    (["q_proj", "k_proj", "v_proj"] as const).forEach((m, k) => {
      bias.set((params[paramNames.attn(i, m, "bias")] as Parameters[string]).data as Float32Array, off);
      off += outs[k] as number;
    });
    y = b.add(y, once(`qkv_packed_bias.${i}`, [width], bias));
  }
  const sizes = b.constant("int64", [3], BigInt64Array.from(outs.map((n) => BigInt(n))));
  return b.op("Split", [y, sizes], outs.map((n) => ({ dtype: ctx.dtype, shape: [...y.shape.slice(0, -1), n] })), { attrs: { axis: attr.int(-1) } });
}

/** Additive mask [B,1,S,TOTAL] from causality and `attention_mask` (0 = visible, MASK_VALUE = not). */
function additiveMask(b: GraphBuilder, ids: ValueInfo, amask: ValueInfo, S: Dim, TOTAL: Dim, B: Dim, dtype: FloatDType): ValueInfo {
  const sLen = b.gather(b.shapeOf(ids), b.scalar(1, "int64"));
  const total = b.gather(b.shapeOf(amask), b.scalar(1, "int64"));
  const one = b.scalar(1, "int64");
  const [qpos] = b.op("Range", [b.sub(total, sLen), total, one], [{ dtype: "int64", shape: [S] }]);
  const [kpos] = b.op("Range", [b.scalar(0, "int64"), total, one], [{ dtype: "int64", shape: [TOTAL] }]);
  const causal = b.compare("LessOrEqual", b.unsqueeze(kpos as ValueInfo, [0]), b.unsqueeze(qpos as ValueInfo, [1])); // [S,TOTAL]
  const pad = b.unsqueeze(b.cast(amask, "bool"), [1, 2]); // [B,1,1,TOTAL]
  const [allowed] = b.op("And", [causal, pad], [{ dtype: "bool", shape: [B, 1, S, TOTAL] }]);
  return b.where(allowed as ValueInfo, scalar(b, 0, dtype), scalar(b, MASK_VALUE, dtype));
}

function scalar(b: GraphBuilder, v: number, dtype: FloatDType): ValueInfo {
  return b.scalar(v, dtype);
}

function floatConst(b: GraphBuilder, dtype: FloatDType, dims: number[], data: Float64Array): ValueInfo {
  return dtype === "float64" ? b.constant("float64", dims, data) : b.constant("float32", dims, Float32Array.from(data));
}

function causalMaskTable(b: GraphBuilder, n: number, dtype: FloatDType): ValueInfo {
  const data = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) data[i * n + j] = MASK_VALUE;
  return floatConst(b, dtype, [n, n], data);
}

/** cos/sin tables [maxPositions, headDim] in the "rotate half" layout of HF LLaMA. */
function ropeTables(c: TransformerConfig, dtype: FloatDType, b: GraphBuilder): { cos: ValueInfo; sin: ValueInfo } {
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
function splitHeads(ctx: Ctx, x: ValueInfo): ValueInfo {
  const { b, c } = ctx;
  return b.transpose(b.reshape(x, [0, 0, c.numHeads, headDim(c)]), [0, 2, 1, 3]);
}

/** x·cos + rotate_half(x)·sin on [B,H,T,hd]. */
function applyRope(ctx: Ctx, x: ValueInfo, cos: ValueInfo, sin: ValueInfo): ValueInfo {
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
function attend(ctx: Ctx, q: ValueInfo, kT: ValueInfo, v: ValueInfo, mask: ValueInfo, prescaled = false): ValueInfo {
  const { b, c, dtype } = ctx;
  const qs = prescaled ? q : b.mul(q, scalar(b, 1 / Math.sqrt(headDim(c)), dtype));
  const scores = b.add(b.matMul(qs, kT), mask);
  const probs = b.softmax(scores, -1);
  const out = b.transpose(b.matMul(probs, v), [0, 2, 1, 3]);
  return b.reshape(out, [0, 0, c.hiddenSize]);
}

function norm(ctx: Ctx, x: ValueInfo, weight: string, bias: string): ValueInfo {
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
  const ms = b.reduceMean(b.mul(x, x), [-1]);
  return b.mul(b.div(x, b.sqrt(b.add(ms, scalar(b, c.normEps, dtype)))), w);
}

function gelu(ctx: Ctx, x: ValueInfo): ValueInfo {
  const { b, c, dtype } = ctx;
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
 * The decoding graph's one output of new cache entries: [2·layers, B, H, S, hd], layer l's keys
 * at index 2l and values at 2l+1.
 */
export const NEW_KV = "new_kv";

/** Symbolic dims used by the serving graph, exported so loaders and callers agree. */
export const SERVING_DIMS: Readonly<Record<"batch" | "seq" | "past" | "total", Dim>> = {
  batch: "batch_size",
  seq: "sequence_length",
  past: "past_sequence_length",
  total: "total_sequence_length",
};
