// What an evaluation covers under a gating policy: which difficulties of which held-out split, how
// many problems, and where the gate falls back on label-free signals. Pure, so it is tested alone.
import type { CheckpointRecord } from "../../src/domain/registry/index.js";
import type { TaskPack } from "../../src/domain/tasks/index.js";
import { isEmptyRange, type DifficultyRangePlain, type GatePolicy } from "./evaluation/index.js";

/** Which difficulties and how many problems of each split an evaluation covers, under a policy. */
export interface EvaluationPlan {
  readonly validation: readonly number[];
  readonly test: readonly number[];
  readonly validationLimit: number;
  readonly testLimit: number;
}

const rangeOf = (r: DifficultyRangePlain, pack: TaskPack): number[] => {
  const out: number[] = [];
  for (let d = Math.max(r.min, pack.difficulty.min); d <= Math.min(r.max, pack.difficulty.max); d++) out.push(d);
  return out;
};

/**
 * The evaluation plan a gating policy implies: validation over the policy's validation range (none
 * when it is empty, the configured difficulties when it sets none), test over its test range (the
 * configured difficulties when it sets none), both clipped to the task's range. A request's limit
 * overrides the policy's sizes, which override the monitor's default limit.
 */
export function evaluationPlan(policy: GatePolicy, pack: TaskPack, configured: readonly number[] | undefined, defaultLimit: number, requestLimit?: number): EvaluationPlan {
  const all = configured ?? rangeOf(pack.difficulty, pack);
  const v = policy.validation;
  return {
    validation: v === undefined ? all : rangeOf(v, pack),
    test: policy.test === undefined ? all : rangeOf(policy.test, pack),
    validationLimit: requestLimit ?? (policy.validationSize || defaultLimit),
    testLimit: requestLimit ?? (policy.testSize || defaultLimit),
  };
}

/** The label-free range of a candidate: above the validation range, up to its hardest synthetic training difficulty. */
export function labelFreeDifficulties(policy: GatePolicy, pack: TaskPack, record: CheckpointRecord): number[] {
  if (policy.labelFreeProbeSize === 0 || policy.validation === undefined) return [];
  const mix = record.manifest["mix"] as { syntheticByDifficulty?: Record<string, number> } | undefined;
  const trained = Object.entries(mix?.syntheticByDifficulty ?? {}).filter(([, n]) => Number(n) > 0).map(([d]) => Number(d)).filter(Number.isInteger);
  if (trained.length === 0) return [];
  const lo = isEmptyRange(policy.validation) ? pack.difficulty.min : policy.validation.max + 1;
  return rangeOf({ min: lo, max: Math.max(...trained) }, pack);
}
