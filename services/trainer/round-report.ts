import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RoundEventSchema, type RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { checkpointRefOf, type CheckpointRecord } from "../../src/domain/registry/index.js";
import { taskIdentity } from "../../src/domain/tasks/index.js";
import type { RoundPlan } from "./round-journal.js";

/** A progress event of a running round (StartRound streams these before the report). */
export const progress = (phase: string, message: string, step = 0, total = 0, loss = Number.NaN): RoundEvent =>
  create(RoundEventSchema, { event: { case: "progress", value: { phase, message, step: BigInt(step), totalSteps: BigInt(total), loss } } });

/** The slice of a training manifest a round report quotes. */
interface ManifestSummary {
  mix?: { syntheticCount: number; realCount: number; realRatio: number };
  lossCurve?: { step: number; loss: number; learningRate: number; gradNorm: number }[];
  sampleCount?: number;
}

/** The report event of a finished round, from its candidates' records (the first lineage's manifest speaks for the mix). */
export function roundReport(p: RoundPlan, records: readonly CheckpointRecord[], started: Date, finished: Date): RoundEvent {
  const first = records[0];
  const m = (first?.manifest ?? {}) as ManifestSummary;
  return create(RoundEventSchema, {
    event: {
      case: "report",
      value: {
        round: p.round,
        lineage: first?.lineage ?? "",
        task: p.task,
        taskIdentity: taskIdentity(p.task),
        samplesAccepted: BigInt(p.to - p.from),
        samplesUsed: BigInt(m.sampleCount ?? 0),
        mix: {
          syntheticCount: BigInt(m.mix?.syntheticCount ?? 0),
          realCount: BigInt(m.mix?.realCount ?? 0),
          realRatio: m.mix?.realRatio ?? 0,
          anchorRatio: p.anchorRatio,
        },
        lossCurve: (m.lossCurve ?? []).map((c) => ({ step: BigInt(c.step), loss: c.loss, learningRate: c.learningRate, gradNorm: c.gradNorm })),
        candidateVersion: BigInt(first?.version ?? 0),
        baseVersion: BigInt(first?.parentVersion ?? 0),
        durationMs: finished.getTime() - started.getTime(),
        startedAt: timestampFromDate(started),
        finishedAt: timestampFromDate(finished),
        steps: BigInt(m.lossCurve?.length ?? 0),
        ...(first ? { candidate: checkpointRefOf(first) } : {}),
      },
    },
  });
}
