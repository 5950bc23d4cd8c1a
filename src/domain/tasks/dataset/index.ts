/**
 * Data-set packs: a task defined by files (JSON Lines, Parquet) or rows instead of a generator
 * function. Splits anchor (labelled, trains), validation and test (labelled, held out) and pool
 * (unlabelled, the generator proposes from it), disjoint by prompt content hash.
 */
export { defineDatasetPack, datasetNormalizer, deriveCharTokenizer, DATASET_SPECIALS } from "./dataset-pack.js";
export type { AnswerWhitespace, DatasetHeldOutSplit, DatasetPack, DatasetPackDefinition } from "./dataset-pack.js";
export { loadDatasetPack, parseManifest, PACK_MANIFEST } from "./pack-folder.js";
export type { DatasetFolderOverrides, PackManifest } from "./pack-folder.js";
export { parseJsonLines, readDatasetFile, readParquetRows, rowFromRecord, rowsError, MAX_LISTED_PROBLEMS } from "./rows.js";
export type { DatasetColumns, DatasetRow, RowProblem } from "./rows.js";
export { checkSplits, promptHash, DATASET_SPLITS, LABELLED_SPLITS } from "./splits.js";
export type { CheckedRow, DatasetSplit, DatasetSplitRows, SplitRules } from "./splits.js";
