import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { ModelSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { decoderSignature, emptyCacheDims, kvNames } from "./signature.js";
import { leftPad } from "./left-pad.js";

/** Teacher-forced scoring request: log-probabilities of given continuations after given prompts. */
export interface ScoreRequest {
  readonly prompts: readonly (readonly number[])[];
  /** One continuation per prompt (may be empty). */
  readonly continuations: readonly (readonly number[])[];
  readonly padId: number;
  readonly maxLength?: number;
}

/** Per-row scores. */
export interface ScoredRow {
  /** log p(continuation[i] | prompt, continuation[<i]) for each continuation token. */
  readonly logprobs: number[];
  /** Sum of `logprobs`. */
  readonly total: number;
}

/**
 * Scores continuations in one batched pass of the decoder (left padded, empty KV cache): what
 * critics use to judge a sample by the model's own likelihood and the monitor uses for perplexity
 * and calibration on real data.
 */
export async function scoreBatch(session: ModelSession, req: ScoreRequest): Promise<ScoredRow[]> {
  const sig = decoderSignature(session.inputs, session.outputs);
  const B = req.prompts.length;
  if (req.continuations.length !== B) throw new AutodidactError(`${B} prompts but ${req.continuations.length} continuations`, Code.InvalidArgument);
  if (B === 0) return [];
  const seqs = req.prompts.map((p, i) => [...p, ...(req.continuations[i] as readonly number[])]);
  if (req.prompts.some((p) => p.length === 0)) throw new AutodidactError("every prompt needs at least one token", Code.InvalidArgument);
  const L = Math.max(...seqs.map((s) => s.length));
  if (req.maxLength !== undefined && L > req.maxLength) {
    throw new AutodidactError(`sequence of ${L} tokens exceeds the model's context of ${req.maxLength}`, Code.InvalidArgument);
  }
  const { ids, mask, pos } = leftPad(seqs, L, req.padId);
  const feeds: TensorMap = { input_ids: { dtype: "int64", dims: [B, L], data: ids } };
  if (sig.hasAttentionMask) feeds.attention_mask = { dtype: "int64", dims: [B, L], data: mask };
  if (sig.hasPositionIds) feeds.position_ids = { dtype: "int64", dims: [B, L], data: pos };
  if (sig.hasUseCacheBranch) feeds.use_cache_branch = { dtype: "bool", dims: [1], data: Uint8Array.of(0) };
  for (let l = 0; l < sig.numLayers; l++) {
    const n = kvNames(sig, l);
    feeds[n.inKey] = { dtype: "float32", dims: emptyCacheDims(sig, B), data: new Float32Array(0) };
    feeds[n.inValue] = { dtype: "float32", dims: emptyCacheDims(sig, B), data: new Float32Array(0) };
  }
  const out = await session.run(feeds, ["logits"]);
  const logits = out.logits as HostTensor;
  if (logits.dtype !== "float32") throw new AutodidactError(`decoder logits are ${logits.dtype}; only float32 is supported`, Code.Unimplemented);
  const V = logits.dims[2] as number;
  const data = logits.data as Float32Array;
  return seqs.map((s, b) => {
    const off = L - s.length;
    const p = (req.prompts[b] as readonly number[]).length;
    const logprobs: number[] = [];
    let total = 0;
    for (let k = p; k < s.length; k++) {
      // Token s[k] is predicted by the logits at position k-1.
      const base = (b * L + off + k - 1) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, data[base + v] as number);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp((data[base + v] as number) - max);
      const lp = (data[base + (s[k] as number)] as number) - max - Math.log(sum);
      logprobs.push(lp);
      total += lp;
    }
    return { logprobs, total };
  });
}
