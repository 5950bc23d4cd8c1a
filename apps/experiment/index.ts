/**
 * The self-improvement recipe for reversed addition (Lee et al. 2025), in process: base models,
 * self-labelling one digit longer each round, vote + length filter, accumulated data with real
 * anchors, per-lineage fine-tuning, held-out evaluation. The mesh demo reuses its pieces.
 */
export { checkConfig, DEFAULT_RECIPE, G2P_QUICK_RECIPE, G2P_RECIPE, QUICK_RECIPE, recipes } from "./recipe.js";
export { formatScores, testScores } from "./g2p.js";
export type { LengthScore } from "./g2p.js";
export type { ModelShape, SelfImprovementConfig, TrainPhase } from "./recipe.js";
export {
  accuracyByLength,
  filterLabels,
  frontierOf,
  greedyAnswers,
  mixBatch,
  modelConfig,
  recipeTask,
  runSelfImprovement,
  toExample,
  trainBase,
  trainPhase,
  withGenerator,
} from "./self-improve.js";
export type { LabelFilter, LabelledSample, Lineage, RoundReport, RunHooks, SelfImprovementResult } from "./self-improve.js";
export { formatRound } from "./table.js";
export { loadBase, saveBase } from "./checkpoints.js";
