import { AutodidactError, Code } from "../../../platform/errors/index.js";
import type { HostTensor } from "../../runtime/tensor.js";
import type { TransformerConfig } from "../config.js";
import { checkParameters, paramNames, type Parameters } from "../params.js";
import type { HfFamily } from "./config.js";

/**
 * Tensor names of Hugging Face checkpoints ↔ the engine's parameter names. The engine's names
 * are the Llama family's, so Llama/Qwen2/Mistral/SmolLM tensors map one to one; GPT-2's Conv1D
 * weights ([in, out]) are transposed and its packed `c_attn` split into q, k, v (and packed back
 * on export), so one graph serves both families.
 */

/** How a checkpoint spelled its names, so export writes them back the same way. */
export interface HfNaming {
  /** GPT-2 checkpoints saved from GPT2Model have no `transformer.` prefix; GPT2LMHeadModel's do. */
  readonly prefix: string;
}

/** Buffers some checkpoints store that are not parameters (causal masks, rotary inverse frequencies). */
const IGNORED = [/\.attn\.(masked_)?bias$/, /\.rotary_emb\.inv_freq$/];

/** Hugging Face tensors of one family → engine parameters (checked against the config). */
export function fromHfTensors(family: HfFamily, c: TransformerConfig, tensors: Readonly<Record<string, HostTensor>>, source = "checkpoint"): { params: Parameters; naming: HfNaming } {
  const kept: Record<string, HostTensor<"float32">> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (IGNORED.some((re) => re.test(name))) continue;
    if (t.dtype !== "float32") throw new AutodidactError(`${source}: tensor ${name} is ${t.dtype}, expected a float type`, Code.InvalidArgument, { details: { file: source } });
    kept[name] = t as HostTensor<"float32">;
  }
  // Tied heads are the embedding; a saved copy is redundant.
  if (c.tieEmbeddings) delete kept["lm_head.weight"];
  if (family === "llama") {
    checkParameters(c, kept, source);
    return { params: kept, naming: { prefix: "" } };
  }
  const prefix = Object.keys(kept).some((k) => k.startsWith("transformer.")) ? "transformer." : "";
  const take = (name: string): HostTensor<"float32"> => {
    const t = kept[prefix + name];
    if (!t) throw new AutodidactError(`${source}: missing tensor ${prefix + name}`, Code.InvalidArgument, { details: { file: source } });
    delete kept[prefix + name];
    return t;
  };
  const params = gpt2Params(c, take);
  const extra = Object.keys(kept);
  if (extra.length > 0) throw new AutodidactError(`${source}: unexpected tensors ${extra.slice(0, 5).join(", ")}`, Code.InvalidArgument, { details: { file: source } });
  checkParameters(c, params, source);
  return { params, naming: { prefix } };
}

/** Engine parameters → the family's Hugging Face tensor names (the inverse of {@link fromHfTensors}). */
export function toHfTensors(family: HfFamily, c: TransformerConfig, params: Parameters, naming: HfNaming = { prefix: family === "gpt2" ? "transformer." : "" }): Record<string, HostTensor<"float32">> {
  checkParameters(c, params);
  if (family === "llama") return { ...params };
  const p = naming.prefix;
  const out: Record<string, HostTensor<"float32">> = {};
  const get = (name: string): HostTensor<"float32"> => params[name] as HostTensor<"float32">;
  out[`${p}wte.weight`] = get(paramNames.embed);
  out[`${p}wpe.weight`] = get(paramNames.positions);
  out[`${p}ln_f.weight`] = get(paramNames.finalNorm);
  out[`${p}ln_f.bias`] = get(paramNames.finalNormBias);
  for (let i = 0; i < c.numLayers; i++) {
    const h = `${p}h.${i}.`;
    for (const w of ["weight", "bias"] as const) {
      out[`${h}ln_1.${w}`] = get(paramNames.inputNorm(i, w));
      out[`${h}ln_2.${w}`] = get(paramNames.postAttnNorm(i, w));
    }
    const qkv = (["q_proj", "k_proj", "v_proj"] as const).map((m) => get(paramNames.attn(i, m)));
    out[`${h}attn.c_attn.weight`] = transpose2d(concatRows(qkv));
    out[`${h}attn.c_attn.bias`] = concatRows((["q_proj", "k_proj", "v_proj"] as const).map((m) => get(paramNames.attn(i, m, "bias"))));
    out[`${h}attn.c_proj.weight`] = transpose2d(get(paramNames.attn(i, "o_proj")));
    out[`${h}attn.c_proj.bias`] = get(paramNames.attn(i, "o_proj", "bias"));
    out[`${h}mlp.c_fc.weight`] = transpose2d(get(paramNames.mlp(i, "up_proj")));
    out[`${h}mlp.c_fc.bias`] = get(paramNames.mlp(i, "up_proj", "bias"));
    out[`${h}mlp.c_proj.weight`] = transpose2d(get(paramNames.mlp(i, "down_proj")));
    out[`${h}mlp.c_proj.bias`] = get(paramNames.mlp(i, "down_proj", "bias"));
  }
  if (!c.tieEmbeddings) out["lm_head.weight"] = get(paramNames.lmHead);
  return out;
}

