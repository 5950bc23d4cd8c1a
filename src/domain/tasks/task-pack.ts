import { createHash } from "node:crypto";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { CharTokenizerSpec, TaskTokenizerSpec } from "./tokenizer-spec.js";
import { createRng, type Rng } from "./rng.js";

/**
 * The named held-out splits of real labelled problems. `validation`: problems the gate may read within
 * the range a run's gating policy allows. `test`: never read by any decision; every number called a
 * result (frontier, per-length accuracy) comes from it.
 */
export type HeldOutSplit = "validation" | "test";

/** Every held-out split, in a fixed order (test first: it is the prefix of the reserved draw). */
export const HELD_OUT_SPLITS: readonly HeldOutSplit[] = ["test", "validation"];

/**
 * Share of the held-out problems that goes to the test split when the problem space is too small for
 * both splits at full size (at most half a space is held out: 1-digit addition holds out 50 of 100
 * problems, 30 test and 20 validation).
 */
export const SMALL_SPACE_TEST_SHARE = 0.6;

/** One problem: the prompt the model continues, and how hard it is on the task's curriculum. */
export interface TaskProblem {
  /** Stable id of the problem (same prompt, same id, in every round): lineage `prompt_id`. */
  readonly id: string;
  readonly prompt: string;
  readonly difficulty: number;
}

/** A problem with its true answer (without the end token): anchor data and held-out sets. */
export interface TaskExample extends TaskProblem {
  readonly answer: string;
  /** Rare-slice tags of this problem, for tail metrics. */
  readonly slices: readonly string[];
}

/** Result of a task's format and length rules (the rules critic's verdict). */
export type FormatCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Ground truth. Only the monitor uses it, and critics when a deployment configures it on purpose. */
export interface TaskVerifier {
  /** The correct answer (normalized, no end token) for a prompt; InvalidArgument when the prompt is malformed. */
  solve(prompt: string): string;
  /** Whether a completion is a correct answer to the prompt (false for malformed input, never throws). */
  check(prompt: string, completion: string): boolean;
}

/** A seeded, stateful stream of problems or examples. */
export interface TaskStream<T> {
  next(): T;
  take(count: number): T[];
}

/**
 * Everything the mesh needs to know about one task, so generator, critics, trainer and monitor
 * stay task-agnostic. Built-in packs come from {@link getTaskPack}; new ones via {@link defineTaskPack}.
 */
export interface TaskPack {
  readonly name: string;
  /** The pack's own version (task modules; recorded in every sample, checkpoint and report). Built-ins have none. */
  readonly version?: string;
  /** sha256 over a data-set pack's rows, so a change of data shows in the task identity. */
  readonly dataDigest?: string;
  readonly description: string;
  readonly tokenizer: TaskTokenizerSpec;
  /** Inclusive difficulty range the pack can produce. */
  readonly difficulty: { readonly min: number; readonly max: number };
  /** Names of every rare-slice tag {@link rareSlices} may return. */
  readonly sliceNames: readonly string[];
  /**
   * Size of each held-out split (validation, test) per difficulty; smaller when the problem space is
   * tiny (then at most half the space is held out in all, {@link SMALL_SPACE_TEST_SHARE} of it test).
   */
  readonly heldOutSize: number;
  /**
   * Prompts for the generator at a fixed difficulty. Deterministic per seed; never yields a problem of
   * either held-out split, so self-generated data cannot leak validation or test problems.
   */
  createPromptSampler(options: { seed: number | string; difficulty: number }): TaskStream<TaskProblem>;
  /**
   * Real (anchor) examples with true answers, difficulties drawn uniformly from the range.
   * Deterministic per seed; disjoint from both held-out splits (checked, not hoped for).
   */
  createAnchorSource(options: { seed: number | string; minDifficulty: number; maxDifficulty: number }): TaskStream<TaskExample>;
  /**
   * One held-out split at one difficulty: deterministic (independent of any seed), free of duplicates,
   * disjoint from the other split, from anchor data and from prompt samplers by construction (all are
   * drawn outside one reserved set). `size` takes a prefix of the split and may not exceed it.
   */
  heldOut(split: HeldOutSplit, difficulty: number, size?: number): readonly TaskExample[];
  /** Canonical form of a completion: end token and anything after it cut, whitespace removed. */
  normalize(completion: string): string;
  /** Task-defined answer equivalence, used by model critics to compare answers. */
  equivalent(a: string, b: string): boolean;
  /** Format and length rules for one completion (the rules critic). */
  checkFormat(prompt: string, completion: string): FormatCheck;
  /**
   * Ensemble length filter (Lee et al. 2025): keeps answers not shorter than the longest one by
   * `maxShortfall` or more characters. Returns one keep flag per completion.
   */
  lengthFilter(completions: readonly string[], maxShortfall?: number): boolean[];
  /** Rare-slice tags of a prompt (tails the monitor watches for collapse). */
  rareSlices(prompt: string): string[];
  /** The difficulty of a well-formed prompt; InvalidArgument when it is malformed. */
  difficultyOf(prompt: string): number;
  /** Longest prompt / answer (characters = tokens, no specials) at a difficulty: sizes contexts and generation limits. */
  maxPromptLength(difficulty: number): number;
  maxAnswerLength(difficulty: number): number;
  /** The text a model trains on for one example: prompt, answer, end token (the engine adds bos). */
  trainingText(prompt: string, answer: string): string;
  /** Stable, key- and subject-safe id of a prompt: `<task>-<16 hex of sha256>`. */
  promptId(prompt: string): string;
  /** Optional ground truth. */
  readonly verifier?: TaskVerifier;
}

