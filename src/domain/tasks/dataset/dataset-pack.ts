import { createHash } from "node:crypto";
import { AutodidactError, Code } from "../../../platform/errors/index.js";
import { createRng } from "../rng.js";
import { createTaskTokenizer, type CharTokenizerSpec, type TaskTokenizerSpec } from "../tokenizer-spec.js";
import type { FormatCheck, HeldOutSplit, TaskExample, TaskPack, TaskProblem, TaskStream } from "../task-pack.js";
import { checkSplits, DATASET_SPLITS, type CheckedRow, type DatasetSplit, type DatasetSplitRows } from "./splits.js";

/** The held-out splits of a data-set pack (labelled, never trained on): the task packs' {@link HeldOutSplit}. */
export type DatasetHeldOutSplit = HeldOutSplit;

/** How whitespace in answers is canonicalized: runs become one space and ends are trimmed, or all of it goes. */
export type AnswerWhitespace = "collapse" | "remove";

/** Default special tokens of a data-set pack's character tokenizer. */
export const DATASET_SPECIALS = Object.freeze({ pad: "<pad>", bos: "<bos>", eos: "<eos>" });

/**
 * A task defined by data instead of a generator function: rows per split plus the few rules data cannot
 * give. Only `name` and `splits` are required; everything else has a documented default.
 */
export interface DatasetPackDefinition {
  readonly name: string;
  /** The pack's version (recorded with every sample, checkpoint and report). Default `0.0.0`. */
  readonly version?: string;
  readonly description?: string;
  readonly splits: DatasetSplitRows;
  /**
   * Difficulty of a row without one: a function of the prompt (and answer, when labelled). Default: the
   * prompt's length in characters. Must also answer for prompts the generator never saw in the data
   * only if such prompts reach {@link TaskPack.difficultyOf}; data prompts use their row's value.
   */
  readonly difficulty?: (prompt: string, answer: string | undefined) => number;
  /**
   * Character tokenizer, or a subword `tokenizer.json` ({@link hfTokenizerSpec}); default: every character
   * of every prompt and answer, sorted, plus `<pad>`, `<bos>`, `<eos>`. Lengths (context sizes, answer
   * limits) are counted in its tokens.
   */
  readonly tokenizer?: TaskTokenizerSpec;
  /** Default `collapse`. */
  readonly answerWhitespace?: AnswerWhitespace;
  /** Held-out examples per difficulty by default (a prefix of the split, in file order). Default 128. */
  readonly heldOutSize?: number;
  /** Extra format rules on a normalized answer (after the built-in ones: non-empty, in the vocabulary, not too long). */
  readonly checkFormat?: (prompt: string, answer: string) => FormatCheck;
  readonly sliceNames?: readonly string[];
  readonly rareSlices?: (prompt: string) => string[];
  /** Longest answer at a difficulty in tokens; default: measured on labelled rows, extrapolated beyond them. */
  readonly maxAnswerLength?: (difficulty: number) => number;
  /** Default for {@link TaskPack.lengthFilter}. Default 1. */
  readonly defaultMaxShortfall?: number;
}

/** What a data-set pack adds to a {@link TaskPack}: its rows per split, and its held-out sets by split. */
export interface DatasetPack extends TaskPack {
  readonly version: string;
  /** sha256 over every split's rows (prompt, answer, difficulty): a change of data changes it. */
  readonly dataDigest: string;
  /** Labelled examples of a held-out split at one difficulty, in file order; `size` takes a prefix. */
  heldOut(split: DatasetHeldOutSplit, difficulty: number, size?: number): readonly TaskExample[];
  /** Every row of a split as problems (pool) or examples (labelled splits), for `task check` and reports. */
  rows(split: DatasetSplit): readonly TaskProblem[];
  /** Row counts per split and difficulty. */
  counts(): Record<DatasetSplit, Map<number, number>>;
}

