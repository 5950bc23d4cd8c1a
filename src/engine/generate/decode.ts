import { AutodidactError, Code } from "../../platform/errors/index.js";
import { NEW_KV } from "../model/transformer.js";
import { createRng } from "../random.js";
import type { ModelSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { decodeGreedyLoop } from "./greedy-loop.js";
import { checkSampling, createSampler, isGreedy, type SamplingOptions } from "./sampling.js";
import { decoderSignature, emptyCacheDims, kvNames } from "./signature.js";
import { leftPad } from "./left-pad.js";

/** Everything one batched decoding needs, as plain data (it crosses into a worker). */
export interface DecodeRequest extends SamplingOptions {
  /** Token ids of each prompt (at least one token each). */
  readonly prompts: readonly (readonly number[])[];
  readonly maxNewTokens: number;
  /** Generation stops for a row when it emits one of these (the stop token is kept in the output). */
  readonly stopTokens?: readonly number[];
  /** Id used for left padding (any valid id; masked out). */
  readonly padId: number;
  /** Same seed + same request → same output. Default 0. */
  readonly seed?: number | string;
  /** Longest total length the model supports (prompt + new); new tokens are capped to fit. */
  readonly maxLength?: number;
}

/** Per-row result of decoding. */
export interface DecodedRow {
  /** Generated ids (including a final stop token if one was produced). */
  readonly tokens: number[];
  /** Log-probability of each generated token under the model's unmodified softmax. */
  readonly logprobs: number[];
  readonly finishReason: "stop" | "length";
}

/** Optional extras of {@link decodeBatch}. */
export interface DecodeBatchOptions {
  /**
   * The same model's greedy decoding graph (`buildGreedyDecodingGraph`): greedy requests then
   * decode in ONE run through it (same tokens and log-probabilities; measured 1.3-1.4x the
   * tokens/s at batch 1 and 64 on the reference model, see bench/engine/README.md).
   */
  readonly greedyLoop?: ModelSession;
}

/**
 * Batched autoregressive decoding with a KV cache through a decoder with the HF ONNX signature:
 * left-pads prompts, prefills once, then feeds one token per row per step, reusing the `present`
 * tensors as the next `past`. Greedy requests go through `options.greedyLoop` when given. Runs
 * wherever the session lives (call it inside a worker).
 */
export async function decodeBatch(session: ModelSession, req: DecodeRequest, options: DecodeBatchOptions = {}): Promise<DecodedRow[]> {
  const sig = decoderSignature(session.inputs, session.outputs);
  const B = req.prompts.length;
  if (B === 0) return [];
  if (!(Number.isInteger(req.maxNewTokens) && req.maxNewTokens >= 0)) {
    throw new AutodidactError(`maxNewTokens must be an integer >= 0, got ${req.maxNewTokens}`, Code.InvalidArgument);
  }
  const lens = req.prompts.map((p) => p.length);
  if (lens.some((l) => l === 0)) throw new AutodidactError("every prompt needs at least one token", Code.InvalidArgument);
  const L = Math.max(...lens);
  let maxNew = req.maxNewTokens;
  if (req.maxLength !== undefined) {
    if (L > req.maxLength) throw new AutodidactError(`prompt of ${L} tokens exceeds the model's context of ${req.maxLength}`, Code.InvalidArgument);
    maxNew = Math.min(maxNew, req.maxLength - L);
  }
  const rows: DecodedRow[] = req.prompts.map(() => ({ tokens: [], logprobs: [], finishReason: "length" as "stop" | "length" }));
  if (maxNew === 0) return rows;
  const stop = new Set(req.stopTokens ?? []);
  if (options.greedyLoop && isGreedy(req)) {
    checkSampling(req);
    return decodeGreedyLoop(options.greedyLoop, { prompts: req.prompts, maxNew, stopTokens: stop, padId: req.padId });
  }
  const rng = createRng(`generate:${req.seed ?? 0}`);
  const rowRngs = req.prompts.map((_, i) => rng.fork(i));

  // Prefill inputs (left padded).
  const { ids, mask: mask0, pos: pos0 } = leftPad(req.prompts, L, req.padId);
  const nextPos = req.prompts.map((p) => p.length);

  const maxTotal = L + maxNew;
  // Attention mask for every step, as one buffer; step t uses a prefix view.
  const maskAll = new BigInt64Array(B * maxTotal);
  let feeds: TensorMap = {
    input_ids: { dtype: "int64", dims: [B, L], data: ids },
  };
  if (sig.hasAttentionMask) feeds.attention_mask = { dtype: "int64", dims: [B, L], data: mask0 };
  if (sig.hasPositionIds) feeds.position_ids = { dtype: "int64", dims: [B, L], data: pos0 };
  if (sig.hasUseCacheBranch) feeds.use_cache_branch = { dtype: "bool", dims: [1], data: Uint8Array.of(0) };
  const names = Array.from({ length: sig.numLayers }, (_, l) => kvNames(sig, l));
  const empty = emptyCacheDims(sig, B);
  for (const n of names) {
    feeds[n.inKey] = { dtype: "float32", dims: empty, data: new Float32Array(0) };
    feeds[n.inValue] = { dtype: "float32", dims: empty, data: new Float32Array(0) };
  }
  const outputNames = sig.kvLayout === "buffer" ? ["logits", NEW_KV] : ["logits", ...names.flatMap((n) => [n.outKey, n.outValue])];

  let sampler: ReturnType<typeof createSampler> | null = null;
  const done = new Uint8Array(B);
  let remaining = B;
  let curLen = L;
  const stepIds = new BigInt64Array(B);
  const stepPos = new BigInt64Array(B);
  const H = sig.numKvHeads;
  const hd = sig.headDim;
  const perStep = B * H * hd; // cache floats per time step (all rows)
  const cap = perStep * maxTotal;
  // Pre-allocated buffers, so nothing of size O(cache) is allocated per token:
  //  - buffer: one [B,H,maxTotal,hd] buffer per cache tensor, fed whole every step (inputs cross
  //    cheaply); the graph returns only the new entries, which we write at slots [past, past+S),
  //    and `slotMask` [B, maxTotal+1] marks the filled slots (+ the new token's column).
  //  - hf: the graph returns the whole grown cache; ORT writes it in place into one of two pools
  //    used alternately, so a step never reads and writes the same memory.
  const caches = sig.kvLayout === "buffer" ? names.map(() => [new Float32Array(cap), new Float32Array(cap)] as const) : null;
  let slotMask: BigInt64Array | null = null;
  if (caches) {
    const bufDims = [B, H, maxTotal, hd];
    names.forEach((n, l) => {
      const [k, v] = caches[l] as readonly [Float32Array, Float32Array];
      feeds[n.inKey] = { dtype: "float32", dims: bufDims, data: k };
      feeds[n.inValue] = { dtype: "float32", dims: bufDims, data: v };
    });
    // Prefill: every slot empty, then the (left-padded) prompt columns.
    const first = new BigInt64Array(B * (maxTotal + L));
    for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) first[b * (maxTotal + L) + maxTotal + t] = mask0[b * L + t] as bigint;
    feeds.attention_mask = { dtype: "int64", dims: [B, maxTotal + L], data: first };
    slotMask = new BigInt64Array(B * (maxTotal + 1));
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) slotMask[b * (maxTotal + 1) + t] = mask0[b * L + t] as bigint;
      slotMask[b * (maxTotal + 1) + maxTotal] = 1n;
    }
  }
  let pools: Float32Array[][] | null = null;
  let logitsBuf: Float32Array | null = null;
  let newKvBuf: Float32Array | null = null;
  // Buffer layout: from the second step on, the same feed and output tensors every step (their
  // arrays are rewritten in place), so nothing is allocated per token and the runtime can reuse
  // its native tensor wrappers.
  let stepFeeds: TensorMap | null = null;
  let stepPre: TensorMap | undefined;
  for (let step = 0; step < maxNew && remaining > 0; step++) {
    let pre: TensorMap | undefined = stepPre;
    if (step > 0 && logitsBuf && !stepPre) {
      pre = { logits: { dtype: "float32", dims: [B, 1, logitsBuf.length / B], data: logitsBuf } };
      if (sig.kvLayout === "buffer") {
        newKvBuf ??= new Float32Array(2 * sig.numLayers * perStep);
        pre[NEW_KV] = { dtype: "float32", dims: [2 * sig.numLayers, B, H, 1, hd], data: newKvBuf };
      }
      if (sig.kvLayout === "hf") {
        pools ??= [0, 1].map(() => Array.from({ length: 2 * sig.numLayers }, () => new Float32Array(cap)));
        const pool = pools[step % 2] as Float32Array[];
        const dims = [B, sig.numKvHeads, curLen, sig.headDim];
        names.forEach((n, l) => {
          (pre as TensorMap)[n.outKey] = { dtype: "float32", dims, data: (pool[2 * l] as Float32Array).subarray(0, perStep * curLen) };
          (pre as TensorMap)[n.outValue] = { dtype: "float32", dims, data: (pool[2 * l + 1] as Float32Array).subarray(0, perStep * curLen) };
        });
      }
    }
    if (caches && step > 0) stepPre = pre;
    const out = await session.run(feeds, outputNames, pre);
    const logits = out.logits as HostTensor;
    if (logits.dtype !== "float32") throw new AutodidactError(`decoder logits are ${logits.dtype}; only float32 is supported`, Code.Unimplemented);
    const [, S, V] = logits.dims as [number, number, number];
    if (step === 0) logitsBuf = new Float32Array(B * V);
    if (caches) {
      // Write the S new entries of every layer at slots [past, past+S): NEW_KV is
      // [2L, B, H, S, hd], layer l's keys at 2l and values at 2l+1; a buffer is [B, H, maxTotal, hd].
      const past = curLen - S;
      const fresh = (out[NEW_KV] as HostTensor).data as Float32Array;
      const run = S * hd;
      for (let l2 = 0; l2 < 2 * sig.numLayers; l2++) {
        const dst = (caches[l2 >> 1] as readonly [Float32Array, Float32Array])[l2 & 1] as Float32Array;
        // Plain loops: at batch 64 these are 2,048 runs of 32 floats per step, and a subarray
        // view per run would cost more than the copy.
        for (let bh = 0; bh < B * H; bh++) {
          const src = (l2 * B * H + bh) * run;
          const at = (bh * maxTotal + past) * hd;
          for (let j = 0; j < run; j++) dst[at + j] = fresh[src + j] as number;
        }
      }
    }
    sampler ??= createSampler(V, req);
    const data = logits.data as Float32Array;
    for (let b = 0; b < B; b++) {
      if (done[b]) {
        stepIds[b] = BigInt(req.padId);
        continue;
      }
      const { id, logprob } = sampler.sample(data, (b * S + (S - 1)) * V, rowRngs[b] as ReturnType<typeof createRng>);
      const row = rows[b] as { tokens: number[]; logprobs: number[]; finishReason: "stop" | "length" };
      row.tokens.push(id);
      row.logprobs.push(logprob);
      stepIds[b] = BigInt(id);
      if (stop.has(id)) {
        row.finishReason = "stop";
        done[b] = 1;
        remaining--;
      }
    }
    if (remaining === 0 || step === maxNew - 1) break;
    // Next step: one token per row; the mask grows by one visible column.
    const newLen = curLen + 1;
    let mask: BigInt64Array;
    if (slotMask) {
      // Slots [0, curLen) are filled now; the last one written by a decoding step becomes visible.
      if (curLen - 1 >= L) for (let b = 0; b < B; b++) slotMask[b * (maxTotal + 1) + curLen - 1] = 1n;
      mask = slotMask;
    } else {
      mask = maskAll.subarray(0, B * newLen);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < L; t++) mask[b * newLen + t] = mask0[b * L + t] as bigint;
        for (let t = L; t < newLen; t++) mask[b * newLen + t] = 1n;
      }
    }
    for (let b = 0; b < B; b++) {
      stepPos[b] = BigInt(nextPos[b] as number);
      nextPos[b] = (nextPos[b] as number) + 1;
    }
    if (caches) {
      // stepIds, stepPos and slotMask were updated in place above.
      stepFeeds ??= {
        ...feeds,
        input_ids: { dtype: "int64", dims: [B, 1], data: stepIds },
        attention_mask: { dtype: "int64", dims: [B, maxTotal + 1], data: slotMask as BigInt64Array },
        ...(sig.hasPositionIds ? { position_ids: { dtype: "int64", dims: [B, 1], data: stepPos } } : {}),
      };
      feeds = stepFeeds;
      curLen = newLen;
      continue;
    }
    const next: TensorMap = { input_ids: { dtype: "int64", dims: [B, 1], data: stepIds.slice() } };
    if (sig.hasAttentionMask) next.attention_mask = { dtype: "int64", dims: [B, slotMask ? maxTotal + 1 : newLen], data: mask.slice() };
    if (sig.hasPositionIds) next.position_ids = { dtype: "int64", dims: [B, 1], data: stepPos.slice() };
    if (sig.hasUseCacheBranch) next.use_cache_branch = { dtype: "bool", dims: [1], data: Uint8Array.of(1) };
    names.forEach((n, l) => {
      if (caches) {
        next[n.inKey] = feeds[n.inKey] as HostTensor;
        next[n.inValue] = feeds[n.inValue] as HostTensor;
      } else {
        next[n.inKey] = out[n.outKey] as HostTensor;
        next[n.inValue] = out[n.outValue] as HostTensor;
      }
    });
    feeds = next;
    curLen = newLen;
  }
  return rows;
}
