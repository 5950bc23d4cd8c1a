import { AutodidactError, Code } from "../../../src/platform/errors/index.js";

/** Which phase of model collapse an alarm points at (Shumailov et al. 2024): tails first, then bland and wrong. */
export type CollapseStage = "early" | "late";

/** A measured sign of trouble; mirrors the wire `Alarm` message plus the collapse stage. */
export interface CollapseAlarm {
  /** "variance_loss", "diversity_drop", "tail_loss", "overconfidence", "calibration", "regression", "drift". */
  readonly kind: string;
  readonly stage: CollapseStage;
  readonly metric: string;
  readonly value: number;
  readonly threshold: number;
  readonly severity: "warning" | "critical";
  readonly message: string;
  /** Difficulty concerned, 0 = all. */
  readonly difficulty: number;
}

/**
 * What the detectors look at, for a model (or a distribution in a simulated chain). Every field is
 * optional: a detector whose signal is absent stays silent.
 */
export interface CollapseSignals {
  /** Spread of the output distribution (variance of a fitted model, or of an output statistic). */
  readonly variance?: number;
  /** Distinct-2 of sampled outputs. */
  readonly distinct2?: number;
  /** Entropy of produced tokens (nats). */
  readonly tokenEntropy?: number;
  /** Share of rare-slice cases still covered (answered right, or still in the support). */
  readonly tailCoverage?: number;
  readonly accuracy?: number;
  readonly overconfidentWrongRate?: number;
  readonly calibrationEce?: number;
  /** KL of the output distribution from the real data's. */
  readonly driftKl?: number;
}

/**
 * Alarm thresholds. Ratios compare a signal with the reference (real data, or the incumbent); absolute
 * limits apply on their own. `undefined` disables a check.
 */
export interface CollapseThresholds {
  readonly minVarianceRatio?: number;
  readonly minDiversityRatio?: number;
  readonly minEntropyRatio?: number;
  readonly minTailCoverageRatio?: number;
  /** Absolute floor on tail coverage. */
  readonly minTailCoverage?: number;
  readonly maxAccuracyDrop?: number;
  readonly maxOverconfidentWrongRate?: number;
  readonly maxCalibrationEce?: number;
  readonly maxDriftKl?: number;
}

/** Defaults used by the monitor when a policy does not say otherwise. */
export const DEFAULT_THRESHOLDS: Required<CollapseThresholds> = {
  minVarianceRatio: 0.25,
  minDiversityRatio: 0.5,
  minEntropyRatio: 0.5,
  minTailCoverageRatio: 0.5,
  minTailCoverage: 0,
  maxAccuracyDrop: 0.2,
  maxOverconfidentWrongRate: 0.5,
  maxCalibrationEce: 0.5,
  maxDriftKl: 2,
};

function ratio(value: number, reference: number): number {
  if (reference <= 0) return value > 0 ? Infinity : 1;
  return value / reference;
}

/**
 * Compares a model's signals with a reference and raises early-collapse alarms (variance, diversity,
 * entropy or tail coverage shrinking) and late-collapse alarms (accuracy dropping, confident wrong
 * answers, poor calibration). Pure: same inputs, same alarms.
 */
export function detectCollapse(
  current: CollapseSignals,
  reference: CollapseSignals | undefined,
  thresholds: CollapseThresholds = DEFAULT_THRESHOLDS,
  difficulty = 0,
): CollapseAlarm[] {
  const alarms: CollapseAlarm[] = [];
  const push = (kind: string, stage: CollapseStage, metric: string, value: number, threshold: number, severity: CollapseAlarm["severity"], message: string): void => {
    if (!Number.isFinite(value) && !Number.isNaN(value)) return; // infinite ratio = reference at zero: nothing lost
    alarms.push({ kind, stage, metric, value, threshold, severity, message, difficulty });
  };
  for (const [k, v] of Object.entries(current)) {
    if (v !== undefined && (typeof v !== "number" || Number.isNaN(v))) {
      throw new AutodidactError(`collapse signal ${k} is not a number: ${String(v)}`, Code.InvalidArgument);
    }
  }
  const rel = (
    key: keyof CollapseSignals,
    min: number | undefined,
    kind: string,
    what: string,
  ): void => {
    const value = current[key];
    const ref = reference?.[key];
    if (min === undefined || value === undefined || ref === undefined) return;
    const r = ratio(value, ref);
    if (r < min) push(kind, "early", `${key}_ratio`, r, min, "critical", `${what} fell to ${(r * 100).toFixed(1)}% of the reference (limit ${(min * 100).toFixed(0)}%)`);
  };
  rel("variance", thresholds.minVarianceRatio, "variance_loss", "output variance");
  rel("distinct2", thresholds.minDiversityRatio, "diversity_drop", "distinct-2");
  rel("tokenEntropy", thresholds.minEntropyRatio, "diversity_drop", "token entropy");
  rel("tailCoverage", thresholds.minTailCoverageRatio, "tail_loss", "tail coverage");
  if (thresholds.minTailCoverage !== undefined && current.tailCoverage !== undefined && current.tailCoverage < thresholds.minTailCoverage) {
    push("tail_loss", "early", "tailCoverage", current.tailCoverage, thresholds.minTailCoverage, "critical", `tail coverage ${current.tailCoverage.toFixed(3)} is below ${thresholds.minTailCoverage}`);
  }
  if (thresholds.maxAccuracyDrop !== undefined && current.accuracy !== undefined && reference?.accuracy !== undefined) {
    const drop = reference.accuracy - current.accuracy;
    if (drop > thresholds.maxAccuracyDrop) {
      push("regression", "late", "accuracy_drop", drop, thresholds.maxAccuracyDrop, "critical", `accuracy fell by ${drop.toFixed(3)} (limit ${thresholds.maxAccuracyDrop})`);
    }
  }
  if (thresholds.maxOverconfidentWrongRate !== undefined && current.overconfidentWrongRate !== undefined && current.overconfidentWrongRate > thresholds.maxOverconfidentWrongRate) {
    push("overconfidence", "late", "overconfidentWrongRate", current.overconfidentWrongRate, thresholds.maxOverconfidentWrongRate, "critical", `${(current.overconfidentWrongRate * 100).toFixed(1)}% of answers are confidently wrong`);
  }
  if (thresholds.maxCalibrationEce !== undefined && current.calibrationEce !== undefined && current.calibrationEce > thresholds.maxCalibrationEce) {
    push("calibration", "late", "calibrationEce", current.calibrationEce, thresholds.maxCalibrationEce, "warning", `expected calibration error ${current.calibrationEce.toFixed(3)}`);
  }
  if (thresholds.maxDriftKl !== undefined && current.driftKl !== undefined && current.driftKl > thresholds.maxDriftKl) {
    push("drift", "early", "driftKl", current.driftKl, thresholds.maxDriftKl, "warning", `output distribution drifted ${current.driftKl.toFixed(3)} nats from the real data`);
  }
  return alarms;
}

/** Whether any alarm blocks promotion. */
export function hasCritical(alarms: readonly CollapseAlarm[]): boolean {
  return alarms.some((a) => a.severity === "critical");
}
