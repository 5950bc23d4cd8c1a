import type { Bus } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { checkKeyToken, checkVersion, registryKeys, RegistryStores } from "./bucket.js";

/**
 * What consensus decided in one round of one task, judged against the verifier (ground truth the
 * critics did not use): how much was accepted, how clean the accepted and the proposed labels were,
 * and how often a critic's vote agreed with the decision. The monitor writes it; clients read it
 * through the monitor's GetRoundStats.
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

/** The zero statistics of a round nothing was recorded for yet. */
export function emptyRoundStats(task: string, round: number): RoundStats {
  return { task, round, proposed: 0, accepted: 0, correctProposed: 0, correctAccepted: 0, votes: 0, agreeingVotes: 0 };
}

/** What the registry needs to know of an evaluation to key it; its content is the monitor's. */
export interface EvaluationRecordKey {
  readonly lineage: string;
  readonly version: number;
}

/** What the registry needs to know of a gate policy: its version (compare-and-set by the owner of its content). */
export interface GatePolicyRecordKey {
  readonly version: number;
}

/**
 * The monitor's key spaces of the registry: evaluations (`monitor.evaluation.<lineage>.<version>`),
 * the gating policy (`monitor.gating-policy`) and round statistics (`monitor.rounds.<task>.<round>`).
 * The monitor's process is their only writer (the permissions say so); everyone else asks the
 * monitor's RPCs. The evaluation and policy contents are typed by the monitor (`E`, `P`).
 */
export interface MonitorRecords<E extends EvaluationRecordKey, P extends GatePolicyRecordKey> {
  getEvaluation(lineage: string, version: number): Promise<E | undefined>;
  /** Stores (replaces) the evaluation of `evaluation.lineage@evaluation.version`. */
  putEvaluation(evaluation: E): Promise<void>;
  /** The stored gating policy with its revision, or undefined when never set. */
  getGatePolicy(): Promise<{ policy: P; revision: number } | undefined>;
  /** Writes the gating policy: creates it when `revision` is 0, else compare-and-set on `revision`. */
  putGatePolicy(policy: P, revision: number): Promise<number>;
  /** The stored arena policy (game gates) with its revision, or undefined when never set. */
  getArenaPolicy<A extends GatePolicyRecordKey>(): Promise<{ policy: A; revision: number } | undefined>;
  /** Writes the arena policy: creates it when `revision` is 0, else compare-and-set on `revision`. */
  putArenaPolicy<A extends GatePolicyRecordKey>(policy: A, revision: number): Promise<number>;
  getRoundStats(task: string, round: number): Promise<RoundStats | undefined>;
  /** Read-modify-write of one round's statistics with compare-and-set (zeros when none yet). */
  updateRoundStats(task: string, round: number, update: (stats: RoundStats) => void): Promise<RoundStats>;
  /** Every stored round's statistics of a task, by round. */
  listRoundStats(task: string): Promise<Map<number, RoundStats>>;
}

function checkRound(round: number): number {
  if (!Number.isSafeInteger(round) || round < 0) throw new AutodidactError(`invalid round ${round}: rounds are integers from 0`, Code.InvalidArgument);
  return round;
}

/** Opens the monitor's records in the registry on a bus. */
export function openMonitorRecords<E extends EvaluationRecordKey, P extends GatePolicyRecordKey>(bus: Bus): MonitorRecords<E, P> {
  const stores = new RegistryStores(bus);
  const evaluationKey = (lineage: string, version: number): string =>
    registryKeys.evaluation(checkKeyToken("lineage", lineage), checkVersion(version));
  const roundKey = (task: string, round: number): string => registryKeys.roundStats(checkKeyToken("task", task), checkRound(round));
  return {
    async getEvaluation(lineage, version) {
      return (await (await stores.kv()).getJson<E>(evaluationKey(lineage, version)))?.value ?? undefined;
    },
    async putEvaluation(evaluation) {
      await (await stores.kv()).putJson(evaluationKey(evaluation.lineage, evaluation.version), evaluation);
    },
    async getGatePolicy() {
      const entry = await (await stores.kv()).getJson<P>(registryKeys.gatePolicy());
      return entry === null ? undefined : { policy: entry.value, revision: entry.revision };
    },
    async putGatePolicy(policy, revision) {
      const kv = await stores.kv();
      return revision === 0 ? await kv.createJson(registryKeys.gatePolicy(), policy) : await kv.updateJson(registryKeys.gatePolicy(), policy, revision);
    },
    async getArenaPolicy<A extends GatePolicyRecordKey>() {
      const entry = await (await stores.kv()).getJson<A>(registryKeys.arenaPolicy());
      return entry === null ? undefined : { policy: entry.value, revision: entry.revision };
    },
    async putArenaPolicy(policy, revision) {
      const kv = await stores.kv();
      return revision === 0 ? await kv.createJson(registryKeys.arenaPolicy(), policy) : await kv.updateJson(registryKeys.arenaPolicy(), policy, revision);
    },
    async getRoundStats(task, round) {
      return (await (await stores.kv()).getJson<RoundStats>(roundKey(task, round)))?.value ?? undefined;
    },
    async updateRoundStats(task, round, update) {
      const result = await (await stores.kv()).modify<RoundStats>(roundKey(task, round), (current) => {
        const stats = current ?? emptyRoundStats(task, round);
        update(stats);
        return stats;
      });
      return result.value!;
    },
    async listRoundStats(task) {
      const kv = await stores.kv();
      const out = new Map<number, RoundStats>();
      for (const key of await kv.keys(registryKeys.roundStatsOf(checkKeyToken("task", task)))) {
        const v = (await kv.getJson<RoundStats>(key))?.value;
        if (v) out.set(v.round, v);
      }
      return out;
    },
  };
}
