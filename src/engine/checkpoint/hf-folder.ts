import { access, copyFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { TransformerConfig } from "../model/config.js";
import { parseHfConfig, type HfFamily, type ParseHfConfigOptions } from "../model/hf/config.js";
import { fromHfTensors, toHfTensors, type HfNaming } from "../model/hf/names.js";
import type { Parameters } from "../model/params.js";
import type { HostTensor } from "../runtime/tensor.js";
import { loadTokenizer } from "../tokenizer/hf-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { writeFileAtomic } from "./files.js";
import { encodeSafetensors, readSafetensors } from "./safetensors.js";

/** File names of a Hugging Face model folder. */
export const HF_FILES = {
  config: "config.json",
  weights: "model.safetensors",
  index: "model.safetensors.index.json",
  tokenizer: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
  generation: "generation_config.json",
  specialTokens: "special_tokens_map.json",
} as const;

/** A Hugging Face checkpoint folder read into engine weights. */
export interface HfModel {
  readonly dir: string;
  readonly family: HfFamily;
  readonly modelType: string;
  readonly config: TransformerConfig;
  readonly params: Parameters;
  /** config.json as read. */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  /** generation_config.json when present. */
  readonly generationConfig: Readonly<Record<string, unknown>> | null;
  /** Null when the folder has no tokenizer.json. */
  readonly tokenizer: Tokenizer | null;
  readonly naming: HfNaming;
}

/** Whether a config.json document declares a Hugging Face family the engine imports. */
export function isHfConfig(json: Readonly<Record<string, unknown>>): boolean {
  return typeof json.model_type === "string" && ["gpt2", "llama", "qwen2", "mistral"].includes(json.model_type);
}

/**
 * Reads a Hugging Face checkpoint folder: config.json (unsupported options refused naming the
 * field), `model.safetensors` or the shards listed by `model.safetensors.index.json` (float16 and
 * bfloat16 widened to float32), tokenizer.json and generation_config.json when present. Corrupt
 * files fail with DataLoss naming the file; missing or misshapen tensors with InvalidArgument.
 */
export async function importHfModel(dir: string, options: Omit<ParseHfConfigOptions, "source"> = {}): Promise<HfModel> {
  const configPath = join(dir, HF_FILES.config);
  const hfConfig = (await readJson(configPath, true)) as Record<string, unknown>;
  const parsed = parseHfConfig(hfConfig, { ...options, source: configPath });
  const { tensors, source } = await readWeights(dir);
  const { params, naming } = fromHfTensors(parsed.family, parsed.config, tensors, source);
  const generationConfig = await readJson(join(dir, HF_FILES.generation), false);
  const tokenizer = (await exists(join(dir, HF_FILES.tokenizer))) ? await loadTokenizer(dir) : null;
  if (tokenizer && tokenizer.vocabSize > parsed.config.vocabSize) {
    throw new AutodidactError(`${join(dir, HF_FILES.tokenizer)}: ${tokenizer.vocabSize} ids, more than vocab_size ${parsed.config.vocabSize}`, Code.InvalidArgument);
  }
  return { dir, family: parsed.family, modelType: parsed.modelType, config: parsed.config, params, hfConfig, generationConfig, tokenizer, naming };
}

/** All tensors of a folder's safetensors weights, single-file or sharded. */
async function readWeights(dir: string): Promise<{ tensors: Record<string, HostTensor>; source: string }> {
  const single = join(dir, HF_FILES.weights);
  if (await exists(single)) return { tensors: (await readSafetensors(single)).tensors, source: single };
  const indexPath = join(dir, HF_FILES.index);
  if (!(await exists(indexPath))) {
    const bin = (await exists(join(dir, "pytorch_model.bin"))) ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
    throw new AutodidactError(`${dir}: no ${HF_FILES.weights} or ${HF_FILES.index}${bin}`, Code.NotFound, { details: { file: single } });
  }
  const index = await readJson(indexPath, true);
  const map = (index as { weight_map?: unknown }).weight_map;
  if (!map || typeof map !== "object") throw new AutodidactError(`${indexPath}: no weight_map`, Code.DataLoss, { details: { file: indexPath } });
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  const tensors: Record<string, HostTensor> = {};
  for (const shard of shards) {
    if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) throw new AutodidactError(`${indexPath}: bad shard name ${JSON.stringify(shard)}`, Code.DataLoss);
    Object.assign(tensors, (await readSafetensors(join(dir, shard))).tensors);
  }
  for (const name of Object.keys(map as Record<string, unknown>)) {
    if (!tensors[name]) throw new AutodidactError(`${indexPath}: tensor ${name} is not in its shard ${String((map as Record<string, unknown>)[name])}`, Code.DataLoss, { details: { file: indexPath } });
  }
  return { tensors, source: indexPath };
}

/** What {@link saveHfModel} writes. */
export interface SaveHfModelOptions {
  readonly family: HfFamily;
  readonly config: TransformerConfig;
  readonly params: Parameters;
  /** config.json to write (the imported one, unchanged). */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly naming?: HfNaming;
  /** A folder to copy tokenizer and generation files from (the imported one). */
  readonly copyFrom?: string;
  /** String metadata for the safetensors header (lineage, version…). */
  readonly metadata?: Record<string, string>;
}

/**
 * Writes engine weights back as a Hugging Face folder with the family's original tensor names
 * (e.g. after merging a LoRA adapter): config.json, model.safetensors, and the tokenizer and
 * generation files of `copyFrom`.
 */
export async function saveHfModel(dir: string, o: SaveHfModelOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors = toHfTensors(o.family, o.config, o.params, o.naming);
  await writeFileAtomic(join(dir, HF_FILES.weights), encodeSafetensors(tensors, { ...o.metadata, format: "pt" }));
  await writeFileAtomic(join(dir, HF_FILES.config), JSON.stringify(o.hfConfig, null, 2));
  if (o.copyFrom === undefined) return;
  for (const f of [HF_FILES.tokenizer, HF_FILES.tokenizerConfig, HF_FILES.generation, HF_FILES.specialTokens]) {
    if (await exists(join(o.copyFrom, f))) await copyFile(join(o.copyFrom, f), join(dir, f));
  }
}

async function readJson(path: string, required: boolean): Promise<Record<string, unknown> | null> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (cause) {
    if (!required) return null;
    throw new AutodidactError(`${path} not found`, Code.NotFound, { cause, details: { file: path } });
  }
  try {
    const v = JSON.parse(raw.toString("utf8")) as unknown;
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (cause) {
    throw new AutodidactError(`${path} is not valid JSON: ${(cause as Error).message}`, Code.DataLoss, { cause, details: { file: path } });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
