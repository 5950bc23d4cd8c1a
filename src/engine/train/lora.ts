import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { TransformerConfig } from "../model/config.js";
import { loraSites } from "../model/lora-sites.js";
import type { Parameters } from "../model/params.js";
import { createRng } from "../random.js";
import type { HostTensor } from "../runtime/tensor.js";
import { validateLora, type LoraOptions } from "./graph.js";

/** LoRA adapter tensors keyed by their PEFT names (`base_model.model.<module>.lora_A.weight`). */
export type Adapters = Record<string, HostTensor<"float32">>;

/** One adapted site: its base weight(s) and adapter tensor names, with shapes. */
export interface AdaptedLinear {
  /** The base weight (the first of a packed site such as GPT-2's c_attn). */
  readonly base: string;
  /** Every base weight the site covers, in output-row order. */
  readonly bases: readonly string[];
  readonly a: string;
  readonly b: string;
  /** Output rows (all bases) and input width: A is [r, in], B is [out, r]. */
  readonly out: number;
  readonly in: number;
}

/** The sites a LoRA config adapts, in parameter order (PEFT module matching, see lora-sites). */
export function adaptedLinears(c: TransformerConfig, lora: LoraOptions): AdaptedLinear[] {
  validateLora(lora);
  return loraSites(c, lora.targetModules).map((s) => ({ base: s.bases[0]!, bases: s.bases, a: s.a, b: s.b, out: s.outs.reduce((n, o) => n + o, 0), in: s.in }));
}

/**
 * Fresh adapters as PEFT initializes them: A ~ U(−1/√in, 1/√in) (kaiming-uniform with a=√5),
 * B = 0, so the adapted model starts exactly equal to the base. Seeded per tensor name.
 */
export function initLoraAdapters(c: TransformerConfig, lora: LoraOptions, seed: number | string): Adapters {
  const rng = createRng(`lora:${seed}`);
  const adapters: Adapters = {};
  for (const l of adaptedLinears(c, lora)) {
    const a = new Float32Array(lora.rank * l.in);
    const r = rng.fork(l.a);
    const bound = 1 / Math.sqrt(l.in);
    for (let i = 0; i < a.length; i++) a[i] = (2 * r.next() - 1) * bound;
    adapters[l.a] = { dtype: "float32", dims: [lora.rank, l.in], data: a };
    adapters[l.b] = { dtype: "float32", dims: [l.out, lora.rank], data: new Float32Array(l.out * lora.rank) };
  }
  return adapters;
}

/** Checks that adapters have exactly the tensors and shapes a LoRA config needs. */
export function checkAdapters(c: TransformerConfig, lora: LoraOptions, adapters: Readonly<Record<string, { readonly dims: readonly number[] }>>): void {
  const want = new Map<string, readonly number[]>();
  for (const l of adaptedLinears(c, lora)) {
    want.set(l.a, [lora.rank, l.in]);
    want.set(l.b, [l.out, lora.rank]);
  }
  for (const [name, dims] of want) {
    const t = adapters[name];
    if (t === undefined) throw new AutodidactError(`adapter: missing tensor ${name}`, Code.InvalidArgument);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new AutodidactError(`adapter: ${name} has shape [${t.dims.join(",")}], needs [${dims.join(",")}]`, Code.InvalidArgument);
    }
  }
  const extra = Object.keys(adapters).filter((k) => !want.has(k));
  if (extra.length > 0) throw new AutodidactError(`adapter: unexpected tensors ${extra.slice(0, 3).join(", ")}`, Code.InvalidArgument);
}

/**
 * Folds adapters into the base: W' = W + (alpha/r)·B·A for every adapted [out, in] weight.
 * It exists for export: a merged model serves without adapter inputs and with no extra cost.
 */
export function mergeLora(c: TransformerConfig, params: Parameters, adapters: Readonly<Record<string, HostTensor>>, lora: LoraOptions): Parameters {
  checkAdapters(c, lora, adapters);
  const scale = lora.alpha / lora.rank;
  const r = lora.rank;
  const merged: Parameters = { ...params };
  for (const l of adaptedLinears(c, lora)) {
    const a = adapters[l.a]!.data as ArrayLike<number>;
    const b = adapters[l.b]!.data as ArrayLike<number>;
    let first = 0; // the site's output row where this base starts
    for (const base of l.bases) {
      const w = params[base];
      if (w === undefined) throw new AutodidactError(`merge: base weight ${base} missing`, Code.InvalidArgument);
      const out = Float32Array.from(w.data);
      const rows = w.dims[0] as number;
      for (let i = 0; i < rows; i++) {
        for (let k = 0; k < r; k++) {
          const bik = scale * b[(first + i) * r + k]!;
          if (bik === 0) continue;
          const row = i * l.in;
          const arow = k * l.in;
          for (let j = 0; j < l.in; j++) out[row + j]! += bik * a[arow + j]!;
        }
      }
      merged[base] = { dtype: "float32", dims: [...w.dims], data: out };
      first += rows;
    }
  }
  return merged;
}
