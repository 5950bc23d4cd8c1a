export { generatorOptions, generatorService } from "./generator-service.js";
export { createProposer, MAX_GENERATE_COUNT } from "./proposer.js";
export type { Proposer, ProposeLoopOptions, ProposeRequest, ProposerOptions, ProposerStats } from "./proposer.js";