/** The task-specific part of a pack; {@link defineTaskPack} adds seeding, held-out sets and disjointness. */
export interface TaskPackDefinition {
  readonly name: string;
  /** See {@link TaskPack.version}. */
  readonly version?: string;
  readonly description: string;
  readonly tokenizer: CharTokenizerSpec;
  readonly difficulty: { readonly min: number; readonly max: number };
  readonly sliceNames: readonly string[];
  readonly heldOutSize: number;
  /** Default for {@link TaskPack.lengthFilter}. */
  readonly defaultMaxShortfall: number;
  /** Number of distinct problems at a difficulty (Infinity when too large to matter). */
  problemSpace(difficulty: number): number;
  /** Draws one prompt of exactly this difficulty. */
  sample(rng: Rng, difficulty: number): string;
  /** The true answer, used to label anchor and held-out data. */
  solve(prompt: string): string;
  /** Rules on an already normalized completion. */
  checkFormat(prompt: string, normalized: string): FormatCheck;
  rareSlices(prompt: string): string[];
  difficultyOf(prompt: string): number;
  maxPromptLength(difficulty: number): number;
  maxAnswerLength(difficulty: number): number;
  /** Expose `solve` as a verifier (ground truth) on the pack. */
  readonly exposeVerifier: boolean;
}

/** The reserved held-out problems of one difficulty: both splits, and every prompt of either. */
interface Reserved {
  readonly test: readonly TaskExample[];
  readonly validation: readonly TaskExample[];
  readonly prompts: ReadonlySet<string>;
}

/** Per-split sizes at a difficulty: full size each, or a small space's half split test / validation. */
function splitSizes(def: TaskPackDefinition, difficulty: number): { test: number; validation: number } {
  const half = Math.floor(def.problemSpace(difficulty) / 2);
  if (half >= 2 * def.heldOutSize) return { test: def.heldOutSize, validation: def.heldOutSize };
  const test = Math.min(def.heldOutSize, Math.ceil(half * SMALL_SPACE_TEST_SHARE));
  return { test, validation: Math.min(def.heldOutSize, half - test) };
}

/** Draws a problem not in `exclude`, giving up with a clear error when the space is exhausted. */
function drawAvoiding(rng: Rng, def: TaskPackDefinition, difficulty: number, exclude: ReadonlySet<string>): string {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const prompt = def.sample(rng, difficulty);
    if (!exclude.has(prompt)) return prompt;
  }
  throw new AutodidactError(
    `task ${def.name}: could not draw a problem of difficulty ${difficulty} outside the held-out set`,
    Code.ResourceExhausted,
  );
}

