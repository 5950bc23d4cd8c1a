/**
 * Worker-thread side of {@link createPolicyValueTrainer}: functions the model worker runs through
 * `SessionHost.call`, each addressing one {@link PolicyValueTrainerCore} by id, so the training
 * session, weights and optimizer moments stay in that thread.
 */
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Parameters } from "../model/params.js";
import type { AdamWState } from "./optimizer.js";
import { PolicyValueTrainerCore, type PolicyValueBatch, type PolicyValueStepResult, type PolicyValueTrainerOptions } from "./policy-value.js";

const trainers = new Map<string, PolicyValueTrainerCore>();

function get(id: string): PolicyValueTrainerCore {
  const t = trainers.get(id);
  if (!t) throw new AutodidactError(`no policy-value trainer "${id}" in this worker (closed?)`, Code.FailedPrecondition);
  return t;
}

/** Creates a trainer in this worker. */
export async function pvCreate(args: { id: string; options: PolicyValueTrainerOptions }): Promise<null> {
  trainers.set(args.id, await PolicyValueTrainerCore.create(args.options));
  return null;
}

/** One optimization step of trainer `id`. */
export function pvStep(args: { id: string; batch: PolicyValueBatch }): Promise<PolicyValueStepResult> {
  return get(args.id).step(args.batch);
}

/** Losses of trainer `id` on a batch, no update. */
export function pvEvaluate(args: { id: string; batch: PolicyValueBatch }): Promise<{ loss: number; policyLoss: number; valueLoss: number }> {
  return get(args.id).evaluate(args.batch);
}

/** Copies of trainer `id`'s weights. */
export function pvWeights(args: { id: string }): Parameters {
  return get(args.id).weights();
}

/** Replaces trainer `id`'s weights in place. */
export function pvSetWeights(args: { id: string; weights: Parameters }): null {
  get(args.id).setWeights(args.weights);
  return null;
}

/** Trainer `id`'s AdamW moments and step count. */
export function pvOptimizerState(args: { id: string }): AdamWState {
  return get(args.id).optimizerState();
}

/** Restores AdamW state saved by pvOptimizerState. */
export function pvLoadOptimizerState(args: { id: string; state: AdamWState }): null {
  get(args.id).loadOptimizerState(args.state);
  return null;
}

/** Frees trainer `id`'s session. */
export async function pvRelease(args: { id: string }): Promise<null> {
  const t = trainers.get(args.id);
  trainers.delete(args.id);
  if (t) await t.release();
  return null;
}
