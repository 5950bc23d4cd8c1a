// Plain monitor data ↔ wire messages.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { CheckpointRef } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import type { GetEvaluationResponseSchema, LineageEntrySchema, RoundStatsSchema } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { AlarmSeverity, type EvaluationSchema, type GateResultSchema, type GatingPolicy, type GatingPolicySchema } from "../../src/gen/autodidact/v1/report_pb.js";
import type { GateOutcome, GatePolicy } from "./evaluation/index.js";
import { checkpointRefOf, type CheckpointRecord, type RoundStats } from "../../src/domain/registry/index.js";
import { summarizeManifest } from "./evaluation/index.js";
import type { StoredEvaluation } from "./monitor.js";

const ts = (iso: string): Timestamp | undefined => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? undefined : timestampFromDate(d);
};

/**
 * A registry record as the wire `CheckpointRef` (the registry's one conversion, `checkpointRefOf`),
 * with the headline metrics of its evaluation when given.
 */
export function refWithEvaluation(record: CheckpointRecord, evaluation?: StoredEvaluation): CheckpointRef {
  if (evaluation === undefined) return checkpointRefOf(record);
  return checkpointRefOf(record, {
    metrics: {
      eval_accuracy: evaluation.accuracy,
      eval_loss: evaluation.loss,
      calibration_ece: evaluation.calibrationEce,
      tail_coverage: evaluation.tailCoverage,
    },
  });
}

/** One round's statistics as the wire `RoundStats`. */
export function toRoundStats(s: RoundStats): MessageInitShape<typeof RoundStatsSchema> {
  return {
    task: s.task,
    round: s.round,
    proposed: BigInt(s.proposed),
    accepted: BigInt(s.accepted),
    correctProposed: BigInt(s.correctProposed),
    correctAccepted: BigInt(s.correctAccepted),
    votes: BigInt(s.votes),
    agreeingVotes: BigInt(s.agreeingVotes),
  };
}

/** What formed a checkpoint, for `LineageResponse.entries`. */
export function toLineageEntry(record: CheckpointRecord): MessageInitShape<typeof LineageEntrySchema> {
  const s = summarizeManifest(record);
  return {
    version: BigInt(record.version),
    rounds: s.rounds,
    sampleCount: BigInt(Math.max(0, Math.round(s.sampleCount))),
    sampleIdsDigest: s.sampleIdsDigest,
    syntheticCount: BigInt(Math.max(0, Math.round(s.syntheticCount))),
    realCount: BigInt(Math.max(0, Math.round(s.realCount))),
    criticVotes: s.criticVotes,
    samplesProposed: BigInt(Math.max(0, Math.round(s.samplesProposed))),
    samplesAccepted: BigInt(Math.max(0, Math.round(s.samplesAccepted))),
  };
}

/** A stored evaluation as the wire `Evaluation`. */
export function toEvaluation(e: StoredEvaluation): MessageInitShape<typeof EvaluationSchema> {
  const at = ts(e.evaluatedAt);
  return {
    version: BigInt(e.version),
    lineage: e.lineage,
    task: e.task,
    ...(at ? { evaluatedAt: at } : {}),
    perDifficulty: e.perDifficulty.map((d) => ({ difficulty: d.difficulty, count: BigInt(d.count), accuracy: d.accuracy, loss: d.loss, calibrationEce: d.calibrationEce })),
    accuracy: e.accuracy,
    loss: e.loss,
    calibrationEce: e.calibrationEce,
    overconfidentWrongRate: e.overconfidentWrongRate,
    distinctN: Object.fromEntries(Object.entries(e.distinctN).map(([k, v]) => [Number(k), v])),
    tokenEntropy: e.tokenEntropy,
    tailCoverage: e.tailCoverage,
    driftKl: e.driftKl,
    labelAccuracy: e.labelAccuracy,
    alarms: e.alarms.map((a) => ({
      kind: a.kind,
      metric: a.metric,
      value: a.value,
      threshold: a.threshold,
      severity: a.severity === "critical" ? AlarmSeverity.CRITICAL : AlarmSeverity.WARNING,
      message: `${a.stage} collapse: ${a.message}`,
      difficulty: a.difficulty,
    })),
    baselineVersion: BigInt(e.baselineVersion),
    evalSetDigest: e.evalSetDigest,
    durationMs: e.durationMs,
    ...(e.taskIdentity ? { taskIdentity: e.taskIdentity } : {}),
  };
}

/** A gate outcome as the wire `GateResult`. */
export function toGateResult(g: GateOutcome): MessageInitShape<typeof GateResultSchema> {
  return { passed: g.passed, reasons: g.reasons, policyVersion: BigInt(g.policyVersion) };
}

/** A gating policy as the wire message. */
export function toGatingPolicy(p: GatePolicy): MessageInitShape<typeof GatingPolicySchema> {
  const at = ts(p.updatedAt);
  return {
    version: BigInt(p.version),
    minAccuracyDelta: p.minAccuracyDelta,
    maxDifficultyRegression: p.maxDifficultyRegression,
    maxCalibrationEce: p.maxCalibrationEce,
    maxOverconfidentWrongRate: p.maxOverconfidentWrongRate,
    minDiversityRatio: p.minDiversityRatio,
    minTailCoverage: p.minTailCoverage,
    maxDriftKl: p.maxDriftKl,
    autoPromote: p.autoPromote,
    autoRollback: p.autoRollback,
    note: p.note,
    ...(at ? { updatedAt: at } : {}),
  };
}

/** The wire gating policy as the plain form (version and time are assigned by the store). */
export function fromGatingPolicy(p: GatingPolicy): Omit<GatePolicy, "version" | "updatedAt"> {
  return {
    minAccuracyDelta: p.minAccuracyDelta,
    maxDifficultyRegression: p.maxDifficultyRegression,
    maxCalibrationEce: p.maxCalibrationEce,
    maxOverconfidentWrongRate: p.maxOverconfidentWrongRate,
    minDiversityRatio: p.minDiversityRatio,
    minTailCoverage: p.minTailCoverage,
    maxDriftKl: p.maxDriftKl,
    autoPromote: p.autoPromote,
    autoRollback: p.autoRollback,
    note: p.note,
  };
}

/** Exported for symmetry with {@link ts}: a wire timestamp as ISO text ("" when unset). */
export function isoOf(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toISOString() : "";
}
