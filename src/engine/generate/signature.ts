import { AutodidactError, Code } from "../../platform/errors/index.js";
import { NEW_KV } from "../model/transformer.js";
import type { ValueMeta } from "../runtime/tensor.js";

/**
 * What a decoder with the Hugging Face ONNX signature looks like from the outside: how many
 * layers of KV cache, their head count and size, and which optional inputs it takes. Read from the
 * session's input metadata so our models and optimum-exported ones run through the same loop.
 */
export interface DecoderSignature {
  readonly numLayers: number;
  /** KV heads (may be fewer than query heads in GQA models). */
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly hasPositionIds: boolean;
  readonly hasAttentionMask: boolean;
  /** Merged optimum decoders take a bool `use_cache_branch`. */
  readonly hasUseCacheBranch: boolean;
  readonly kvDtype: "float32";
  /**
   * `hf`: `past_key_values.{i}.*` [B,H,past,hd] in, `present.{i}.*` out (optimum and ours).
   * `buffer`: `cache.{i}.*` [B,H,capacity,hd] in (the caller's whole fixed-capacity buffers,
   * `attention_mask` marks the filled slots), all new entries in one `new_kv` output
   * [2·layers, B, H, S, hd] (our fast graph; layer l's keys at 2l, values at 2l+1).
   */
  readonly kvLayout: "hf" | "buffer";
}

/**
 * Input and output names of layer `l`'s cache in a signature (buffer: both outputs are the
 * shared `new_kv`, see {@link DecoderSignature.kvLayout}).
 */
export function kvNames(sig: DecoderSignature, l: number): { inKey: string; inValue: string; outKey: string; outValue: string } {
  return sig.kvLayout === "hf"
    ? { inKey: `past_key_values.${l}.key`, inValue: `past_key_values.${l}.value`, outKey: `present.${l}.key`, outValue: `present.${l}.value` }
    : { inKey: `cache.${l}.key`, inValue: `cache.${l}.value`, outKey: NEW_KV, outValue: NEW_KV };
}


/** Dims of an empty (past = 0) cache input for a batch. */
export function emptyCacheDims(sig: DecoderSignature, batch: number): number[] {
  return [batch, sig.numKvHeads, 0, sig.headDim];
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const CACHE = /^cache\.(\d+)\.(key|value)$/;

/** Derives the {@link DecoderSignature} from input metadata; InvalidArgument if it does not fit. */
export function decoderSignature(inputs: readonly ValueMeta[], outputs: readonly ValueMeta[]): DecoderSignature {
  const names = new Set(inputs.map((i) => i.name));
  if (!names.has("input_ids")) throw new AutodidactError("decoder has no input_ids input", Code.InvalidArgument);
  if (!outputs.some((o) => o.name === "logits")) throw new AutodidactError("decoder has no logits output", Code.InvalidArgument);
  const kvLayout: DecoderSignature["kvLayout"] = inputs.some((i) => CACHE.test(i.name)) ? "buffer" : "hf";
  const pattern = kvLayout === "hf" ? PAST : CACHE;
  let layers = 0;
  let heads: number | null = null;
  let hd: number | null = null;
  for (const i of inputs) {
    const m = pattern.exec(i.name);
    if (!m) continue;
    layers = Math.max(layers, Number(m[1]) + 1);
    if (i.dtype !== "float32") throw new AutodidactError(`decoder KV cache ${i.name} is ${i.dtype}; only float32 is supported`, Code.Unimplemented);
    const h = i.shape[1];
    const d = i.shape[3];
    if (i.shape.length !== 4 || typeof h !== "number" || typeof d !== "number") {
      const layout = kvLayout === "hf" ? "[batch, heads, past, head_dim]" : "[batch, heads, capacity, head_dim]";
      throw new AutodidactError(`decoder input ${i.name} must be ${layout} with fixed heads/head_dim`, Code.InvalidArgument);
    }
    heads = h;
    hd = d;
  }
  for (let l = 0; l < layers; l++) {
    for (const kv of ["key", "value"]) {
      const inName = kvLayout === "hf" ? `past_key_values.${l}.${kv}` : `cache.${l}.${kv}`;
      const outName = kvLayout === "hf" ? `present.${l}.${kv}` : NEW_KV;
      if (!names.has(inName)) throw new AutodidactError(`decoder lacks ${inName}`, Code.InvalidArgument);
      if (!outputs.some((o) => o.name === outName)) throw new AutodidactError(`decoder lacks output ${outName}`, Code.InvalidArgument);
    }
  }
  if (layers === 0 || heads === null || hd === null) throw new AutodidactError("decoder has no past_key_values inputs (no KV cache)", Code.InvalidArgument);
  return {
    numLayers: layers,
    numKvHeads: heads,
    headDim: hd,
    hasPositionIds: names.has("position_ids"),
    hasAttentionMask: names.has("attention_mask"),
    hasUseCacheBranch: names.has("use_cache_branch"),
    kvDtype: "float32",
    kvLayout,
  };
}
