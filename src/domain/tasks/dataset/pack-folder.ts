import { readFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AutodidactError, Code } from "../../../platform/errors/index.js";
import { hfTokenizerSpec, type CharTokenizerSpec, type TaskTokenizerSpec } from "../tokenizer-spec.js";
import { defineDatasetPack, DATASET_SPECIALS, type AnswerWhitespace, type DatasetPack, type DatasetPackDefinition } from "./dataset-pack.js";
import { readDatasetFile, type DatasetColumns, type DatasetRow } from "./rows.js";
import { DATASET_SPLITS, type DatasetSplit } from "./splits.js";

/** File name of a data-set pack folder's manifest. */
export const PACK_MANIFEST = "pack.json";

/**
 * `pack.json`: what a folder-backed data-set pack declares. Paths are relative to the folder and may
 * not leave it. Each split names one file or a list (`.jsonl`, `.ndjson`, `.parquet`).
 */
export interface PackManifest {
  readonly name: string;
  readonly version?: string;
  readonly description?: string;
  readonly splits: { readonly [S in DatasetSplit]?: string | readonly string[] };
  readonly columns?: DatasetColumns;
  /** Difficulty of rows without one: `prompt-length` (characters, default) or `prompt-words`. */
  readonly difficulty?: "prompt-length" | "prompt-words";
  /**
   * `{ "alphabet": [...] }` fixes the character set (special tokens `<pad>`, `<bos>`, `<eos>`);
   * `{ "file": "tokenizer.json" }` names a Hugging Face tokenizer (BPE, WordPiece, Unigram), its special
   * tokens found by name or given as `"eos"`, `"pad"`, `"bos"` (a tokenizer without bos works).
   * Default: characters derived from the data.
   */
  readonly tokenizer?: { readonly alphabet?: readonly string[]; readonly file?: string; readonly eos?: string; readonly pad?: string; readonly bos?: string };
  readonly answerWhitespace?: AnswerWhitespace;
  readonly heldOutSize?: number;
}

/** Code-side additions to a folder pack (rules data cannot express); they override the manifest. */
export type DatasetFolderOverrides = Partial<Omit<DatasetPackDefinition, "name" | "splits">>;

const DIFFICULTY_RULES: Record<NonNullable<PackManifest["difficulty"]>, (prompt: string) => number> = {
  "prompt-length": (p) => [...p].length,
  "prompt-words": (p) => p.trim().split(/\s+/).filter(Boolean).length,
};

const KEYS = new Set(["name", "version", "description", "splits", "columns", "difficulty", "tokenizer", "answerWhitespace", "heldOutSize"]);

