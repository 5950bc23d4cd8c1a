import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { DEFAULT_THRESHOLDS, hasCritical, type CollapseThresholds } from "./detectors.js";
import type { EvaluationReport } from "./evaluate-model.js";

/**
 * The gate a candidate must pass to be promoted (plain form of the wire `GatingPolicy`): no worse than
 * the incumbent on the real anchor evaluation beyond a tolerance, and no critical collapse alarm.
 */
export interface GatePolicy {
  readonly version: number;
  /** Minimum overall accuracy gain over the incumbent (negative = tolerated loss). */
  readonly minAccuracyDelta: number;
  /** No difficulty may lose more accuracy than this. */
  readonly maxDifficultyRegression: number;
  readonly maxCalibrationEce: number;
  readonly maxOverconfidentWrongRate: number;
  /** Minimum candidate distinct-2 / incumbent distinct-2. */
  readonly minDiversityRatio: number;
  readonly minTailCoverage: number;
  readonly maxDriftKl: number;
  readonly autoPromote: boolean;
  /** Roll back when the promoted version's re-evaluation regresses past the gate. */
  readonly autoRollback: boolean;
  readonly note: string;
  readonly updatedAt: string;
}

/** The policy used until an operator sets one. */
export const DEFAULT_GATE_POLICY: GatePolicy = {
  version: 0,
  minAccuracyDelta: -0.02,
  maxDifficultyRegression: 0.1,
  maxCalibrationEce: 1,
  maxOverconfidentWrongRate: 0.5,
  minDiversityRatio: 0.5,
  minTailCoverage: 0,
  maxDriftKl: 5,
  autoPromote: true,
  autoRollback: true,
  note: "default",
  updatedAt: new Date(0).toISOString(),
};

/** Rejects a policy whose numbers are not numbers or whose limits make no sense. */
export function checkGatePolicy(p: GatePolicy): GatePolicy {
  const nums: (keyof GatePolicy)[] = ["minAccuracyDelta", "maxDifficultyRegression", "maxCalibrationEce", "maxOverconfidentWrongRate", "minDiversityRatio", "minTailCoverage", "maxDriftKl"];
  for (const k of nums) {
    if (typeof p[k] !== "number" || !Number.isFinite(p[k])) throw new AutodidactError(`gating policy ${k} must be a finite number, got ${String(p[k])}`, Code.InvalidArgument);
  }
  if (p.maxDifficultyRegression < 0 || p.maxCalibrationEce < 0 || p.maxOverconfidentWrongRate < 0 || p.minDiversityRatio < 0 || p.maxDriftKl < 0) {
    throw new AutodidactError("gating policy limits must be >= 0 (only minAccuracyDelta may be negative)", Code.InvalidArgument);
  }
  if (p.minTailCoverage < 0 || p.minTailCoverage > 1) throw new AutodidactError(`minTailCoverage must be in [0, 1], got ${p.minTailCoverage}`, Code.InvalidArgument);
  return p;
}

/** The detector thresholds a gating policy implies. */
export function thresholdsOf(p: GatePolicy): CollapseThresholds {
  return {
    ...DEFAULT_THRESHOLDS,
    minDiversityRatio: p.minDiversityRatio,
    minTailCoverage: p.minTailCoverage,
    maxOverconfidentWrongRate: p.maxOverconfidentWrongRate,
    maxCalibrationEce: p.maxCalibrationEce,
    maxDriftKl: p.maxDriftKl,
    maxAccuracyDrop: Math.max(0, -p.minAccuracyDelta) + p.maxDifficultyRegression,
  };
}

/** Outcome of {@link applyGate}: passed, and one reason per failed check. */
export interface GateOutcome {
  readonly passed: boolean;
  readonly reasons: string[];
  readonly policyVersion: number;
}

/**
 * Applies the gate to a candidate's evaluation against the incumbent's (none: only absolute limits
 * and alarms apply). Pure; the monitor service decides what to do with the outcome.
 */
export function applyGate(policy: GatePolicy, candidate: EvaluationReport, incumbent: EvaluationReport | undefined): GateOutcome {
  const reasons: string[] = [];
  if (incumbent !== undefined) {
    if (incumbent.evalSetDigest !== candidate.evalSetDigest) reasons.push("evaluated on a different held-out set than the incumbent");
    const delta = candidate.accuracy - incumbent.accuracy;
    if (delta < policy.minAccuracyDelta) {
      reasons.push(`accuracy ${candidate.accuracy.toFixed(3)} vs incumbent ${incumbent.accuracy.toFixed(3)}: delta ${delta.toFixed(3)} < ${policy.minAccuracyDelta}`);
    }
    for (const d of candidate.perDifficulty) {
      const base = incumbent.perDifficulty.find((x) => x.difficulty === d.difficulty);
      if (base && base.accuracy - d.accuracy > policy.maxDifficultyRegression) {
        reasons.push(`difficulty ${d.difficulty}: accuracy ${d.accuracy.toFixed(3)} regressed from ${base.accuracy.toFixed(3)} by more than ${policy.maxDifficultyRegression}`);
      }
    }
    const d2 = candidate.distinctN[2];
    const b2 = incumbent.distinctN[2];
    if (d2 !== undefined && b2 !== undefined && b2 > 0 && d2 / b2 < policy.minDiversityRatio) {
      reasons.push(`distinct-2 ratio ${(d2 / b2).toFixed(3)} < ${policy.minDiversityRatio}`);
    }
  }
  if (candidate.calibrationEce > policy.maxCalibrationEce) reasons.push(`calibration ECE ${candidate.calibrationEce.toFixed(3)} > ${policy.maxCalibrationEce}`);
  if (candidate.overconfidentWrongRate > policy.maxOverconfidentWrongRate) {
    reasons.push(`overconfident wrong rate ${candidate.overconfidentWrongRate.toFixed(3)} > ${policy.maxOverconfidentWrongRate}`);
  }
  if (candidate.tailCoverage < policy.minTailCoverage) reasons.push(`tail coverage ${candidate.tailCoverage.toFixed(3)} < ${policy.minTailCoverage}`);
  if (candidate.driftKl > policy.maxDriftKl) reasons.push(`drift KL ${candidate.driftKl.toFixed(3)} > ${policy.maxDriftKl}`);
  if (hasCritical(candidate.alarms)) {
    for (const a of candidate.alarms.filter((x) => x.severity === "critical")) reasons.push(`alarm ${a.kind} (${a.stage} collapse): ${a.message}`);
  }
  return { passed: reasons.length === 0, reasons: [...new Set(reasons)], policyVersion: policy.version };
}
