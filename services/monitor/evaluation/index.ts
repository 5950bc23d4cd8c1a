/**
 * Evaluation and collapse detection (pure logic plus the engine-backed evaluation on real held-out
 * data): metrics, collapse detectors, the recursive-training chains they are validated against, and
 * the promotion gate the monitor applies.
 */
export { distinctN, entropy, expectedCalibrationError, klDivergence, meanVariance, overconfidentWrongRate, tokenCounts } from "./metrics.js";
export { DEFAULT_THRESHOLDS, detectCollapse, hasCritical } from "./detectors.js";
export type { CollapseAlarm, CollapseSignals, CollapseStage, CollapseThresholds } from "./detectors.js";
export { gaussianChain, zipfChain } from "./chains.js";
export type { CategoricalGeneration, ChainMode, GaussianGeneration } from "./chains.js";
export { evaluateModel, labelAccuracy, signalsOf } from "./evaluate-model.js";
export type { DifficultyReport, EvaluateModelOptions, EvaluationReport, LabeledSample } from "./evaluate-model.js";
export { applyGate, checkGatePolicy, DEFAULT_GATE_POLICY, thresholdsOf } from "./gate.js";
export type { GateOutcome, GatePolicy } from "./gate.js";
export { summarizeManifest } from "./manifest.js";
export type { ManifestSummary } from "./manifest.js";
