// Test helpers (not exported from the module): tiny decoders, adapters and classifiers built with the engine, loading in milliseconds.
import { writeFile } from "node:fs/promises";
import {
  createGraphBuilder,
  createRng,
  createTransformerConfig,
  expectedAdapterShapes,
  initParameters,
  saveLoraAdapter,
  saveModel,
  serialize,
  type AdapterTensors,
  type TransformerConfig,
} from "../../engine/index.js";
import { createTaskTokenizer, getTaskPack } from "../tasks/index.js";

/** The config of {@link saveTinyDecoder}'s models. */
export function tinyDecoderConfig(): TransformerConfig {
  return createTransformerConfig({
    vocabSize: createTaskTokenizer(getTaskPack("addition")).vocabSize,
    numLayers: 1,
    hiddenSize: 16,
    numHeads: 2,
    intermediateSize: 32,
    maxPositions: 48,
    positional: "rotary",
  });
}

/** Saves a random LoRA adapter (PEFT layout) for a tiny decoder, naming `baseModel` as its base. */
export async function saveTinyAdapter(dir: string, baseModel: string, seed: number): Promise<void> {
  const rng = createRng(`adapter-${seed}`);
  const adapters: AdapterTensors = {};
  for (const [name, shape] of expectedAdapterShapes(tinyDecoderConfig(), 4, ["q_proj", "v_proj"])) {
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
    adapters[name] = { dtype: "float32", dims: [...shape], data };
  }
  await saveLoraAdapter(dir, { adapters, rank: 4, alpha: 8, targetModules: ["q_proj", "v_proj"], baseModel });
}

/** Saves a tiny random decoder for the addition task's tokenizer into `dir`; `seed` varies the weights. */
export async function saveTinyDecoder(dir: string, seed: number): Promise<void> {
  const tokenizer = createTaskTokenizer(getTaskPack("addition"));
  const config = createTransformerConfig({
    vocabSize: tokenizer.vocabSize,
    numLayers: 1,
    hiddenSize: 16,
    numHeads: 2,
    intermediateSize: 32,
    maxPositions: 48,
    positional: "rotary",
  });
  const params = initParameters(config, seed);
  const rng = createRng(`tiny-${seed}`);
  for (const t of Object.values(params)) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) + 0.2 * rng.normal();
  await saveModel(dir, { config, params, tokenizer });
}

/**
 * Writes a tiny ONNX sequence classifier with the HF signature (`input_ids`, `attention_mask` →
 * `logits` [B, 2]): each token votes with a row of `votes` (vocab × 2), masked tokens are ignored.
 */
export async function saveTinyClassifier(file: string, votes: readonly (readonly [number, number])[]): Promise<void> {
  const b = createGraphBuilder("tiny-classifier");
  const ids = b.input("input_ids", "int64", ["batch", "seq"]);
  const mask = b.input("attention_mask", "int64", ["batch", "seq"]);
  const table = b.initializer("votes", "float32", [votes.length, 2], Float32Array.from(votes.flat()));
  const emb = b.gather(table, ids, 0); // [B, T, 2]
  const m = b.unsqueeze(b.cast(mask, "float32"), [2]); // [B, T, 1]
  const logits = b.reduceSum(b.mul(emb, m), [1], false); // [B, 2]
  b.output(logits, "logits");
  await writeFile(file, serialize(b.buildModel()));
}
