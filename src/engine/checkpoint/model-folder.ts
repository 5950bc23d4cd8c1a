import { access, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { serialize } from "../graph/serialize.js";
import { createTransformerConfig, kvHeads, type TransformerConfig } from "../model/config.js";
import type { HfFamily } from "../model/hf/config.js";
import type { HfNaming } from "../model/hf/names.js";
import { checkParameters, type Parameters } from "../model/params.js";
import { buildServingGraph } from "../model/transformer.js";
import { tokenizerFromJson } from "../tokenizer/hf-tokenizer.js";
import { loadTokenizer } from "../tokenizer/hf-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { readManifest, readVerified, writeCheckpointFiles, type Manifest, MANIFEST_FILE } from "./files.js";
import { HF_FILES, importHfModel, isHfConfig } from "./hf-folder.js";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.js";

/** File names of a model folder (the Hugging Face layout plus our manifest). */
export const MODEL_FILES = {
  config: "config.json",
  tokenizer: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
  weights: "model.safetensors",
  onnx: "onnx/model.onnx",
  manifest: MANIFEST_FILE,
} as const;

/** `model_type` our models declare in config.json. */
export const MODEL_TYPE = "autodidact";

/** Hugging Face `hidden_act` names of the engine's activations. */
const HF_ACTIVATIONS: Record<TransformerConfig["activation"], string> = { gelu: "gelu", gelu_tanh: "gelu_pytorch_tanh", silu: "silu" };

/**
 * Hugging Face-style config.json for a transformer config: the standard keys other tools read,
 * plus an `autodidact` section holding our exact config (the source of truth on load).
 */
export function toHfConfig(c: TransformerConfig, tokenizer?: Tokenizer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: MODEL_TYPE,
    architectures: ["AutodidactForCausalLM"],
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: kvHeads(c),
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositions,
    hidden_act: HF_ACTIVATIONS[c.activation],
    [c.norm === "rmsnorm" ? "rms_norm_eps" : "layer_norm_eps"]: c.normEps,
    ...(c.positional === "rotary" ? { rope_theta: c.ropeTheta } : {}),
    tie_word_embeddings: c.tieEmbeddings,
    torch_dtype: "float32",
    ...(tokenizer ? { bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId } : {}),
    autodidact: { format: 1, transformer: c, ...extra },
  };
}

/** Reads our TransformerConfig back out of a config.json document (InvalidArgument if absent/bad). */
export function fromHfConfig(json: Record<string, unknown>, source: string = MODEL_FILES.config): TransformerConfig {
  const section = json.autodidact as { transformer?: Partial<TransformerConfig> } | undefined;
  if (!section?.transformer) throw new AutodidactError(`${source} has no autodidact.transformer section`, Code.InvalidArgument, { details: { file: source } });
  try {
    return createTransformerConfig(section.transformer as TransformerConfig);
  } catch (e) {
    throw new AutodidactError(`${source}: ${AutodidactError.from(e).rawMessage}`, Code.InvalidArgument, { cause: e, details: { file: source } });
  }
}

/** What {@link saveModel} writes. */
export interface SaveModelOptions {
  readonly config: TransformerConfig;
  readonly params: Parameters;
  readonly tokenizer: Tokenizer;
  /** Also write the serving graph as onnx/model.onnx (default true). */
  readonly onnx?: boolean;
  /** String metadata stored in the safetensors header and the manifest (lineage, step...). */
  readonly metadata?: Record<string, string>;
}

/**
 * Saves a model as a Hugging Face-style folder: config.json, tokenizer.json, model.safetensors,
 * onnx/model.onnx (serving graph, HF decoder signature) and manifest.json with every file's sha256.
 */
export async function saveModel(dir: string, o: SaveModelOptions): Promise<Manifest> {
  checkParameters(o.config, o.params);
  const tok = o.tokenizer;
  const name = (id: number | null): string | null => (id === null ? null : (tok.idToToken(id) ?? null));
  const files: Record<string, Uint8Array | string> = {
    [MODEL_FILES.config]: JSON.stringify(toHfConfig(o.config, o.tokenizer), null, 2),
    [MODEL_FILES.tokenizer]: JSON.stringify(o.tokenizer.toJSON()),
    // What transformers' PreTrainedTokenizerFast reads to know the special tokens.
    [MODEL_FILES.tokenizerConfig]: JSON.stringify(
      {
        tokenizer_class: "PreTrainedTokenizerFast",
        bos_token: name(tok.bosId),
        eos_token: name(tok.eosId),
        pad_token: name(tok.padId),
        model_max_length: o.config.maxPositions,
      },
      null,
      2,
    ),
    [MODEL_FILES.weights]: encodeSafetensors(o.params, { format: "pt", ...(o.metadata ?? {}) }),
  };
  if (o.onnx ?? true) files[MODEL_FILES.onnx] = serialize(buildServingGraph(o.config, o.params));
  return writeCheckpointFiles(dir, "model", files, o.metadata);
}

