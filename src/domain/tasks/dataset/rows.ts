import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { AutodidactError, Code } from "../../../platform/errors/index.js";

/**
 * One row of a data-set pack as read from a file (or built in memory): a prompt, an optional answer,
 * an optional difficulty, and where it came from (`file:line`, or `file:row N` for Parquet), so every
 * error about a row can name it.
 */
export interface DatasetRow {
  readonly prompt: string;
  readonly answer?: string;
  readonly difficulty?: number;
  /** `anchor.jsonl:12`: the row's origin, quoted by every error about it. */
  readonly source: string;
}

/** Which field of a record holds the prompt, the answer and the difficulty. Defaults: `prompt`, `answer`, `difficulty`. */
export interface DatasetColumns {
  readonly prompt?: string;
  readonly answer?: string;
  readonly difficulty?: string;
}

/** A problem with one row, reported with the row's origin (file:line). */
export interface RowProblem {
  readonly source: string;
  readonly reason: string;
}

/** How many row problems one error lists before it summarizes the rest. */
export const MAX_LISTED_PROBLEMS = 20;

/**
 * One error for many bad rows: every problem is listed (up to {@link MAX_LISTED_PROBLEMS}), so a user
 * fixes a file in one pass instead of one line per run. `details.rows` carries the `file:line` list.
 */
export function rowsError(what: string, problems: readonly RowProblem[], code: Code = Code.InvalidArgument): AutodidactError {
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  ${p.source}: ${p.reason}`);
  const more = problems.length > MAX_LISTED_PROBLEMS ? [`  … and ${problems.length - MAX_LISTED_PROBLEMS} more`] : [];
  return new AutodidactError(`${what} (${problems.length} row${problems.length === 1 ? "" : "s"}):\n${[...listed, ...more].join("\n")}`, code, {
    details: { rows: problems.map((p) => p.source).join(",") },
  });
}

/**
 * Turns one decoded record into a {@link DatasetRow}, or a reason it is malformed. Empty or non-string
 * prompts, non-string answers and non-integer difficulties are malformed; absent fields are not.
 */
export function rowFromRecord(record: unknown, source: string, columns: DatasetColumns = {}): DatasetRow | RowProblem {
  if (record === null || typeof record !== "object" || Array.isArray(record)) return { source, reason: "not an object" };
  const r = record as Record<string, unknown>;
  const pCol = columns.prompt ?? "prompt";
  const aCol = columns.answer ?? "answer";
  const dCol = columns.difficulty ?? "difficulty";
  const prompt = r[pCol];
  if (typeof prompt !== "string") return { source, reason: `"${pCol}" must be a string, got ${describe(prompt)}` };
  if (prompt.length === 0) return { source, reason: `"${pCol}" is empty` };
  const answer = r[aCol];
  if (answer !== undefined && answer !== null && typeof answer !== "string") return { source, reason: `"${aCol}" must be a string, got ${describe(answer)}` };
  let difficulty = r[dCol];
  if (typeof difficulty === "bigint") difficulty = Number(difficulty);
  if (difficulty !== undefined && difficulty !== null && !(typeof difficulty === "number" && Number.isInteger(difficulty))) {
    return { source, reason: `"${dCol}" must be an integer, got ${describe(difficulty)}` };
  }
  const row: { prompt: string; source: string; answer?: string; difficulty?: number } = { prompt, source };
  if (typeof answer === "string") row.answer = answer;
  if (typeof difficulty === "number") row.difficulty = difficulty;
  return row;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  const text = typeof v === "bigint" ? `${v}n` : JSON.stringify(v);
  return `${typeof v} ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}

/** Whether a parsed value is a row (not a problem). */
export function isRow(v: DatasetRow | RowProblem): v is DatasetRow {
  return "prompt" in v;
}

/**
 * Rows of a JSON Lines text: one object per non-blank line. Every malformed line is collected and
 * reported together with its line number (never skipped): InvalidArgument naming `name:line`.
 */
export function parseJsonLines(text: string, name: string, columns: DatasetColumns = {}): DatasetRow[] {
  const rows: DatasetRow[] = [];
  const problems: RowProblem[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    const source = `${name}:${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      problems.push({ source, reason: `not valid JSON (${(err as Error).message})` });
      return;
    }
    const parsed = rowFromRecord(record, source, columns);
    if (isRow(parsed)) rows.push(parsed);
    else problems.push(parsed);
  });
  if (problems.length > 0) throw rowsError(`${name}: malformed rows`, problems);
  return rows;
}

/** Rows of a Parquet file's records (row numbers from 1 in errors), through hyparquet. */
export async function readParquetRows(path: string, name: string, columns: DatasetColumns = {}): Promise<DatasetRow[]> {
  let records: Record<string, unknown>[];
  try {
    records = (await parquetReadObjects({ file: await asyncBufferFromFile(path) })) as Record<string, unknown>[];
  } catch (cause) {
    throw new AutodidactError(`${name}: not a readable Parquet file: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
  const rows: DatasetRow[] = [];
  const problems: RowProblem[] = [];
  records.forEach((record, i) => {
    const parsed = rowFromRecord(record, `${name}:row ${i + 1}`, columns);
    if (isRow(parsed)) rows.push(parsed);
    else problems.push(parsed);
  });
  if (problems.length > 0) throw rowsError(`${name}: malformed rows`, problems);
  return rows;
}

/**
 * Reads a data file by extension: `.jsonl` / `.ndjson` (JSON Lines) or `.parquet`. `name` is how errors
 * spell the file (default: its base name). NotFound when it cannot be read; InvalidArgument for an
 * unknown extension or malformed rows.
 */
export async function readDatasetFile(path: string, options: { readonly columns?: DatasetColumns; readonly name?: string } = {}): Promise<DatasetRow[]> {
  const name = options.name ?? basename(path);
  const ext = extname(path).toLowerCase();
  if (ext === ".parquet") return await readParquetRows(path, name, options.columns);
  if (ext !== ".jsonl" && ext !== ".ndjson") {
    throw new AutodidactError(`${name}: unknown data file type "${ext}" (use .jsonl, .ndjson or .parquet)`, Code.InvalidArgument);
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new AutodidactError(`cannot read data file ${path}: ${(cause as Error).message}`, Code.NotFound, { cause });
  }
  return parseJsonLines(text, name, options.columns);
}