/** The canonical answer form of a data-set pack: end token and after cut, specials removed, whitespace per rule. */
export function datasetNormalizer(specials: CharTokenizerSpec["special"], whitespace: AnswerWhitespace): (text: string) => string {
  return (completion) => {
    const eos = completion.indexOf(specials.eos);
    const cut = eos >= 0 ? completion.slice(0, eos) : completion;
    const bare = cut.split(specials.pad).join("").split(specials.bos).join("");
    return whitespace === "remove" ? bare.replace(/\s+/g, "") : bare.replace(/\s+/g, " ").trim();
  };
}

/** The character tokenizer covering every prompt and answer of the splits. */
export function deriveCharTokenizer(splits: DatasetSplitRows, whitespace: AnswerWhitespace): CharTokenizerSpec {
  const chars = new Set<string>();
  for (const split of DATASET_SPLITS) {
    for (const row of splits[split] ?? []) {
      for (const ch of row.prompt) chars.add(ch);
      if (row.answer !== undefined) for (const ch of row.answer) if (whitespace === "collapse" || !/\s/.test(ch)) chars.add(/\s/.test(ch) ? " " : ch);
    }
  }
  return { kind: "char", alphabet: [...chars].sort(), special: DATASET_SPECIALS };
}

type Bucket = Map<number, CheckedRow[]>;

function bucket(rows: readonly CheckedRow[]): Bucket {
  const out: Bucket = new Map();
  for (const r of rows) {
    const list = out.get(r.difficulty) ?? [];
    list.push(r);
    out.set(r.difficulty, list);
  }
  return out;
}

function stream<T>(next: () => T): TaskStream<T> {
  return {
    next,
    take(count: number): T[] {
      if (!Number.isInteger(count) || count < 0) throw new AutodidactError(`count must be a non-negative integer, got ${count}`, Code.InvalidArgument);
      return Array.from({ length: count }, next);
    },
  };
}

/** A seeded walk over a list: a fresh permutation each pass, the same sequence for the same seed. */
function shuffledCycle<T>(items: readonly T[], ...seed: Array<string | number>): () => T {
  const rng = createRng(...seed);
  let order: T[] = [];
  return () => {
    if (order.length === 0) {
      order = [...items];
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [order[i], order[j]] = [order[j] as T, order[i] as T];
      }
    }
    return order.pop() as T;
  };
}

/**
 * Builds a {@link TaskPack} from rows: checks the splits (malformed rows and duplicates refused, naming
 * `file:line`), then serves anchor examples from `anchor`, generator prompts from `pool`, and held-out
 * sets from `validation` and `test`. When every pool row carries an answer, the pack has a verifier
 * (ground truth for everything the generator proposes: only the monitor and deliberately trusted
 * verifier critics read it); the answers of pool rows are never trained on or proposed from.
 */
export function defineDatasetPack(def: DatasetPackDefinition): DatasetPack {
  if (!/^[a-z0-9][a-z0-9_-]{0,47}$/.test(def.name)) {
    throw new AutodidactError(`task name ${JSON.stringify(def.name)} must match [a-z0-9][a-z0-9_-]{0,47}`, Code.InvalidArgument);
  }
  const whitespace = def.answerWhitespace ?? "collapse";
  const tokenizer = def.tokenizer ?? deriveCharTokenizer(def.splits, whitespace);
  const normalize = datasetNormalizer(tokenizer.special, whitespace);
  const difficultyRule = def.difficulty ?? ((prompt: string) => [...prompt].length);
  const rows = checkSplits(def.splits, { normalizeAnswer: normalize, difficultyOf: difficultyRule });
  const ctx = new DatasetIndex(def, rows, tokenizer);
  return buildPack(def, ctx, normalize);
}

