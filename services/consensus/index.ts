/**
 * The consensus service: the worker that turns verdicts into exactly one decision per sample over
 * JetStream and the consensus KV bucket (compare-and-set), the process that runs it, and the
 * decision audit that checks exactly-once from what was published rather than from the stream.
 */
export { consensusOptions, consensusService } from "./consensus-service.js";
export { createConsensusWorker } from "./worker.js";
export type { ConsensusWorker, ConsensusWorkerOptions, ConsensusWorkerStats, PolicyProvider } from "./worker-options.js";
export { DecisionAudit } from "./decision-audit.js";
export type { DecisionAuditReport, LedgerComparison } from "./decision-audit.js";
export { consensusInstruments } from "./metrics.js";
export type { ConsensusInstruments } from "./metrics.js";
