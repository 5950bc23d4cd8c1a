import { fromBinary } from "@bufbuild/protobuf";
import { consume, openKv, Streams, Subjects, type Bus, type ConsumerHandle } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { getTaskPack, type TaskPack } from "../../src/domain/tasks/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";

/** Registry KV key prefix of per-round decision statistics: `monitor.rounds.<task>.<round>`. */
export const ROUND_STATS_PREFIX = "monitor.rounds.";

/**
 * What consensus decided in one round of one task, judged against the verifier (ground truth the
 * critics did not use): how much was accepted, how clean the accepted and the proposed labels were,
 * and how often a critic's vote agreed with the decision.
 */
export interface RoundStats {
  readonly task: string;
  readonly round: number;
  proposed: number;
  accepted: number;
  correctProposed: number;
  correctAccepted: number;
  votes: number;
  agreeingVotes: number;
}

/** Acceptance rate, label accuracy of accepted and proposed samples, critic agreement (undefined when unknown). */
export function roundRates(s: RoundStats): { acceptanceRate?: number; labelAccuracyAccepted?: number; labelAccuracyProposed?: number; criticAgreement?: number } {
  return {
    ...(s.proposed > 0 ? { acceptanceRate: s.accepted / s.proposed, labelAccuracyProposed: s.correctProposed / s.proposed } : {}),
    ...(s.accepted > 0 ? { labelAccuracyAccepted: s.correctAccepted / s.accepted } : {}),
    ...(s.votes > 0 ? { criticAgreement: s.agreeingVotes / s.votes } : {}),
  };
}

/**
 * Follows `decisions.>` and keeps {@link RoundStats} per (task, round) in the registry KV. A message
 * redelivered after a crash mid-update may count twice (statistics, not ledger). Unknown tasks and
 * tasks without a verifier are skipped.
 */
export async function followRoundStats(bus: Bus, options: { logger?: Logger; onChange?: () => void } = {}): Promise<ConsumerHandle> {
  const kv = await openKv(bus, "registry");
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
    { stream: Streams.Decisions, durable: "monitor-round-stats", filterSubject: Subjects.allDecisions },
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
      await kv.modify<RoundStats>(`${ROUND_STATS_PREFIX}${pack.name}.${sample.round}`, (cur) => {
        const s: RoundStats = cur ?? { task: pack.name, round: sample.round, proposed: 0, accepted: 0, correctProposed: 0, correctAccepted: 0, votes: 0, agreeingVotes: 0 };
        s.proposed++;
        if (correct) s.correctProposed++;
        if (d.accepted) {
          s.accepted++;
          if (correct) s.correctAccepted++;
        }
        s.votes += d.votes.length;
        s.agreeingVotes += agreeing;
        return s;
      });
      options.onChange?.();
    },
    { maxInFlight: 1, ...(options.logger ? { logger: options.logger } : {}) },
  );
}

/** Every stored round's statistics of a task, by round. */
export async function readRoundStats(bus: Bus, task: string): Promise<Map<number, RoundStats>> {
  const kv = await openKv(bus, "registry");
  const out = new Map<number, RoundStats>();
  for (const key of await kv.keys(`${ROUND_STATS_PREFIX}${task}.*`)) {
    const v = (await kv.getJson<RoundStats>(key))?.value;
    if (v) out.set(v.round, v);
  }
  return out;
}