/** Lookups over the checked rows: by split and difficulty, by prompt. */
class DatasetIndex {
  readonly bySplit: Record<DatasetSplit, Bucket>;
  readonly byPrompt = new Map<string, CheckedRow>();
  readonly difficulty: { min: number; max: number };
  /** Length of a text in the pack's tokens. */
  readonly measure: (text: string) => number;
  /** Whether the tokenizer encodes a text without unknown tokens. */
  readonly covers: (text: string) => boolean;
  readonly digest: string;
  /** Whether every pool row carries a (hidden) answer: then the pack has a verifier for everything it proposes. */
  readonly poolLabelled: boolean;
  private readonly labelledBy: Bucket;
  private readonly answerRatio: number;
  private readonly longestPrompt: number;
  private readonly answerLimits = new Map<number, number>();

  constructor(
    readonly def: DatasetPackDefinition,
    readonly rows: Record<DatasetSplit, CheckedRow[]>,
    readonly tokenizer: TaskTokenizerSpec,
  ) {
    this.bySplit = { anchor: bucket(rows.anchor), validation: bucket(rows.validation), test: bucket(rows.test), pool: bucket(rows.pool) };
    const all = DATASET_SPLITS.flatMap((s) => rows[s]);
    if (all.length === 0) throw new AutodidactError(`task ${def.name}: the data set has no rows`, Code.InvalidArgument);
    for (const r of all) this.byPrompt.set(r.prompt, r);
    this.difficulty = { min: maxOf(all, (r) => -r.difficulty) * -1, max: maxOf(all, (r) => r.difficulty) };
    ({ measure: this.measure, covers: this.covers } = tokenMeasures(tokenizer));
    const len = this.measure;
    const hash = createHash("sha256");
    for (const s of DATASET_SPLITS) {
      // Chunked: one update per row costs more than the hashing itself on large data sets.
      const lines = rows[s].map((r) => JSON.stringify([s, r.prompt, r.answer ?? null, r.difficulty]));
      for (let i = 0; i < lines.length; i += 4096) hash.update(lines.slice(i, i + 4096).join("\n") + "\n");
    }
    this.digest = hash.digest("hex");
    const labelled = [...rows.anchor, ...rows.validation, ...rows.test];
    this.labelledBy = bucket(labelled);
    this.poolLabelled = rows.pool.every((r) => r.answer !== undefined);
    this.answerRatio = Math.max(1, maxOf(labelled, (r) => len(r.answer as string) / Math.max(1, len(r.prompt))));
    this.longestPrompt = maxOf(all, (r) => len(r.prompt));
  }

  checkDifficulty(d: number): void {
    if (!Number.isInteger(d) || d < this.difficulty.min || d > this.difficulty.max) {
      throw new AutodidactError(`task ${this.def.name}: difficulty ${d} is outside ${this.difficulty.min}..${this.difficulty.max}`, Code.OutOfRange);
    }
  }

  maxPromptLength(d: number): number {
    const at = DATASET_SPLITS.flatMap((s) => this.bySplit[s].get(d) ?? []);
    return at.length > 0 ? maxOf(at, (r) => this.measure(r.prompt)) : this.longestPrompt;
  }

  maxAnswerLength(d: number): number {
    if (this.def.maxAnswerLength) return this.def.maxAnswerLength(d);
    let limit = this.answerLimits.get(d);
    if (limit === undefined) {
      const measured = maxOf(this.labelledBy.get(d) ?? [], (r) => this.measure(r.answer as string));
      limit = Math.max(measured, Math.ceil(this.answerRatio * this.maxPromptLength(d)));
      this.answerLimits.set(d, limit);
    }
    return limit;
  }

  example(r: CheckedRow): TaskExample {
    return { id: promptIdOf(this.def.name, r.prompt), prompt: r.prompt, difficulty: r.difficulty, answer: r.answer as string, slices: this.def.rareSlices?.(r.prompt) ?? [] };
  }
}

/** Largest value of `f` over a (possibly huge) list; 0 when empty. No spread: lists can exceed the argument limit. */
function maxOf<T>(items: readonly T[], f: (item: T) => number): number {
  let best = items.length === 0 ? 0 : -Infinity;
  for (const item of items) best = Math.max(best, f(item));
  return best;
}