function gpt2Params(c: TransformerConfig, take: (name: string) => HostTensor<"float32">): Parameters {
  const params: Parameters = {
    [paramNames.embed]: take("wte.weight"),
    [paramNames.positions]: take("wpe.weight"),
    [paramNames.finalNorm]: take("ln_f.weight"),
    [paramNames.finalNormBias]: take("ln_f.bias"),
  };
  const D = c.hiddenSize;
  for (let i = 0; i < c.numLayers; i++) {
    const h = `h.${i}.`;
    for (const w of ["weight", "bias"] as const) {
      params[paramNames.inputNorm(i, w)] = take(`${h}ln_1.${w}`);
      params[paramNames.postAttnNorm(i, w)] = take(`${h}ln_2.${w}`);
    }
    const qkv = transpose2d(take(`${h}attn.c_attn.weight`)); // [3D, D]
    const qkvBias = take(`${h}attn.c_attn.bias`);
    (["q_proj", "k_proj", "v_proj"] as const).forEach((m, k) => {
      params[paramNames.attn(i, m)] = { dtype: "float32", dims: [D, D], data: qkv.data.slice(k * D * D, (k + 1) * D * D) };
      params[paramNames.attn(i, m, "bias")] = { dtype: "float32", dims: [D], data: qkvBias.data.slice(k * D, (k + 1) * D) };
    });
    params[paramNames.attn(i, "o_proj")] = transpose2d(take(`${h}attn.c_proj.weight`));
    params[paramNames.attn(i, "o_proj", "bias")] = take(`${h}attn.c_proj.bias`);
    params[paramNames.mlp(i, "up_proj")] = transpose2d(take(`${h}mlp.c_fc.weight`));
    params[paramNames.mlp(i, "up_proj", "bias")] = take(`${h}mlp.c_fc.bias`);
    params[paramNames.mlp(i, "down_proj")] = transpose2d(take(`${h}mlp.c_proj.weight`));
    params[paramNames.mlp(i, "down_proj", "bias")] = take(`${h}mlp.c_proj.bias`);
  }
  return params;
}

/** [r, c] → [c, r] (Conv1D weights are the transpose of Linear ones). */
export function transpose2d(t: HostTensor<"float32">): HostTensor<"float32"> {
  const [r, c] = t.dims as [number, number];
  const out = new Float32Array(r * c);
  const src = t.data;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j] as number;
  return { dtype: "float32", dims: [c, r], data: out };
}

/** Stacks tensors along their first axis. */
function concatRows(ts: readonly HostTensor<"float32">[]): HostTensor<"float32"> {
  const n = ts.reduce((s, t) => s + t.data.length, 0);
  const out = new Float32Array(n);
  let off = 0;
  for (const t of ts) {
    out.set(t.data, off);
    off += t.data.length;
  }
  const rows = ts.reduce((s, t) => s + (t.dims[0] as number), 0);
  return { dtype: "float32", dims: [rows, ...ts[0]!.dims.slice(1)], data: out };
}
