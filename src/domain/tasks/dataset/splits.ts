import { hash } from "node:crypto";
import { Code } from "../../../platform/errors/index.js";
import { rowsError, type DatasetRow, type RowProblem } from "./rows.js";

/** The named splits of a data-set pack, in the order errors and summaries list them. */
export const DATASET_SPLITS = Object.freeze(["anchor", "validation", "test", "pool"] as const);

/**
 * A split's role: `anchor` (labelled, trains), `validation` and `test` (labelled, held out: never
 * trained on, never proposed from), `pool` (unlabelled prompts the generator proposes from).
 */
export type DatasetSplit = (typeof DATASET_SPLITS)[number];

/** Splits that must carry an answer on every row. */
export const LABELLED_SPLITS: ReadonlySet<DatasetSplit> = new Set(["anchor", "validation", "test"]);

/** Rows of every split (a missing split is empty). */
export type DatasetSplitRows = { readonly [S in DatasetSplit]?: readonly DatasetRow[] };

/** A checked row: its prompt, its difficulty and its normalized answer (labelled splits). */
export interface CheckedRow {
  readonly prompt: string;
  readonly answer?: string;
  readonly difficulty: number;
  readonly source: string;
}

/**
 * Content hash of a prompt (sha256 hex): what "the same problem" means across splits. Disjointness is
 * checked on the prompt's exact content — as a map key, which is the same test as comparing the hashes
 * without hashing every row of a large data set.
 */
export function promptHash(prompt: string): string {
  // One-shot crypto.hash: the same digest as createHash, several times faster on large data sets.
  return hash("sha256", prompt, "hex");
}

/** What {@link checkSplits} needs from the pack: answer normalization and the difficulty rule. */
export interface SplitRules {
  /** Canonical form of an answer (the pack's `normalize`). */
  normalizeAnswer(answer: string): string;
  /** Difficulty of a row that has none. */
  difficultyOf(prompt: string, answer: string | undefined): number;
}

/**
 * Checks every split and returns its rows with difficulties. Refuses, naming the rows
 * (`file:line`): labelled rows without an answer (or whose answer normalizes to nothing), rows whose
 * difficulty cannot be computed, and the same prompt (by content hash) twice — within a split or across
 * splits. Pool rows may carry an answer: it is kept apart as ground truth only (never trained on).
 */
export function checkSplits(splits: DatasetSplitRows, rules: SplitRules): Record<DatasetSplit, CheckedRow[]> {
  const problems: RowProblem[] = [];
  const out = { anchor: [], validation: [], test: [], pool: [] } as Record<DatasetSplit, CheckedRow[]>;
  for (const split of DATASET_SPLITS) {
    for (const row of splits[split] ?? []) {
      const checked = checkRow(row, split, rules);
      if ("reason" in checked) problems.push(checked);
      else out[split].push(checked);
    }
  }
  if (problems.length > 0) throw rowsError("data set: malformed rows", problems);
  const duplicates = findDuplicates(out);
  if (duplicates.length > 0) throw rowsError("data set: the same prompt appears more than once (splits must be disjoint)", duplicates, Code.FailedPrecondition);
  return out;
}

function checkRow(row: DatasetRow, split: DatasetSplit, rules: SplitRules): CheckedRow | RowProblem {
  const labelled = LABELLED_SPLITS.has(split);
  let answer: string | undefined;
  if (row.answer !== undefined) {
    answer = rules.normalizeAnswer(row.answer);
    if (labelled && answer === "") return { source: row.source, reason: `${split} row's answer is empty after normalization` };
  } else if (labelled) {
    return { source: row.source, reason: `${split} rows need an answer` };
  }
  let difficulty = row.difficulty;
  if (difficulty === undefined) {
    try {
      difficulty = rules.difficultyOf(row.prompt, answer);
    } catch (err) {
      return { source: row.source, reason: `cannot compute its difficulty: ${(err as Error).message}` };
    }
    if (!Number.isInteger(difficulty)) return { source: row.source, reason: `difficulty rule returned ${difficulty}, not an integer` };
  }
  return answer !== undefined ? { prompt: row.prompt, answer, difficulty, source: row.source } : { prompt: row.prompt, difficulty, source: row.source };
}

/** Every row whose prompt (content) was already seen, naming both rows and their splits. */
function findDuplicates(splits: Record<DatasetSplit, CheckedRow[]>): RowProblem[] {
  const seen = new Map<string, { split: DatasetSplit; source: string }>();
  const problems: RowProblem[] = [];
  for (const split of DATASET_SPLITS) {
    for (const row of splits[split]) {
      const first = seen.get(row.prompt);
      if (first === undefined) {
        seen.set(row.prompt, { split, source: row.source });
        continue;
      }
      const where = first.split === split ? `again in ${split}` : `in ${split}, already in ${first.split}`;
      problems.push({ source: row.source, reason: `prompt ${JSON.stringify(clip(row.prompt))} ${where} at ${first.source}` });
    }
  }
  return problems;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
