/**
 * Worker-thread side of {@link createTrainer}: functions the model worker runs through
 * `SessionHost.call`, each addressing one {@link TrainerCore} by id. Kept in module state of the
 * worker, so the training session, weights and optimizer moments never leave that thread except
 * when asked for.
 */
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Parameters } from "../model/params.js";
import type { Batch } from "./batch.js";
import type { Adapters } from "./lora.js";
import type { AdamWState } from "./optimizer.js";
import { TrainerCore, type StepResult, type TrainerOptions } from "./trainer-core.js";

const trainers = new Map<string, TrainerCore>();

function get(id: string): TrainerCore {
  const t = trainers.get(id);
  if (!t) throw new AutodidactError(`no trainer "${id}" in this worker (closed?)`, Code.FailedPrecondition);
  return t;
}

/** Creates a trainer; answers the training graph's trainable/frozen input names. */
export async function trainerCreate(args: { id: string; options: TrainerOptions }): Promise<{ trainable: string[]; frozen: string[] }> {
  const core = await TrainerCore.create(args.options);
  trainers.set(args.id, core);
  return { trainable: [...core.graph.trainable], frozen: [...core.graph.frozen] };
}

/** One optimization step of trainer `id` (see TrainerCore.step). */
export function trainerStep(args: { id: string; batch: Batch }): Promise<StepResult> {
  return get(args.id).step(args.batch);
}

/** Loss of trainer `id` on a batch, no update. */
export function trainerEvaluate(args: { id: string; batch: Batch }): Promise<number> {
  return get(args.id).evaluate(args.batch);
}

/** Copies of trainer `id`'s full weights (the frozen base in LoRA mode). */
export function trainerWeights(args: { id: string }): Parameters {
  return get(args.id).weights();
}

/** Copies of trainer `id`'s adapters (LoRA mode). */
export function trainerAdapters(args: { id: string }): Adapters {
  return get(args.id).adapters();
}

/** Replaces trainer `id`'s weights in place (same session). */
export function trainerSetWeights(args: { id: string; weights: Parameters }): null {
  get(args.id).setWeights(args.weights);
  return null;
}

/** Swaps trainer `id`'s adapters (a tensor swap, same session). */
export function trainerSetAdapters(args: { id: string; adapters: Adapters }): null {
  get(args.id).setAdapters(args.adapters);
  return null;
}

/** Trainer `id`'s AdamW moments and step count, for resumable checkpoints. */
export function trainerOptimizerState(args: { id: string }): AdamWState {
  return get(args.id).optimizerState();
}

/** Restores AdamW state saved by trainerOptimizerState. */
export function trainerLoadOptimizerState(args: { id: string; state: AdamWState }): null {
  get(args.id).loadOptimizerState(args.state);
  return null;
}

/** Frees trainer `id`'s session; later calls with that id fail with FailedPrecondition. */
export async function trainerRelease(args: { id: string }): Promise<null> {
  const t = trainers.get(args.id);
  trainers.delete(args.id);
  if (t) await t.release();
  return null;
}
