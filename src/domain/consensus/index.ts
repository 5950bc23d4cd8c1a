/**
 * Consensus: versioned policies, the pure vote evaluation (`evaluateVotes`), agreement metrics,
 * the policy store in the registry bucket, and the consensus worker that turns verdicts into
 * exactly one decision per sample over JetStream + KV compare-and-set.
 */
export { createConsensusPolicy, policyToSpec } from "./policy.js";
export type { ConsensusKind, ConsensusPolicy, ConsensusPolicySpec, TimeoutPolicy, WeightedBasis } from "./policy.js";
export { evaluateVotes, tallyVotes } from "./evaluate.js";
export type { ConsensusEvaluation, DecisionOutcomeKind, EvaluationClock, Vote, VoteTally } from "./evaluate.js";
export { agreementReport, agreementToProto, createAgreementWindow, criticStats, fleissKappa, pairwiseAgreement } from "./agreement.js";
export type { AgreementReport, AgreementWindow, CriticStats, JudgedSample, PairStats } from "./agreement.js";
export { policyFromProto, policyToProto } from "./policy-proto.js";
export { createConsensusWorker } from "./worker.js";
export type { ConsensusWorker, ConsensusWorkerOptions, ConsensusWorkerStats, PolicyProvider } from "./worker.js";
export { judgedSampleFromDecision } from "./worker.js";
export { consensusInstruments } from "./metrics.js";
export type { ConsensusInstruments } from "./metrics.js";
export { openPolicyStore } from "./policy-store.js";
export type { PolicyStore } from "./policy-store.js";
