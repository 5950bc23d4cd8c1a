// Plain monitor data ↔ wire messages.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { CheckpointRef } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import type { GetEvaluationResponseSchema, LineageEntrySchema, RoundStatsSchema } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { AlarmSeverity, type EvaluationSchema, type GateResultSchema, type GatingPolicy, type GatingPolicySchema, type SplitEvaluationSchema } from "../../src/gen/autodidact/v1/report_pb.js";
import { FRONTIER_THRESHOLD, type DifficultyRangePlain, type DifficultyReport, type GateOutcome, type GatePolicy } from "./evaluation/index.js";
import { checkpointRefOf, type CheckpointRecord, type RoundStats } from "../../src/domain/registry/index.js";
import { summarizeManifest } from "./evaluation/index.js";
import type { SplitReport, StoredEvaluation } from "./monitor.js";

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
      // The results (test split); the gate's validation numbers are in the evaluation itself.
      eval_accuracy: evaluation.test?.accuracy ?? evaluation.accuracy,
      eval_frontier: evaluation.test?.frontier ?? 0,
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

const difficultyMetrics = (d: DifficultyReport): { difficulty: number; count: bigint; accuracy: number; loss: number; calibrationEce: number } => ({
  difficulty: d.difficulty,
  count: BigInt(d.count),
  accuracy: d.accuracy,
  loss: d.loss,
  calibrationEce: d.calibrationEce,
});

const splitEvaluation = (s: SplitReport): MessageInitShape<typeof SplitEvaluationSchema> => ({
  split: s.split,
  perDifficulty: s.perDifficulty.map(difficultyMetrics),
  accuracy: s.accuracy,
  evalSetDigest: s.evalSetDigest,
  frontier: s.frontier,
});

/**
 * A stored evaluation as the wire `Evaluation`: per-difficulty accuracy, accuracy and frontier are the
 * test split's (results); `splits` carries both splits per difficulty; the diagnostics are the gate's
 * validation evaluation.
 */
export function toEvaluation(e: StoredEvaluation): MessageInitShape<typeof EvaluationSchema> {
  const at = ts(e.evaluatedAt);
  const splits = [...(e.test ? [e.test] : []), ...(e.perDifficulty.length > 0 ? [e] : [])];
  return {
    version: BigInt(e.version),
    lineage: e.lineage,
    task: e.task,
    ...(at ? { evaluatedAt: at } : {}),
    perDifficulty: (e.test ?? e).perDifficulty.map(difficultyMetrics),
    accuracy: (e.test ?? e).accuracy,
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
    splits: splits.map(splitEvaluation),
    frontier: e.test?.frontier ?? 0,
    frontierThreshold: FRONTIER_THRESHOLD,
    labelFree: (e.labelFree ?? []).map((f) => ({ difficulty: f.difficulty, count: f.count, signal: f.signal, candidate: f.candidate, incumbent: f.incumbent })),
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
    ...(p.validation ? { validation: { ...p.validation } } : {}),
    ...(p.test ? { test: { ...p.test } } : {}),
    validationSize: p.validationSize,
    testSize: p.testSize,
    labelFreeProbeSize: p.labelFreeProbeSize,
    maxAgreementRegression: p.maxAgreementRegression,
    peerLineages: [...p.peerLineages],
  };
}

const plainRange = (r: { min: number; max: number } | undefined): DifficultyRangePlain | undefined => (r === undefined ? undefined : { min: r.min, max: r.max });

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
    ...(p.validation ? { validation: plainRange(p.validation)! } : {}),
    ...(p.test ? { test: plainRange(p.test)! } : {}),
    validationSize: p.validationSize,
    testSize: p.testSize,
    labelFreeProbeSize: p.labelFreeProbeSize,
    maxAgreementRegression: p.maxAgreementRegression,
    peerLineages: [...p.peerLineages],
  };
}

/** Exported for symmetry with {@link ts}: a wire timestamp as ISO text ("" when unset). */
export function isoOf(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toISOString() : "";
}
