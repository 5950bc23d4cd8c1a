/**
 * Consensus facts shared by several services: versioned policies, the pure vote evaluation
 * (`evaluateVotes`), agreement metrics, and the policy store in the registry bucket. The worker
 * that turns verdicts into exactly one decision per sample lives in `services/consensus`.
 */
export { createConsensusPolicy, policyToSpec } from "./policy.js";
export type { ConsensusKind, ConsensusPolicy, ConsensusPolicySpec, TimeoutPolicy, WeightedBasis } from "./policy.js";
export { evaluateVotes, tallyVotes } from "./evaluate.js";
export type { ConsensusEvaluation, DecisionOutcomeKind, EvaluationClock, Vote, VoteTally } from "./evaluate.js";
export { agreementReport, agreementToProto, createAgreementWindow, criticStats, fleissKappa, judgedSampleFromDecision, pairwiseAgreement } from "./agreement.js";
export type { AgreementReport, AgreementWindow, CriticStats, JudgedSample, PairStats } from "./agreement.js";
export { policyFromProto, policyToProto } from "./policy-proto.js";
export { openPolicyStore } from "./policy-store.js";
export type { PolicyProvider, PolicyStore } from "./policy-store.js";
