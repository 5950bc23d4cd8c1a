export { createConsensusPolicy, policyToSpec } from "./policy.js";
export type { ConsensusKind, ConsensusPolicy, ConsensusPolicySpec, TimeoutPolicy, WeightedBasis } from "./policy.js";
export { evaluateVotes, tallyVotes } from "./evaluate.js";
export type { ConsensusEvaluation, DecisionOutcomeKind, EvaluationClock, Vote, VoteTally } from "./evaluate.js";
export { agreementReport, createAgreementWindow, criticStats, fleissKappa, pairwiseAgreement } from "./agreement.js";
export type { AgreementReport, AgreementWindow, CriticStats, JudgedSample, PairStats } from "./agreement.js";
export { policyFromProto, policyToProto } from "./policy-proto.js";
export { createConsensusWorker } from "./worker.js";
export type { ConsensusWorker, ConsensusWorkerOptions, ConsensusWorkerStats, PolicyProvider } from "./worker.js";
