// Model serving shared by the generator and the critics: one swappable model per service, loaded from a
// folder or a registry checkpoint, validated before it serves, and named in every result.
export { createModelHolder } from "./model-holder.js";
export type { LoadedModel, ModelHolder, ModelHolderOptions, SwapResult } from "./model-holder.js";
export { loadDecoderModel, validateDecoderModel } from "./decoder-model.js";
export type { LoadDecoderOptions } from "./decoder-model.js";
export { CLASSIFIER_SIGNATURE, checkClassifierSignature, loadClassifierModel, validateClassifierModel } from "./classifier-model.js";
export type { ClassifierModel } from "./classifier-model.js";
export { checkpointVersion, parseModelRef, resolveModelSource, servedModel } from "./model-source.js";
export type { CheckpointFetcher, ModelSource } from "./model-source.js";
export { linkRegistry } from "./registry-link.js";
export type { PromotedRegistry } from "./registry-link.js";
export { followPromoted } from "./follow-promoted.js";
export type { FollowPromotedOptions } from "./follow-promoted.js";
export { readModelRefFile, watchModelRefFile } from "./model-ref-file.js";
export type { WatchModelRefFileOptions } from "./model-ref-file.js";
export { loadPolicyValueServing, validatePolicyValueModel } from "./policy-value-model.js";
export type { PolicyValueModel } from "./policy-value-model.js";