/** Validates a parsed `pack.json`; InvalidArgument naming the file and the field. */
export function parseManifest(value: unknown, file: string): PackManifest {
  const fail = (what: string): never => {
    throw new AutodidactError(`${file}: ${what}`, Code.InvalidArgument);
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail("must be a JSON object");
  const m = value as Record<string, unknown>;
  for (const k of Object.keys(m)) if (!KEYS.has(k)) fail(`unknown field "${k}" (known: ${[...KEYS].join(", ")})`);
  if (typeof m.name !== "string") fail(`"name" must be a string`);
  if (m.splits === null || typeof m.splits !== "object" || Array.isArray(m.splits)) fail(`"splits" must be an object of split → file(s)`);
  for (const [k, v] of Object.entries(m.splits as object)) {
    if (!(DATASET_SPLITS as readonly string[]).includes(k)) fail(`unknown split "${k}" (splits: ${DATASET_SPLITS.join(", ")})`);
    const files = typeof v === "string" ? [v] : v;
    if (!Array.isArray(files) || files.some((f) => typeof f !== "string")) fail(`split "${k}" must name a file or a list of files`);
  }
  if (m.difficulty !== undefined && !(typeof m.difficulty === "string" && m.difficulty in DIFFICULTY_RULES)) {
    fail(`"difficulty" must be one of ${Object.keys(DIFFICULTY_RULES).join(", ")}`);
  }
  if (m.tokenizer !== undefined && (m.tokenizer === null || typeof m.tokenizer !== "object" || Array.isArray(m.tokenizer))) fail(`"tokenizer" must be an object ({ "file": "tokenizer.json" } or { "alphabet": [...] })`);
  if (m.answerWhitespace !== undefined && m.answerWhitespace !== "collapse" && m.answerWhitespace !== "remove") fail(`"answerWhitespace" must be "collapse" or "remove"`);
  if (m.heldOutSize !== undefined && !(Number.isInteger(m.heldOutSize) && (m.heldOutSize as number) > 0)) fail(`"heldOutSize" must be a positive integer`);
  return m as unknown as PackManifest;
}

/** A path inside the pack folder; InvalidArgument when it escapes it (`..`, absolute). */
function inside(dir: string, file: string, manifest: string): string {
  const full = resolve(dir, file);
  const rel = relative(dir, full);
  if (isAbsolute(file) || rel.startsWith("..") || isAbsolute(rel)) {
    throw new AutodidactError(`${manifest}: data file "${file}" is outside the pack folder`, Code.InvalidArgument);
  }
  return full;
}

/** The tokenizer a manifest names: an alphabet, a `tokenizer.json` in the folder, or none (derived from the data). */
async function manifestTokenizer(dir: string, m: PackManifest, manifestPath: string): Promise<TaskTokenizerSpec | undefined> {
  const t = m.tokenizer;
  if (t === undefined) return undefined;
  if (t.file !== undefined && t.alphabet !== undefined) throw new AutodidactError(`${manifestPath}: tokenizer names both "file" and "alphabet"`, Code.InvalidArgument);
  if (t.alphabet !== undefined) return { kind: "char", alphabet: t.alphabet, special: DATASET_SPECIALS } satisfies CharTokenizerSpec;
  if (t.file === undefined) return undefined;
  const path = inside(dir, t.file, manifestPath);
  try {
    const json = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    return hfTokenizerSpec(json, { ...(t.eos ? { eos: t.eos } : {}), ...(t.pad ? { pad: t.pad } : {}), ...(t.bos ? { bos: t.bos } : {}) });
  } catch (cause) {
    throw new AutodidactError(`${path}: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
}

/**
 * Loads a data-set pack from a folder holding `pack.json` and the files it names (a path or a
 * `file:` URL, e.g. `new URL("./my-pack", import.meta.url)` from a task module). `overrides` adds the
 * rules only code can give (a difficulty function, format checks, rare slices).
 */
export async function loadDatasetPack(folder: string | URL, overrides: DatasetFolderOverrides = {}): Promise<DatasetPack> {
  const dir = resolve(typeof folder === "string" ? folder : fileURLToPath(folder));
  const manifestPath = join(dir, PACK_MANIFEST);
  let text: string;
  try {
    text = await readFile(manifestPath, "utf8");
  } catch (cause) {
    throw new AutodidactError(`cannot read ${manifestPath}: ${(cause as Error).message}`, Code.NotFound, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new AutodidactError(`${manifestPath} is not valid JSON: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
  const m = parseManifest(json, manifestPath);
  const splits: Partial<Record<DatasetSplit, DatasetRow[]>> = {};
  for (const split of DATASET_SPLITS) {
    const named = m.splits[split];
    if (named === undefined) continue;
    const files = typeof named === "string" ? [named] : named;
    const rows: DatasetRow[] = [];
    for (const f of files) rows.push(...(await readDatasetFile(inside(dir, f, manifestPath), { name: f, ...(m.columns ? { columns: m.columns } : {}) })));
    splits[split] = rows;
  }
  const tokenizer = await manifestTokenizer(dir, m, manifestPath);
  const difficulty = m.difficulty ? DIFFICULTY_RULES[m.difficulty] : undefined;
  return defineDatasetPack({
    name: m.name,
    splits,
    ...(m.version !== undefined ? { version: m.version } : {}),
    ...(m.description !== undefined ? { description: m.description } : {}),
    ...(tokenizer ? { tokenizer } : {}),
    ...(difficulty ? { difficulty } : {}),
    ...(m.answerWhitespace ? { answerWhitespace: m.answerWhitespace } : {}),
    ...(m.heldOutSize ? { heldOutSize: m.heldOutSize } : {}),
    ...overrides,
  });
}
