import { AutodidactError, Code } from "../../errors/index.js";
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
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

/** Derives the {@link DecoderSignature} from input metadata; InvalidArgument if it does not fit. */
export function decoderSignature(inputs: readonly ValueMeta[], outputs: readonly ValueMeta[]): DecoderSignature {
  const names = new Set(inputs.map((i) => i.name));
  if (!names.has("input_ids")) throw new AutodidactError("decoder has no input_ids input", Code.InvalidArgument);
  if (!outputs.some((o) => o.name === "logits")) throw new AutodidactError("decoder has no logits output", Code.InvalidArgument);
  let layers = 0;
  let heads: number | null = null;
  let hd: number | null = null;
  for (const i of inputs) {
    const m = PAST.exec(i.name);
    if (!m) continue;
    layers = Math.max(layers, Number(m[1]) + 1);
    if (i.dtype !== "float32") throw new AutodidactError(`decoder KV cache ${i.name} is ${i.dtype}; only float32 is supported`, Code.Unimplemented);
    const h = i.shape[1];
    const d = i.shape[3];
    if (i.shape.length !== 4 || typeof h !== "number" || typeof d !== "number") {
      throw new AutodidactError(`decoder input ${i.name} must be [batch, heads, past, head_dim] with fixed heads/head_dim`, Code.InvalidArgument);
    }
    heads = h;
    hd = d;
  }
  for (let l = 0; l < layers; l++) {
    for (const kv of ["key", "value"]) {
      if (!names.has(`past_key_values.${l}.${kv}`)) throw new AutodidactError(`decoder lacks past_key_values.${l}.${kv}`, Code.InvalidArgument);
      if (!outputs.some((o) => o.name === `present.${l}.${kv}`)) throw new AutodidactError(`decoder lacks output present.${l}.${kv}`, Code.InvalidArgument);
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
  };
}
