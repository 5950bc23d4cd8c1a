/**
 * Evaluation and collapse detection (pure logic plus the engine-backed evaluation on real held-out
 * data, one named split at a time; label-free signals beyond the validation range): metrics, collapse detectors, the recursive-training chains they are validated against, and
 * the promotion gate the monitor applies.
 */
export { distinctN, entropy, expectedCalibrationError, klDivergence, meanVariance, overconfidentWrongRate, tokenCounts } from "./metrics.js";
export { DEFAULT_THRESHOLDS, detectCollapse, hasCritical } from "./detectors.js";
export type { CollapseAlarm, CollapseSignals, CollapseStage, CollapseThresholds } from "./detectors.js";
export { gaussianChain, zipfChain } from "./chains.js";
export type { CategoricalGeneration, ChainMode, GaussianGeneration } from "./chains.js";
export { emptyEvaluation, evaluateModel, FRONTIER_THRESHOLD, frontierOf, labelAccuracy, signalsOf } from "./evaluate-model.js";
export type { DifficultyReport, EvaluateModelOptions, EvaluationReport, LabeledSample } from "./evaluate-model.js";
export { applyGate, checkGatePolicy, DEFAULT_GATE_POLICY, isEmptyRange, thresholdsOf } from "./gate.js";
export type { DifficultyRangePlain, GateOutcome, GatePolicy, LabelFreeDifficulty } from "./gate.js";
export { agreementShare, AnswerCache, measureLabelFree, SELF_CONSISTENCY_SAMPLES } from "./label-free.js";
export type { LabelFreeModel, LabelFreeModels, LabelFreeOptions } from "./label-free.js";
export { summarizeManifest } from "./manifest.js";
export type { ManifestSummary } from "./manifest.js";
