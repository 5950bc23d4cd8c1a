/**
 * The registry: the only owner of the `registry` KV bucket and the `checkpoints` object store.
 * Every key space in them has its accessors here: checkpoint records, version counters and
 * promoted pointers (createRegistry), consensus policies (openConsensusPolicyRecords), and the
 * monitor's evaluations, gating policy and round statistics (openMonitorRecords). It also owns
 * the one conversion of a record to the wire `CheckpointRef` (checkpointRefOf).
 */
export { createRegistry, listCheckpointFiles, safeCheckpointPath } from "./registry.js";
export type {
  CheckpointFile,
  CheckpointRecord,
  CheckpointStatus,
  PromotedPointer,
  Registry,
  RegistryOptions,
} from "./registry.js";
export { canonicalJson, checkpointDigest, checkpointRefOf, checkpointUri, taskOf } from "./checkpoint-ref.js";
export { openConsensusPolicyRecords } from "./policy-records.js";
export type { ConsensusPolicyRecords, StoredConsensusPolicy } from "./policy-records.js";
export { emptyRoundStats, openMonitorRecords } from "./monitor-records.js";
export type { EvaluationRecordKey, GatePolicyRecordKey, MonitorRecords, RoundStats } from "./monitor-records.js";
