import { AutodidactError, Code } from "../../errors/index.js";
import { createRng } from "../random.js";
import type { ModelSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { createSampler, type SamplingOptions } from "./sampling.js";
import { decoderSignature } from "./signature.js";

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

/**
 * Batched autoregressive decoding with a KV cache through a decoder with the HF ONNX signature:
 * left-pads prompts, prefills once, then feeds one token per row per step, reusing the `present`
 * tensors as the next `past`. Runs wherever the session lives (call it inside a worker).
 */
export async function decodeBatch(session: ModelSession, req: DecodeRequest): Promise<DecodedRow[]> {
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
  const rng = createRng(`generate:${req.seed ?? 0}`);
  const rowRngs = req.prompts.map((_, i) => rng.fork(i));

  // Prefill inputs (left padded).
  const ids = new BigInt64Array(B * L);
  const mask0 = new BigInt64Array(B * L);
  const pos0 = new BigInt64Array(B * L);
  const nextPos = new Array<number>(B).fill(0);
  req.prompts.forEach((p, b) => {
    const off = L - p.length;
    for (let t = 0; t < L; t++) {
      const real = t >= off;
      ids[b * L + t] = BigInt(real ? (p[t - off] as number) : req.padId);
      mask0[b * L + t] = real ? 1n : 0n;
      pos0[b * L + t] = real ? BigInt(t - off) : 0n;
    }
    nextPos[b] = p.length;
  });

  const maxTotal = L + maxNew;
  // Attention mask for every step, as one buffer; step t uses a prefix view.
  const maskAll = new BigInt64Array(B * maxTotal);
  let feeds: TensorMap = {
    input_ids: { dtype: "int64", dims: [B, L], data: ids },
  };
  if (sig.hasAttentionMask) feeds.attention_mask = { dtype: "int64", dims: [B, L], data: mask0 };
  if (sig.hasPositionIds) feeds.position_ids = { dtype: "int64", dims: [B, L], data: pos0 };
  if (sig.hasUseCacheBranch) feeds.use_cache_branch = { dtype: "bool", dims: [1], data: Uint8Array.of(0) };
  for (let l = 0; l < sig.numLayers; l++) {
    for (const kv of ["key", "value"]) {
      feeds[`past_key_values.${l}.${kv}`] = { dtype: "float32", dims: [B, sig.numKvHeads, 0, sig.headDim], data: new Float32Array(0) };
    }
  }
  const outputNames = ["logits"];
  for (let l = 0; l < sig.numLayers; l++) outputNames.push(`present.${l}.key`, `present.${l}.value`);

  let sampler: ReturnType<typeof createSampler> | null = null;
  const done = new Uint8Array(B);
  let remaining = B;
  let curLen = L;
  const stepIds = new BigInt64Array(B);
  const stepPos = new BigInt64Array(B);
  for (let step = 0; step < maxNew && remaining > 0; step++) {
    const out = await session.run(feeds, outputNames);
    const logits = out.logits as HostTensor;
    if (logits.dtype !== "float32") throw new AutodidactError(`decoder logits are ${logits.dtype}; only float32 is supported`, Code.Unimplemented);
    const [, S, V] = logits.dims as [number, number, number];
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
    const mask = maskAll.subarray(0, B * newLen);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) mask[b * newLen + t] = mask0[b * L + t] as bigint;
      for (let t = L; t < newLen; t++) mask[b * newLen + t] = 1n;
      stepPos[b] = BigInt(nextPos[b] as number);
      nextPos[b] = (nextPos[b] as number) + 1;
    }
    const next: TensorMap = { input_ids: { dtype: "int64", dims: [B, 1], data: stepIds.slice() } };
    if (sig.hasAttentionMask) next.attention_mask = { dtype: "int64", dims: [B, newLen], data: mask.slice() };
    if (sig.hasPositionIds) next.position_ids = { dtype: "int64", dims: [B, 1], data: stepPos.slice() };
    if (sig.hasUseCacheBranch) next.use_cache_branch = { dtype: "bool", dims: [1], data: Uint8Array.of(1) };
    for (let l = 0; l < sig.numLayers; l++) {
      next[`past_key_values.${l}.key`] = out[`present.${l}.key`] as HostTensor;
      next[`past_key_values.${l}.value`] = out[`present.${l}.value`] as HostTensor;
    }
    feeds = next;
    curLen = newLen;
  }
  return rows;
}