/** A model folder loaded and verified. */
export interface LoadedModel {
  readonly config: TransformerConfig;
  readonly params: Parameters;
  readonly tokenizer: Tokenizer;
  readonly manifest: Manifest;
  /** safetensors `__metadata__`. */
  readonly metadata: Record<string, string>;
  /** Set when the folder is a Hugging Face checkpoint: what writing a model of the same family and names needs. */
  readonly hf?: HfProvenance;
}

/** Where a model loaded from a Hugging Face folder came from, so what is trained from it is saved in kind. */
export interface HfProvenance {
  readonly dir: string;
  readonly family: HfFamily;
  readonly modelType: string;
  /** config.json as read. */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly naming: HfNaming;
}

/**
 * Loads a folder written by {@link saveModel}, verifying every file against the manifest
 * (DataLoss on digest/size mismatch or corrupt safetensors) and the weights against the config
 * (InvalidArgument naming the file on a shape mismatch).
 */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const hf = await hfFolderConfig(dir);
  if (hf) return loadHfAsModel(dir);
  const manifest = await readManifest(dir);
  const configPath = join(dir, MODEL_FILES.config);
  const configJson = parseJson(await readVerified(dir, MODEL_FILES.config, manifest), configPath);
  const config = fromHfConfig(configJson, configPath);
  const weightsPath = join(dir, MODEL_FILES.weights);
  const st = decodeSafetensors(await readVerified(dir, MODEL_FILES.weights, manifest), weightsPath);
  for (const [name, t] of Object.entries(st.tensors)) {
    if (t.dtype !== "float32") throw new AutodidactError(`${weightsPath}: tensor ${name} is ${t.dtype}, expected float32`, Code.InvalidArgument, { details: { file: weightsPath } });
  }
  checkParameters(config, st.tensors, weightsPath);
  const tokPath = join(dir, MODEL_FILES.tokenizer);
  const tokConfig = manifest.files[MODEL_FILES.tokenizerConfig]
    ? parseJson(await readVerified(dir, MODEL_FILES.tokenizerConfig, manifest), join(dir, MODEL_FILES.tokenizerConfig))
    : {};
  const tokenizer = tokenizerFromJson(parseJson(await readVerified(dir, MODEL_FILES.tokenizer, manifest), tokPath), tokConfig);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new AutodidactError(`${tokPath}: tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${config.vocabSize}`, Code.InvalidArgument, {
      details: { file: tokPath },
    });
  }
  const { format: _format, ...metadata } = st.metadata;
  return { config, params: st.tensors as Parameters, tokenizer, manifest, metadata };
}

/** A decoder folder ready to load into a runtime: ours or an optimum export. */
export interface DecoderFolder {
  readonly dir: string;
  readonly source: "autodidact" | "huggingface" | "external";
  /** config.json as read. */
  readonly hfConfig: Record<string, unknown>;
  readonly tokenizer: Tokenizer;
  /** ONNX bytes of a decoder with the HF signature (absent for Hugging Face checkpoints: built from the weights). */
  readonly model?: Uint8Array;
  /** Context length from the config, when it says. */
  readonly maxLength?: number;
  /** Folder of the ONNX file's external weights (`model.onnx_data`), when it has some. */
  readonly externalDataDir?: string;
  /** Only for our models. */
  readonly config?: TransformerConfig;
  readonly params?: Parameters;
}

const EXTERNAL_ONNX = ["onnx/model.onnx", "model.onnx", "onnx/decoder_model_merged.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx"];

/**
 * Loads a decoder folder the same way whatever produced it: our folders are verified and their
 * serving graph read (or rebuilt from the weights); optimum-exported folders give their
 * `model.onnx`, `config.json` and `tokenizer.json`. Layers, heads and KV shapes are discovered
 * from the ONNX inputs when the model is opened (see `decoderSignature`).
 */