function len(text: string): number {
  return [...text].length;
}

/**
 * Token length and coverage for a tokenizer spec: characters for a character tokenizer (fast, no
 * encoding); the encoded length, and "no unknown token", for a subword one.
 */
export function tokenMeasures(spec: TaskTokenizerSpec): { measure: (text: string) => number; covers: (text: string) => boolean } {
  if (spec.kind === "char") {
    const alphabet = new Set(spec.alphabet);
    return { measure: len, covers: (text) => [...text].every((ch) => alphabet.has(ch)) };
  }
  const tok = createTaskTokenizer({ tokenizer: spec });
  const model = spec.json.model as { unk_token?: unknown } | undefined;
  const unk = typeof model?.unk_token === "string" ? tok.tokenToId(model.unk_token) : undefined;
  return {
    measure: (text) => tok.encode(text).length,
    covers(text) {
      try {
        const ids = tok.encode(text);
        if (unk !== undefined) return !ids.includes(unk);
        // No unknown token: a vocabulary that drops what it cannot encode shows it in the round trip.
        return tok.decode(ids, { skipSpecial: true }).replace(/\s+/g, "") === text.replace(/\s+/g, "");
      } catch {
        return false;
      }
    },
  };
}

function promptIdOf(task: string, prompt: string): string {
  return `${task}-${createHash("sha256").update(prompt).digest("hex").slice(0, 16)}`;
}

