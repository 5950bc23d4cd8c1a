export { createConsensusPolicy, policyToSpec } from "./policy.js";
export type { ConsensusKind, ConsensusPolicy, ConsensusPolicySpec, TimeoutPolicy, WeightedBasis } from "./policy.js";
export { evaluateVotes, tallyVotes } from "./evaluate.js";
export type { ConsensusEvaluation, DecisionOutcomeKind, EvaluationClock, Vote, VoteTally } from "./evaluate.js";
