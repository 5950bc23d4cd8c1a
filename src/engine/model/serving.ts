import { AutodidactError, Code } from "../../platform/errors/index.js";
import { GraphBuilder } from "../graph/builder.js";
import { attr, MS_DOMAIN, type Dim, type Model, type ValueInfo } from "../graph/ir.js";
import { hasBias, headDim, kvHeads, type TransformerConfig } from "./config.js";
import { checkParameters, paramNames, parameterSpecs, type ParamSpec, type Parameters } from "./params.js";
import { applyRope, attend, MASK_VALUE, mlpBlock, norm, repeatKv, ropeTables, scalar, splitHeads, type Ctx, type FloatDType } from "./layers.js";

// Serving graphs: the HF decoder signature, the fast `buffer` decoding graph, and greedy decoding in one run.

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
    let kh = splitHeads(ctx, repeatKv(ctx, ctx.linear(a, spec(paramNames.attn(i, "k_proj")), paramNames.attn(i, "k_proj", "bias"))));
    const vh = splitHeads(ctx, repeatKv(ctx, ctx.linear(a, spec(paramNames.attn(i, "v_proj")), paramNames.attn(i, "v_proj", "bias"))));
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
      if (biasName && spec.module !== undefined && hasBias(c, spec.module)) y = ops.add(y, weight(biasName));
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
    const stat = { dtype, shape: [...x.shape.slice(0, -1), 1] };
    if (fused && c.norm === "rmsnorm") {
      const [normed, , , sum] = b.op("SkipSimplifiedLayerNormalization", [x, delta, ctx.weight(w)], [{ dtype, shape: x.shape }, stat, stat, { dtype, shape: x.shape }], {
        domain: MS_DOMAIN,
        attrs: { epsilon: attr.float(c.normEps) },
      });
      return { sum: sum as ValueInfo, normed: normed as ValueInfo };
    }
    if (!(fused && c.norm === "layernorm")) {
      const sum = b.add(x, delta);
      return { sum, normed: norm(ctx, sum, w, bias) };
    }
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
    const down = mlpBlock(ctx, post.normed, i, spec);
    const last = i === c.numLayers - 1;
    const next = addNorm(h, down, last ? paramNames.finalNorm : paramNames.inputNorm(i + 1), last ? paramNames.finalNormBias : paramNames.inputNorm(i + 1, "bias"));
    h = next.sum;
    a = next.normed;
  }
  const headSpec: ParamSpec = c.tieEmbeddings ? { name: paramNames.embed, shape: [c.vocabSize, c.hiddenSize], kind: "linear", module: "lm_head" } : spec(paramNames.lmHead);
  return ctx.linear(a, headSpec);
}

/**
 * Layer i's q, k, v [B,S,D] of a fused serving graph (packed projection, then rotary if any;
 * grouped-query k and v repeated to every query head after rotary, so caches hold numHeads heads).
 */
function fusedQkv(ctx: Ctx, a: ValueInfo, i: number, params: Parameters, rope: { cos: ValueInfo; sin: ValueInfo } | null): [ValueInfo, ValueInfo, ValueInfo] {
  const { b, c } = ctx;
  let [q, k, v] = packedQkv(ctx, a, i, params) as [ValueInfo, ValueInfo, ValueInfo];
  if (rope) {
    const rot = (x: ValueInfo, heads: number): ValueInfo =>
      b.reshape(applyRope(ctx, b.reshape(x, [0, 0, heads, headDim(c)]), rope.cos, rope.sin), [0, 0, heads * headDim(c)]);
    q = rot(q, c.numHeads);
    k = rot(k, kvHeads(c));
  }
  return [q, repeatKv(ctx, k), repeatKv(ctx, v)];
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
  if (hasBias(c, "q_proj")) {
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