function buildPack(def: DatasetPackDefinition, ix: DatasetIndex, normalize: (s: string) => string): DatasetPack {
  const name = def.name;
  const pool = (d: number): CheckedRow[] => {
    ix.checkDifficulty(d);
    const rows = ix.bySplit.pool.get(d);
    if (rows === undefined || rows.length === 0) {
      throw new AutodidactError(`task ${name}: the unlabelled pool has no prompt of difficulty ${d}`, Code.ResourceExhausted);
    }
    return rows;
  };
  const heldOut = (split: DatasetHeldOutSplit, d: number, size?: number): readonly TaskExample[] => {
    ix.checkDifficulty(d);
    const all = (ix.bySplit[split].get(d) ?? []).slice(0, def.heldOutSize ?? 128).map((r) => ix.example(r));
    if (size === undefined) return all;
    if (!Number.isInteger(size) || size < 0 || size > all.length) {
      throw new AutodidactError(`task ${name}: ${split} set size ${size} must be an integer in 0..${all.length} at difficulty ${d}`, Code.OutOfRange);
    }
    return all.slice(0, size);
  };
  const checkFormat = (prompt: string, completion: string): FormatCheck => {
    const answer = normalize(completion);
    if (answer === "") return { ok: false, reason: "empty answer" };
    if (!ix.covers(answer)) {
      const outside = [...answer].find((ch) => !ix.covers(ch));
      return { ok: false, reason: `answer has ${outside !== undefined ? JSON.stringify(outside) : "text"} outside the task's vocabulary` };
    }
    const known = ix.byPrompt.get(prompt);
    if (known !== undefined && ix.measure(answer) > ix.maxAnswerLength(known.difficulty)) {
      return { ok: false, reason: `answer has ${ix.measure(answer)} tokens, more than ${ix.maxAnswerLength(known.difficulty)} at difficulty ${known.difficulty}` };
    }
    return def.checkFormat ? def.checkFormat(prompt, answer) : { ok: true };
  };
  const solve = (prompt: string): string => {
    const answer = ix.byPrompt.get(prompt)?.answer;
    if (answer === undefined) throw new AutodidactError(`task ${name}: no label for prompt ${JSON.stringify(prompt.slice(0, 80))}`, Code.NotFound);
    return answer;
  };
  const anchorDifficulties = [...ix.bySplit.anchor.keys()].sort((a, b) => a - b);
  return {
    name,
    version: def.version ?? "0.0.0",
    description: def.description ?? `data-set task ${name}`,
    tokenizer: ix.tokenizer,
    difficulty: ix.difficulty,
    sliceNames: def.sliceNames ?? [],
    heldOutSize: def.heldOutSize ?? 128,
    dataDigest: ix.digest,
    createPromptSampler({ seed, difficulty }) {
      const next = shuffledCycle(pool(difficulty), name, "pool", String(seed), difficulty);
      return stream(() => {
        const r = next();
        return { id: promptIdOf(name, r.prompt), prompt: r.prompt, difficulty: r.difficulty };
      });
    },
    createAnchorSource({ seed, minDifficulty, maxDifficulty }) {
      ix.checkDifficulty(minDifficulty);
      ix.checkDifficulty(maxDifficulty);
      if (minDifficulty > maxDifficulty) throw new AutodidactError(`minDifficulty ${minDifficulty} > maxDifficulty ${maxDifficulty}`, Code.InvalidArgument);
      const ds = anchorDifficulties.filter((d) => d >= minDifficulty && d <= maxDifficulty);
      if (ds.length === 0) throw new AutodidactError(`task ${name}: no anchor rows of difficulty ${minDifficulty}..${maxDifficulty}`, Code.ResourceExhausted);
      const rng = createRng(name, "anchor", String(seed), minDifficulty, maxDifficulty);
      const walks = new Map(ds.map((d) => [d, shuffledCycle(ix.bySplit.anchor.get(d) as CheckedRow[], name, "anchor", String(seed), d)]));
      return stream(() => ix.example((walks.get(rng.pick(ds)) as () => CheckedRow)()));
    },
    heldOut,
    rows: (split) => ix.rows[split].map((r) => (r.answer !== undefined && split !== "pool" ? ix.example(r) : { id: promptIdOf(name, r.prompt), prompt: r.prompt, difficulty: r.difficulty })),
    counts() {
      const out = {} as Record<DatasetSplit, Map<number, number>>;
      for (const s of DATASET_SPLITS) out[s] = new Map([...ix.bySplit[s].entries()].sort((a, b) => a[0] - b[0]).map(([d, rs]) => [d, rs.length]));
      return out;
    },
    normalize,
    equivalent: (a, b) => normalize(a) === normalize(b),
    checkFormat,
    lengthFilter(completions, maxShortfall = def.defaultMaxShortfall ?? 1) {
      if (!Number.isInteger(maxShortfall) || maxShortfall < 1) throw new AutodidactError(`maxShortfall must be an integer >= 1, got ${maxShortfall}`, Code.InvalidArgument);
      const lengths = completions.map((c) => len(normalize(c)));
      const longest = Math.max(0, ...lengths);
      return lengths.map((l) => longest - l < maxShortfall);
    },
    rareSlices: (prompt) => def.rareSlices?.(prompt) ?? [],
    difficultyOf(prompt) {
      const known = ix.byPrompt.get(prompt);
      if (known !== undefined) return known.difficulty;
      try {
        return (def.difficulty ?? ((p: string) => len(p)))(prompt, undefined);
      } catch (err) {
        throw AutodidactError.from(err, Code.InvalidArgument);
      }
    },
    maxPromptLength(d) {
      ix.checkDifficulty(d);
      return ix.maxPromptLength(d);
    },
    maxAnswerLength(d) {
      ix.checkDifficulty(d);
      return ix.maxAnswerLength(d);
    },
    trainingText: (prompt, answer) => `${prompt}${normalize(answer)}${ix.tokenizer.special.eos}`,
    promptId: (prompt) => promptIdOf(name, prompt),
    ...(ix.poolLabelled
      ? {
          verifier: {
            solve,
            check(prompt: string, completion: string): boolean {
              const truth = ix.byPrompt.get(prompt)?.answer;
              return truth !== undefined && normalize(completion) === truth;
            },
          },
        }
      : {}),
  };
}
