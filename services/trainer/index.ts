// The trainer service: intake of accepted decisions, rounds of LoRA/full fine-tuning mixed with real anchor data, checkpoints.
export { trainerOptions, trainerService, trainingDefaultsOf } from "./trainer-service.js";
export { resolveTraining, TRAINING_RANGES } from "./training-config.js";
export type { ResolvedTraining, TrainingDefaults } from "./training-config.js";
export { anchorsPerBatch, buildMix } from "./mix.js";
export type { Mix, MixBatch, MixMode, MixOptions, MixSample } from "./mix.js";
export { openTrainingSet, sampleFromDecision } from "./training-set.js";
export type { StoredVote, TrainingSample, TrainingSet } from "./training-set.js";
export { openRoundJournal } from "./round-journal.js";
export type { JournalEntry, RoundJournal, RoundPlan, RoundState } from "./round-journal.js";
export { createRoundRunner } from "./rounds.js";
export type { RoundDefaults, RoundRequest, RoundRunner, RoundRunnerDeps } from "./rounds.js";
export { DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, localCheckpointDir, receiveCheckpoint, streamCheckpointFiles, transferOrder } from "./fetch-checkpoint.js";
