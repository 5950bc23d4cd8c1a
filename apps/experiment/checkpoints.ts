import { loadModel, saveModel, type Parameters } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createTaskTokenizer } from "../../src/domain/tasks/index.js";
import type { SelfImprovementConfig } from "./recipe.js";
import { modelConfig, recipeTask } from "./base-training.js";

/**
 * Saves one base lineage as an engine model folder, with the recipe facts (seed, base digits,
 * measured frontier) in the metadata, so the demo can load base models instead of training them.
 */
export async function saveBase(
  dir: string,
  o: { readonly config: SelfImprovementConfig; readonly seed: number; readonly weights: Parameters; readonly frontier: number },
): Promise<void> {
  const pack = recipeTask(o.config.task);
  const tokenizer = createTaskTokenizer(pack);
  await saveModel(dir, {
    config: modelConfig(o.config.model, tokenizer),
    params: o.weights,
    tokenizer,
    metadata: {
      task: o.config.task,
      lineage: `lineage-${o.seed}`,
      seed: String(o.seed),
      baseDigits: String(o.config.baseDigits),
      frontier: String(o.frontier),
    },
  });
}

/**
 * Loads a base lineage saved by {@link saveBase}; FailedPrecondition when its shape differs from
 * the recipe's model (the recipe changed since the checkpoint was made: re-run train-base).
 */
export async function loadBase(dir: string, config: SelfImprovementConfig): Promise<{ weights: Parameters; frontier: number; seed: number }> {
  const m = await loadModel(dir);
  const want = modelConfig(config.model, createTaskTokenizer(recipeTask(config.task)));
  for (const k of ["numLayers", "hiddenSize", "numHeads", "intermediateSize", "vocabSize", "positional"] as const) {
    if (m.config[k] !== want[k]) {
      throw new AutodidactError(`${dir}: base model has ${k} ${String(m.config[k])}, the recipe wants ${String(want[k])}; re-run train-base`, Code.FailedPrecondition);
    }
  }
  return { weights: m.params, frontier: Number(m.metadata.frontier ?? 0), seed: Number(m.metadata.seed ?? 0) };
}
