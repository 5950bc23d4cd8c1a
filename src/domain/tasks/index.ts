/**
 * Task packs: everything the mesh knows about a task (tokenizer spec, seeded prompt sampler,
 * anchor data, named held-out splits (validation, test) disjoint from both and from each other, answer equivalence, format rules,
 * rare slices, optional verifier). Built-ins: `addition` (reversed, Lee et al. 2025), `reverse`, and `g2p` (CMU dictionary, real data).
 */
export { createRng } from "./rng.js";
export type { Rng } from "./rng.js";
export { createTaskTokenizer, hfTokenizerSpec } from "./tokenizer-spec.js";
export type { CharTokenizerSpec, HfTokenizerSpec, TaskTokenizerSpec } from "./tokenizer-spec.js";
export { defineTaskPack, HELD_OUT_SPLITS, SMALL_SPACE_TEST_SHARE } from "./task-pack.js";
export type {
  FormatCheck,
  HeldOutSplit,
  TaskExample,
  TaskPack,
  TaskPackDefinition,
  TaskProblem,
  TaskStream,
  TaskVerifier,
} from "./task-pack.js";
export {
  ADDITION_SLICES,
  ADDITION_TOKENIZER,
  createAdditionTask,
  formatAdditionPrompt,
  parseAdditionPrompt,
  solveAddition,
} from "./addition.js";
export { REVERSE_SLICES, REVERSE_TOKENIZER, createReverseTask } from "./reverse.js";
export { createG2pTask, checkG2pFormat, G2P, G2P_SLICES, G2P_TOKENIZER, g2pAsArpabet, phonemeErrors } from "./g2p.js";
export {
  ARPABET_TO_CHAR,
  buildG2pData,
  decodeArpabet,
  encodeArpabet,
  G2P_BASE_MAX_LETTERS,
  G2P_MAX_LETTERS,
  G2P_MIN_LETTERS,
  plausiblePhonemes,
  splitOf,
} from "./g2p-data.js";
export type { G2pData, G2pEntry, G2pSplit } from "./g2p-data.js";
export { getTaskPack, listTaskPacks, registerTaskPack } from "./registry.js";
export { createPaddedAdditionTask, PADDED_ADDITION } from "./padded-addition.js";
export { ensembleVote, scoreAnswers } from "./scoring.js";
export type { AccuracyReport, EnsembleVote } from "./scoring.js";
export {
  defineDatasetPack,
  loadDatasetPack,
  readDatasetFile,
  parseJsonLines,
  promptHash,
  DATASET_SPLITS,
  PACK_MANIFEST,
} from "./dataset/index.js";
export type {
  DatasetPack,
  DatasetPackDefinition,
  DatasetRow,
  DatasetSplit,
  DatasetSplitRows,
  DatasetHeldOutSplit,
  PackManifest,
} from "./dataset/index.js";
export { recordTaskIdentity, taskIdentity, taskIdentities } from "./registry.js";
export { loadTaskModules, packFromExport, startTaskModules } from "./modules.js";
export type { TaskModuleApi, TaskModuleConfig } from "./modules.js";
export type { TaskIdentity } from "../task-modules/index.js";
export { checkTaskPack } from "./check.js";
export type { TaskCheck, TaskCheckOptions, TaskCheckReport } from "./check.js";
