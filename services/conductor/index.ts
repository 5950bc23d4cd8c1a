// The conductor service: the self-improvement loop as runs (spec, rounds, events) kept in NATS and
// driven through the other services' RPCs, resumable by any conductor after a crash.
export { conductorOptions, conductorService } from "./conductor-service.js";
export { createRun } from "./handlers.js";
export { capDifficulty, probes, stepByAgreement, stepWithoutProbe } from "./curriculum.js";
export type { CurriculumStep, ProbeMeasurement, RoundFacts } from "./curriculum.js";
export { CRITIC_KINDS, MAX_PROPOSALS, normalizeRunSpec, RUN_ID, sameRunSpec } from "./run-spec.js";
export { parseRunSpec, readRunSpecFile } from "./run-spec-file.js";
export { cancelChange, isActive, newRun, pauseChange, resumeChange } from "./run-control.js";
export { finishRound, newRoundState, stopReason } from "./round-end.js";
export { PHASE_TABLE, trainingOf } from "./phases/index.js";
export { proposalPrefix, seedOf } from "./seeds.js";
export { parseAssignments } from "./peers.js";
