/**
 * The reversed-addition recipe (Lee et al. 2025) and its base models: the recipe's numbers (plain
 * data the demo's run spec is built from), base-model training, saving and loading, the held-out
 * accuracy table and the frontier. The self-improvement loop is the conductor's (services/conductor).
 */
export { checkConfig, DEFAULT_RECIPE, G2P_QUICK_RECIPE, G2P_RECIPE, QUICK_RECIPE, recipes } from "./recipe.js";
export { formatScores, testScores } from "./g2p.js";
export type { LengthScore } from "./g2p.js";
export type { ModelShape, SelfImprovementConfig, TrainPhase } from "./recipe.js";
export { accuracyByLength, frontierOf, greedyAnswers, modelConfig, recipeTask, toExample, trainBase, trainPhase, withGenerator } from "./base-training.js";
export type { Lineage } from "./base-training.js";
export { loadBase, saveBase } from "./checkpoints.js";