/** Builds a full {@link TaskPack} from its task-specific definition. */
export function defineTaskPack(def: TaskPackDefinition): TaskPack {
  const heldOut = new Map<number, Reserved>();

  const checkDifficulty = (difficulty: number): void => {
    if (!Number.isInteger(difficulty) || difficulty < def.difficulty.min || difficulty > def.difficulty.max) {
      throw new AutodidactError(
        `task ${def.name}: difficulty ${difficulty} is outside ${def.difficulty.min}..${def.difficulty.max}`,
        Code.OutOfRange,
      );
    }
  };

  const promptId = (prompt: string): string => `${def.name}-${createHash("sha256").update(prompt).digest("hex").slice(0, 16)}`;
  const example = (prompt: string, difficulty: number): TaskExample => ({
    id: promptId(prompt),
    prompt,
    difficulty,
    answer: def.solve(prompt),
    slices: def.rareSlices(prompt),
  });

  const reserved = (difficulty: number): Reserved => {
    checkDifficulty(difficulty);
    const cached = heldOut.get(difficulty);
    if (cached !== undefined) return cached;
    // One seed-independent draw of distinct problems: the test split first, then validation. Anchor
    // sources and prompt samplers draw outside the union, so all four are disjoint by construction.
    const sizes = splitSizes(def, difficulty);
    const rng = createRng(def.name, "held-out", difficulty);
    const prompts = new Set<string>();
    const examples: TaskExample[] = [];
    let misses = 0;
    while (examples.length < sizes.test + sizes.validation && misses < 100_000) {
      const prompt = def.sample(rng, difficulty);
      if (prompts.has(prompt)) {
        misses++;
        continue;
      }
      prompts.add(prompt);
      examples.push(example(prompt, difficulty));
    }
    const entry: Reserved = { test: examples.slice(0, sizes.test), validation: examples.slice(sizes.test), prompts };
    heldOut.set(difficulty, entry);
    return entry;
  };

  const stream = <T>(next: () => T): TaskStream<T> => ({
    next,
    take(count: number): T[] {
      if (!Number.isInteger(count) || count < 0) {
        throw new AutodidactError(`count must be a non-negative integer, got ${count}`, Code.InvalidArgument);
      }
      return Array.from({ length: count }, next);
    },
  });

  const normalize = (completion: string): string => {
    const eos = completion.indexOf(def.tokenizer.special.eos);
    const cut = eos >= 0 ? completion.slice(0, eos) : completion;
    return cut.split(def.tokenizer.special.pad).join("").split(def.tokenizer.special.bos).join("").replace(/\s+/g, "");
  };

  const pack: TaskPack = {
    name: def.name,
    ...(def.version !== undefined ? { version: def.version } : {}),
    description: def.description,
    tokenizer: def.tokenizer,
    difficulty: def.difficulty,
    sliceNames: def.sliceNames,
    heldOutSize: def.heldOutSize,
    createPromptSampler({ seed, difficulty }) {
      const exclude = reserved(difficulty).prompts;
      const rng = createRng(def.name, "prompts", String(seed), difficulty);
      return stream(() => {
        const prompt = drawAvoiding(rng, def, difficulty, exclude);
        return { id: promptId(prompt), prompt, difficulty };
      });
    },
    createAnchorSource({ seed, minDifficulty, maxDifficulty }) {
      checkDifficulty(minDifficulty);
      checkDifficulty(maxDifficulty);
      if (minDifficulty > maxDifficulty) {
        throw new AutodidactError(`minDifficulty ${minDifficulty} > maxDifficulty ${maxDifficulty}`, Code.InvalidArgument);
      }
      const rng = createRng(def.name, "anchor", String(seed), minDifficulty, maxDifficulty);
      return stream(() => {
        const difficulty = rng.int(minDifficulty, maxDifficulty);
        return example(drawAvoiding(rng, def, difficulty, reserved(difficulty).prompts), difficulty);
      });
    },
    heldOut(split, difficulty, size) {
      if (split !== "test" && split !== "validation") {
        throw new AutodidactError(`task ${def.name}: unknown held-out split ${JSON.stringify(split)} (validation, test)`, Code.InvalidArgument);
      }
      const all = reserved(difficulty)[split];
      if (size === undefined) return all;
      if (!Number.isInteger(size) || size < 0 || size > all.length) {
        throw new AutodidactError(
          `task ${def.name}: ${split} split size ${size} must be an integer in 0..${all.length} at difficulty ${difficulty}`,
          Code.OutOfRange,
        );
      }
      return all.slice(0, size);
    },
    normalize,
    equivalent(a, b) {
      return normalize(a) === normalize(b);
    },
    checkFormat(prompt, completion) {
      return def.checkFormat(prompt, normalize(completion));
    },
    lengthFilter(completions, maxShortfall = def.defaultMaxShortfall) {
      if (!Number.isInteger(maxShortfall) || maxShortfall < 1) {
        throw new AutodidactError(`maxShortfall must be an integer >= 1, got ${maxShortfall}`, Code.InvalidArgument);
      }
      const lengths = completions.map((c) => [...normalize(c)].length);
      const longest = Math.max(0, ...lengths);
      return lengths.map((len) => longest - len < maxShortfall);
    },
    rareSlices(prompt) {
      return def.rareSlices(prompt);
    },
    difficultyOf(prompt) {
      return def.difficultyOf(prompt);
    },
    promptId,
    maxPromptLength(difficulty) {
      checkDifficulty(difficulty);
      return def.maxPromptLength(difficulty);
    },
    maxAnswerLength(difficulty) {
      checkDifficulty(difficulty);
      return def.maxAnswerLength(difficulty);
    },
    trainingText(prompt, answer) {
      return `${prompt}${normalize(answer)}${def.tokenizer.special.eos}`;
    },
  };
  if (def.exposeVerifier) {
    return {
      ...pack,
      verifier: {
        solve: (prompt) => def.solve(prompt),
        check(prompt, completion) {
          let truth: string;
          try {
            truth = def.solve(prompt);
          } catch {
            return false;
          }
          return normalize(completion) === truth;
        },
      },
    };
  }
  return pack;
}