export async function loadDecoder(dir: string): Promise<DecoderFolder> {
  const configPath = join(dir, MODEL_FILES.config);
  let raw: Buffer;
  try {
    raw = await readFile(configPath);
  } catch (cause) {
    throw new AutodidactError(`${configPath} not found: not a model folder`, Code.NotFound, { cause, details: { file: configPath } });
  }
  const hfConfig = parseJson(raw, configPath);
  if (hfConfig.model_type === MODEL_TYPE && hfConfig.autodidact) {
    const m = await loadModel(dir);
    const model = m.manifest.files[MODEL_FILES.onnx]
      ? await readVerified(dir, MODEL_FILES.onnx, m.manifest)
      : serialize(buildServingGraph(m.config, m.params));
    return { dir, source: "autodidact", hfConfig, tokenizer: m.tokenizer, model, maxLength: m.config.maxPositions, config: m.config, params: m.params };
  }
  if (isHfConfig(hfConfig) && ((await exists(join(dir, HF_FILES.weights))) || (await exists(join(dir, HF_FILES.index))))) return hfDecoder(dir);
  let onnxName: string | undefined;
  for (const name of EXTERNAL_ONNX) {
    if (await exists(join(dir, name))) {
      onnxName = name;
      break;
    }
  }
  if (!onnxName) throw new AutodidactError(`${dir}: no ONNX decoder found (looked for ${EXTERNAL_ONNX.join(", ")})`, Code.NotFound);
  // Exports above 2 GB keep their weights in `model.onnx_data` next to the graph: the session reads them from that folder.
  const externalDataDir = (await exists(join(dir, `${onnxName}_data`))) ? dirname(join(dir, onnxName)) : undefined;
  const model = new Uint8Array(await readFile(join(dir, onnxName)));
  const tokenizer = await loadTokenizer(dir);
  const maxPos = hfConfig.max_position_embeddings ?? hfConfig.n_positions ?? hfConfig.n_ctx;
  return { dir, source: "external", hfConfig, tokenizer, model, ...(typeof maxPos === "number" ? { maxLength: maxPos } : {}), ...(externalDataDir ? { externalDataDir } : {}) };
}

/** The config.json of a Hugging Face checkpoint folder (a supported family, no autodidact section), else null. */
async function hfFolderConfig(dir: string): Promise<Record<string, unknown> | null> {
  let raw: Buffer;
  try {
    raw = await readFile(join(dir, MODEL_FILES.config));
  } catch {
    return null;
  }
  let json: Record<string, unknown>;
  try {
    json = parseJson(raw, join(dir, MODEL_FILES.config));
  } catch {
    return null;
  }
  return isHfConfig(json) && json.autodidact === undefined ? json : null;
}

/**
 * A Hugging Face checkpoint folder read as a model (what the trainer loads as a base): imported
 * weights under the engine's names, the config keeping the family. Such folders have no
 * manifest.json; the manifest returned lists no files (the registry digests the folder itself).
 */
async function loadHfAsModel(dir: string): Promise<LoadedModel> {
  const m = await importHfModel(dir);
  if (!m.tokenizer) throw new AutodidactError(`${dir}: a Hugging Face checkpoint needs its tokenizer.json here`, Code.FailedPrecondition, { details: { file: join(dir, HF_FILES.tokenizer) } });
  const manifest: Manifest = { format: "autodidact.checkpoint/1", kind: "model", createdAt: new Date(0).toISOString(), files: {} };
  const hf: HfProvenance = { dir, family: m.family, modelType: m.modelType, hfConfig: m.hfConfig, naming: m.naming };
  return { config: m.config, params: m.params, tokenizer: m.tokenizer, manifest, metadata: { source: "huggingface", model_type: m.modelType }, hf };
}

/** A Hugging Face checkpoint folder as a decoder: weights imported, graphs built from them. */
async function hfDecoder(dir: string): Promise<DecoderFolder> {
  const m = await importHfModel(dir);
  if (!m.tokenizer) throw new AutodidactError(`${dir}: serving a Hugging Face checkpoint needs its tokenizer.json`, Code.FailedPrecondition, { details: { file: join(dir, HF_FILES.tokenizer) } });
  return { dir, source: "huggingface", hfConfig: m.hfConfig as Record<string, unknown>, tokenizer: m.tokenizer, maxLength: m.config.maxPositions, config: m.config, params: m.params };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function parseJson(bytes: Uint8Array, path: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as unknown;
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (cause) {
    throw new AutodidactError(`${path} is not valid JSON: ${(cause as Error).message}`, Code.DataLoss, { cause, details: { file: path } });
  }
}
