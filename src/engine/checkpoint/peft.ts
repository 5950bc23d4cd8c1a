import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { TransformerConfig } from "../model/config.js";
import { loraSites } from "../model/lora-sites.js";
import type { HostTensor } from "../runtime/tensor.js";
import { MANIFEST_FILE, readManifest, readVerified, writeCheckpointFiles, type Manifest } from "./files.js";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.js";

/** File names of a PEFT LoRA adapter folder. */
export const ADAPTER_FILES = { config: "adapter_config.json", weights: "adapter_model.safetensors" } as const;

/** The subset of PEFT's `adapter_config.json` we write and read. */
export interface PeftLoraConfig {
  readonly peft_type: "LORA";
  readonly task_type: "CAUSAL_LM";
  readonly r: number;
  readonly lora_alpha: number;
  readonly lora_dropout: number;
  readonly target_modules: readonly string[];
  readonly base_model_name_or_path: string;
  readonly bias: "none";
  /** True for GPT-2, whose Conv1D weights are [in, out]; adapters' shapes are the same either way. */
  readonly fan_in_fan_out: boolean;
  readonly inference_mode: boolean;
}

/** LoRA adapter tensors keyed by PEFT names (`base_model.model.<module>.lora_A.weight`). */
export type AdapterTensors = Record<string, HostTensor<"float32">>;

/** What {@link saveLoraAdapter} writes. */
export interface SaveLoraOptions {
  readonly adapters: AdapterTensors;
  readonly rank: number;
  readonly alpha: number;
  readonly targetModules: readonly string[];
  readonly dropout?: number;
  /** The base checkpoint this adapter applies to (a path or a version id). */
  readonly baseModel: string;
  readonly metadata?: Record<string, string>;
  /** PEFT's flag for Conv1D bases (GPT-2); default false. */
  readonly fanInFanOut?: boolean;
}

/** Builds the adapter_config.json document. */
export function peftConfig(o: Pick<SaveLoraOptions, "rank" | "alpha" | "targetModules" | "dropout" | "baseModel" | "fanInFanOut">): PeftLoraConfig {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: o.rank,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout ?? 0,
    target_modules: [...o.targetModules],
    base_model_name_or_path: o.baseModel,
    bias: "none",
    fan_in_fan_out: o.fanInFanOut ?? false,
    inference_mode: true,
  };
}

/** The adapter names and shapes a base config + LoRA settings require (A: [r, in], B: [out, r]). */
export function expectedAdapterShapes(c: TransformerConfig, rank: number, targetModules: readonly string[]): Map<string, readonly number[]> {
  const out = new Map<string, readonly number[]>();
  for (const s of loraSites(c, targetModules)) {
    out.set(s.a, [rank, s.in]);
    out.set(s.b, [s.outs.reduce((n, o) => n + o, 0), rank]);
  }
  return out;
}

/** Saves a LoRA adapter in the PEFT layout plus our manifest.json. */
export async function saveLoraAdapter(dir: string, o: SaveLoraOptions): Promise<Manifest> {
  if (!(Number.isInteger(o.rank) && o.rank > 0)) throw new AutodidactError(`LoRA rank must be a positive integer, got ${o.rank}`, Code.InvalidArgument);
  for (const [name, t] of Object.entries(o.adapters)) {
    if (!/\.lora_[AB]\.weight$/.test(name)) throw new AutodidactError(`adapter tensor "${name}" is not a PEFT lora_A/lora_B name`, Code.InvalidArgument);
    if (t.dtype !== "float32") throw new AutodidactError(`adapter tensor "${name}" is ${t.dtype}, expected float32`, Code.InvalidArgument);
  }
  return writeCheckpointFiles(
    dir,
    "lora",
    {
      [ADAPTER_FILES.config]: JSON.stringify(peftConfig(o), null, 2),
      [ADAPTER_FILES.weights]: encodeSafetensors(o.adapters, { format: "pt", ...(o.metadata ?? {}) }),
    },
    o.metadata,
  );
}

/** A loaded adapter. */
export interface LoadedLoraAdapter {
  readonly config: PeftLoraConfig;
  readonly adapters: AdapterTensors;
  /** Null for folders without our manifest (e.g. adapters trained elsewhere). */
  readonly manifest: Manifest | null;
}

/**
 * Loads a PEFT adapter folder. Files are verified against manifest.json when it exists (DataLoss
 * on mismatch); with `base`, every expected tensor must be present with the right shape
 * (InvalidArgument naming the file and tensor).
 */
export async function loadLoraAdapter(dir: string, base?: TransformerConfig): Promise<LoadedLoraAdapter> {
  let manifest: Manifest | null = null;
  try {
    await access(join(dir, MANIFEST_FILE));
    manifest = await readManifest(dir);
  } catch (e) {
    if (e instanceof AutodidactError) throw e;
  }
  const read = async (name: string): Promise<Uint8Array> => {
    if (manifest) return readVerified(dir, name, manifest);
    try {
      return new Uint8Array(await readFile(join(dir, name)));
    } catch (cause) {
      throw new AutodidactError(`cannot read ${join(dir, name)}`, Code.NotFound, { cause, details: { file: join(dir, name) } });
    }
  };
  const configPath = join(dir, ADAPTER_FILES.config);
  let config: PeftLoraConfig;
  try {
    config = JSON.parse(Buffer.from(await read(ADAPTER_FILES.config)).toString("utf8")) as PeftLoraConfig;
  } catch (e) {
    if (e instanceof AutodidactError) throw e;
    throw new AutodidactError(`${configPath} is not valid JSON`, Code.DataLoss, { cause: e, details: { file: configPath } });
  }
  if (config.peft_type !== "LORA" || !(config.r > 0) || !Array.isArray(config.target_modules)) {
    throw new AutodidactError(`${configPath}: not a LoRA adapter config (peft_type ${String(config.peft_type)}, r ${String(config.r)})`, Code.InvalidArgument, {
      details: { file: configPath },
    });
  }
  const weightsPath = join(dir, ADAPTER_FILES.weights);
  const st = decodeSafetensors(await read(ADAPTER_FILES.weights), weightsPath);
  if (base) {
    const expected = expectedAdapterShapes(base, config.r, config.target_modules);
    for (const [name, shape] of expected) {
      const t = st.tensors[name];
      if (!t) throw new AutodidactError(`${weightsPath}: missing adapter tensor ${name}`, Code.InvalidArgument, { details: { file: weightsPath } });
      if (t.dims.length !== shape.length || t.dims.some((d, i) => d !== shape[i])) {
        throw new AutodidactError(`${weightsPath}: ${name} has shape [${t.dims.join(",")}], base config and r=${config.r} need [${shape.join(",")}]`, Code.InvalidArgument, {
          details: { file: weightsPath },
        });
      }
    }
    const extra = Object.keys(st.tensors).filter((k) => !expected.has(k));
    if (extra.length > 0) throw new AutodidactError(`${weightsPath}: unexpected tensors ${extra.slice(0, 3).join(", ")}`, Code.InvalidArgument, { details: { file: weightsPath } });
  }
  for (const [name, t] of Object.entries(st.tensors)) {
    if (t.dtype !== "float32") throw new AutodidactError(`${weightsPath}: ${name} is ${t.dtype}, expected float32`, Code.InvalidArgument, { details: { file: weightsPath } });
  }
  return { config, adapters: st.tensors as AdapterTensors, manifest };
}
