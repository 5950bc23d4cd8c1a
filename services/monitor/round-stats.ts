import { fromBinary } from "@bufbuild/protobuf";
import { consume, type Bus, type ConsumerHandle } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { emptyRoundStats, openMonitorRecords, type EvaluationRecordKey, type GatePolicyRecordKey, type MonitorRecords, type RoundStats } from "../../src/domain/registry/index.js";
import { Durables } from "../../src/domain/topology/index.js";
import { getTaskPack, type TaskPack } from "../../src/domain/tasks/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";

export type { RoundStats } from "../../src/domain/registry/index.js";

/** Acceptance rate, label accuracy of accepted and proposed samples, critic agreement (undefined when unknown). */
export function roundRates(s: RoundStats): { acceptanceRate?: number; labelAccuracyAccepted?: number; labelAccuracyProposed?: number; criticAgreement?: number } {
  return {
    ...(s.proposed > 0 ? { acceptanceRate: s.accepted / s.proposed, labelAccuracyProposed: s.correctProposed / s.proposed } : {}),
    ...(s.accepted > 0 ? { labelAccuracyAccepted: s.correctAccepted / s.accepted } : {}),
    ...(s.votes > 0 ? { criticAgreement: s.agreeingVotes / s.votes } : {}),
  };
}

/** The round statistics records of the registry (the monitor is their writer). */
const roundRecords = (bus: Bus): MonitorRecords<EvaluationRecordKey, GatePolicyRecordKey> => openMonitorRecords(bus);

/**
 * Follows `decisions.>` and keeps {@link RoundStats} per (task, round) in the registry. A message
 * redelivered after a crash mid-update may count twice (statistics, not ledger). Unknown tasks and
 * tasks without a verifier are skipped.
 */
export async function followRoundStats(bus: Bus, options: { logger?: Logger; onChange?: () => void } = {}): Promise<ConsumerHandle> {
  const records = roundRecords(bus);
  const packs = new Map<string, TaskPack | null>();
  const packOf = (task: string): TaskPack | null => {
    if (!packs.has(task)) {
      try {
        packs.set(task, getTaskPack(task));
      } catch {
        packs.set(task, null);
      }
    }
    return packs.get(task) ?? null;
  };
  return consume(
    bus,
    Durables.monitorRoundStats.spec(),
    async (msg) => {
      let d;
      try {
        d = fromBinary(DecisionSchema, msg.data);
      } catch (cause) {
        throw new AutodidactError("decisions.* carries no Decision", Code.InvalidArgument, { cause });
      }
      const sample = d.sample;
      const pack = packOf(d.task || sample?.task || "");
      if (sample === undefined || pack?.verifier === undefined || sample.real) return;
      const correct = pack.verifier.check(sample.prompt, sample.completion);
      const agreeing = d.votes.filter((v) => v.approve === d.accepted).length;
      await records.updateRoundStats(pack.name, sample.round, (s) => {
        s.proposed++;
        if (correct) s.correctProposed++;
        if (d.accepted) {
          s.accepted++;
          if (correct) s.correctAccepted++;
        }
        s.votes += d.votes.length;
        s.agreeingVotes += agreeing;
      });
      options.onChange?.();
    },
    { maxInFlight: 1, ...(options.logger ? { logger: options.logger } : {}) },
  );
}

/** Every stored round's statistics of a task, by round. */
export async function readRoundStats(bus: Bus, task: string): Promise<Map<number, RoundStats>> {
  return await roundRecords(bus).listRoundStats(task);
}

/** One round's statistics of a task (zeros when nothing was recorded for it yet). */
export async function readRoundStat(bus: Bus, task: string, round: number): Promise<RoundStats> {
  return (await roundRecords(bus).getRoundStats(task, round)) ?? emptyRoundStats(task, round);
}
