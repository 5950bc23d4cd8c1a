import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { DEFAULT_THRESHOLDS, hasCritical, type CollapseThresholds } from "./detectors.js";
import type { EvaluationReport } from "./evaluate-model.js";

/** An inclusive difficulty range (plain form of the wire `DifficultyRange`); max < min is empty. */
export interface DifficultyRangePlain {
  readonly min: number;
  readonly max: number;
}

/**
 * A label-free signal the gate compares at one difficulty beyond the validation range, measured on
 * fresh unlabelled prompts for the candidate and the incumbent alike (see label-free.ts).
 */
export interface LabelFreeDifficulty {
  readonly difficulty: number;
  readonly count: number;
  readonly signal: "peer_agreement" | "self_consistency";
  readonly candidate: number;
  /** -1 when there is no incumbent. */
  readonly incumbent: number;
}

/**
 * The gate a candidate must pass to be promoted (plain form of the wire `GatingPolicy`): within the
 * validation range, no worse than the incumbent on real validation data beyond a tolerance (difficulty
 * 1 included); beyond it, no drop of the label-free signal; and no critical collapse alarm.
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
  /** Difficulties whose validation split the gate may read; undefined = every evaluated difficulty (no run set it). */
  readonly validation?: DifficultyRangePlain;
  /** Difficulties evaluated on the test split for results; undefined = the monitor's configured ones. */
  readonly test?: DifficultyRangePlain;
  /** Problems per difficulty of the validation / test split (0 = the monitor's --eval-limit). */
  readonly validationSize: number;
  readonly testSize: number;
  /** Fresh unlabelled prompts per difficulty for the label-free check beyond the validation range (0 = off). */
  readonly labelFreeProbeSize: number;
  /** Largest tolerated drop of the label-free signal below the incumbent's. */
  readonly maxAgreementRegression: number;
  /** Lineages whose promoted models the candidate is compared with (none: self-consistency). */
  readonly peerLineages: readonly string[];
}

/** Whether a range holds no difficulty. */
export const isEmptyRange = (r: DifficultyRangePlain): boolean => r.max < r.min;

/** The policy used until an operator sets one. */
export const DEFAULT_GATE_POLICY: GatePolicy = {
  version: 0,
  minAccuracyDelta: -0.02,
  // Tight, difficulty 1 included: a 10-point tolerance let 1-digit accuracy slide to 92 % unnoticed.
  maxDifficultyRegression: 0.05,
  maxCalibrationEce: 1,
  maxOverconfidentWrongRate: 0.5,
  minDiversityRatio: 0.5,
  minTailCoverage: 0,
  maxDriftKl: 5,
  autoPromote: true,
  autoRollback: true,
  note: "default",
  updatedAt: new Date(0).toISOString(),
  validationSize: 0,
  testSize: 0,
  labelFreeProbeSize: 0,
  maxAgreementRegression: 0.05,
  peerLineages: [],
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
  for (const [name, r] of [["validation", p.validation], ["test", p.test]] as const) {
    if (r === undefined || isEmptyRange(r)) continue;
    if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 1) throw new AutodidactError(`gating policy ${name} range must be integers from 1, got ${r.min}..${r.max}`, Code.InvalidArgument);
  }
  if (p.test !== undefined && isEmptyRange(p.test)) throw new AutodidactError("gating policy test range must not be empty when set (results come from it)", Code.InvalidArgument);
  for (const k of ["validationSize", "testSize", "labelFreeProbeSize"] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 0 || p[k] > 4096) throw new AutodidactError(`gating policy ${k} must be an integer in 0..4096, got ${p[k]}`, Code.InvalidArgument);
  }
  if (!(p.maxAgreementRegression >= 0 && p.maxAgreementRegression <= 1)) throw new AutodidactError(`maxAgreementRegression must be in [0, 1], got ${p.maxAgreementRegression}`, Code.InvalidArgument);
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
 * Applies the gate to a candidate's validation evaluation against the incumbent's (none: only
 * absolute limits and alarms apply), and to the label-free signals measured beyond the validation
 * range. Pure; the monitor service decides what to do with the outcome. The gate reads the validation
 * split only: handed an evaluation of the test split it refuses (Internal), so no result steers it.
 */
export function applyGate(policy: GatePolicy, candidate: EvaluationReport, incumbent: EvaluationReport | undefined, labelFree: readonly LabelFreeDifficulty[] = []): GateOutcome {
  for (const e of [candidate, incumbent]) {
    if (e !== undefined && e.split !== "validation") throw new AutodidactError(`the gate reads the validation split only, was handed the ${e.split} split`, Code.Internal);
  }
  const reasons: string[] = [];
  for (const f of labelFree) {
    if (f.incumbent >= 0 && f.incumbent - f.candidate > policy.maxAgreementRegression) {
      reasons.push(`difficulty ${f.difficulty} (label-free): ${f.signal.replace("_", " ")} ${f.candidate.toFixed(3)} fell from the incumbent's ${f.incumbent.toFixed(3)} by more than ${policy.maxAgreementRegression}`);
    }
  }
  if (incumbent !== undefined) {
    if (incumbent.evalSetDigest !== candidate.evalSetDigest) reasons.push("evaluated on a different validation set than the incumbent");
    const delta = candidate.accuracy - incumbent.accuracy;
    if (delta < policy.minAccuracyDelta) {
      reasons.push(`accuracy ${candidate.accuracy.toFixed(3)} vs incumbent ${incumbent.accuracy.toFixed(3)}: delta ${delta.toFixed(3)} < ${policy.minAccuracyDelta}`);
    }
    for (const d of candidate.perDifficulty) {
      const base = incumbent.perDifficulty.find((x) => x.difficulty === d.difficulty);
      if (base && base.accuracy - d.accuracy > policy.maxDifficultyRegression) {
        reasons.push(`difficulty ${d.difficulty} (validation): accuracy ${d.accuracy.toFixed(3)} regressed from ${base.accuracy.toFixed(3)} by more than ${policy.maxDifficultyRegression}`);
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
