import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { LoraOptions, PositionalEncoding, TrainMode } from "../../src/engine/index.js";
import { getTaskPack } from "../../src/domain/tasks/index.js";

/** Model shape of every lineage (NoPE decoder; vocab comes from the task's tokenizer). */
export interface ModelShape {
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  /** Context length; must hold the longest prompt + answer + eos the run will see. */
  readonly maxPositions: number;
  /** Position encoding; default "none" (NoPE, as in Lee et al. 2025). */
  readonly positional?: PositionalEncoding;
}

/** How one training phase runs (base training or one round's fine-tune). */
export interface TrainPhase {
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly warmupSteps: number;
  /** Share of the final linear decay (warmup-stable-decay, Lee et al. 2025). */
  readonly decayShare: number;
  readonly weightDecay: number;
}

/**
 * Everything that defines a self-improvement run of the reversed-addition recipe. Plain data, so
 * the mesh demo can load it from a file and reuse the same numbers.
 */
export interface SelfImprovementConfig {
  /**
   * A built-in task pack: `addition`, `addition-padded` (equal-length zero-padded operands), or `g2p`
   * (grapheme-to-phoneme on the CMU dictionary, real data).
   */
  readonly task: string;
  /** One independently seeded model per entry; the first one is "the generator". */
  readonly seeds: readonly number[];
  readonly model: ModelShape;
  /** Base models learn real problems of difficulty min..baseDigits (digits; letters for g2p). */
  readonly baseDigits: number;
  readonly base: TrainPhase;
  readonly rounds: number;
  /** Problems each lineage labels per round (at one digit past the longest trained length). */
  readonly samplesPerRound: number;
  readonly round: TrainPhase;
  /** Full fine-tune or LoRA in the rounds (base training is always full). */
  readonly mode: TrainMode;
  readonly lora?: LoraOptions;
  /** Majority vote across lineages (threshold = share of all answers) and the length filter. */
  readonly vote: boolean;
  readonly voteThreshold: number;
  readonly lengthFilter: boolean;
  /** `accumulate`: every round's accepted labels stay; `replace`: only the latest round's. */
  readonly data: "accumulate" | "replace";
  /**
   * The labelled length moves one digit further only when at least this share of a round's
   * proposals was accepted; otherwise the next round labels the same length again (new problems).
   */
  readonly minAcceptedShare: number;
  /** Minimum share of real anchor problems (1..baseDigits) in every fine-tuning batch. */
  readonly anchorShare: number;
  /** Held-out problems per length for the accuracy table. */
  readonly evalSize: number;
  /** Exact-match accuracy that counts a length as mastered (the frontier). */
  readonly frontierThreshold: number;
  /**
   * First length the frontier must cover: 1 in the recipes, so the frontier is "the largest L with
   * every length 1..L at >= the threshold on the test split" — losing the easy tail (1-digit
   * problems) lowers it, as it should.
   */
  readonly frontierFrom: number;
  /** Prepend the tokenizer's bos to every prompt (an attention sink / counting anchor for NoPE). */
  readonly bos: boolean;
  /** ORT threads per lineage worker (lineages run concurrently). */
  readonly threads: number;
}

/**
 * The default recipe: 3 lineages of a 4-layer NoPE decoder (width 128, MLP 512: the engine bench's
 * reference size) trained on padded 1..6 digit problems, then 11 rounds of 1,024 self-labelled
 * longer problems (the longest, 18 digits, still fits the 64-token context). At this size the base is exact on 1..6 and mostly right one digit further (7 digits:
 * 98 / 90 / 99 %, 8 digits: 23 / 3 / 30 % for seeds 1, 3, 5), which is what the vote needs. Width 64
 * bases (80-94 % at 7, 0 % at 8) stalled at 9 digits in the rounds; 2-layer models and 1..3/1..4
 * digit bases were 0 % one digit past their lengths (README).
 */
export const DEFAULT_RECIPE: SelfImprovementConfig = Object.freeze({
  task: "addition-padded",
  seeds: Object.freeze([1, 3, 5]),
  model: Object.freeze({ numLayers: 4, hiddenSize: 128, numHeads: 4, intermediateSize: 512, maxPositions: 64 }),
  baseDigits: 6,
  base: Object.freeze({ steps: 8000, batchSize: 64, lr: 1e-3, warmupSteps: 200, decayShare: 0.3, weightDecay: 0.01 }),
  rounds: 11,
  samplesPerRound: 1024,
  round: Object.freeze({ steps: 200, batchSize: 64, lr: 5e-4, warmupSteps: 20, decayShare: 0.5, weightDecay: 0.01 }),
  mode: "full",
  vote: true,
  voteThreshold: 0.6,
  lengthFilter: true,
  data: "accumulate",
  anchorShare: 0.25,
  minAcceptedShare: 0.1,
  evalSize: 128,
  frontierThreshold: 0.95,
  frontierFrom: 1,
  bos: true,
  threads: 1,
}) as SelfImprovementConfig;

/** Same path as the default, small enough for a test or a first look (a few minutes at most). */
export const QUICK_RECIPE: SelfImprovementConfig = Object.freeze({
  ...DEFAULT_RECIPE,
  model: Object.freeze({ numLayers: 2, hiddenSize: 64, numHeads: 4, intermediateSize: 256, maxPositions: 40 }),
  baseDigits: 2,
  base: Object.freeze({ steps: 1600, batchSize: 64, lr: 2e-3, warmupSteps: 100, decayShare: 0.5, weightDecay: 0.01 }),
  rounds: 2,
  samplesPerRound: 256,
  round: Object.freeze({ ...DEFAULT_RECIPE.round, steps: 120, lr: 1e-3 }),
  evalSize: 64,
}) as SelfImprovementConfig;

/**
 * The g2p recipe: 3 lineages of a 3-layer NoPE decoder (width 64, MLP 256: small enough to train on
 * 2 shared cores in minutes) trained on the real pronunciations of 3..6-letter words (about 35,000
 * anchor words), then rounds that label longer words from the unlabelled pool. A g2p model's word
 * accuracy stays far from 95 % (the dictionary is inconsistent on names), so the frontier threshold
 * is 0.3. A 600-step 2-layer base reached 47 / 34 / 6 / 0 % words at 6 / 7 / 8 / 9 letters (test
 * split): the drop past the trained lengths is length generalization, what self-labelling can fix.
 */
export const G2P_RECIPE: SelfImprovementConfig = Object.freeze({
  ...DEFAULT_RECIPE,
  task: "g2p",
  model: Object.freeze({ numLayers: 3, hiddenSize: 64, numHeads: 4, intermediateSize: 256, maxPositions: 40 }),
  baseDigits: 6,
  base: Object.freeze({ steps: 1500, batchSize: 64, lr: 2e-3, warmupSteps: 100, decayShare: 0.3, weightDecay: 0.01 }),
  rounds: 3,
  samplesPerRound: 512,
  // A round's accepted words are few (100-150 of 512 pass the sure critics): half of every batch stays real
  // 3..6-letter words and the learning rate is low, or the gate sees the base range forget (a mesh run at
  // lr 1e-3 with a quarter anchors lost 10 points at 4 letters in two rounds and was rejected).
  round: Object.freeze({ steps: 200, batchSize: 64, lr: 3e-4, warmupSteps: 20, decayShare: 0.5, weightDecay: 0.01 }),
  anchorShare: 0.5,
  minAcceptedShare: 0.1,
  evalSize: 256,
  frontierThreshold: 0.3,
  frontierFrom: 3,
}) as SelfImprovementConfig;

/** The g2p recipe made small for a test or a first look (2-layer models, 600 base steps, one short round). */
export const G2P_QUICK_RECIPE: SelfImprovementConfig = Object.freeze({
  ...G2P_RECIPE,
  model: Object.freeze({ numLayers: 2, hiddenSize: 64, numHeads: 4, intermediateSize: 256, maxPositions: 40 }),
  base: Object.freeze({ ...G2P_RECIPE.base, steps: 600 }),
  rounds: 1,
  samplesPerRound: 64,
  round: Object.freeze({ ...G2P_RECIPE.round, steps: 40 }),
  evalSize: 32,
}) as SelfImprovementConfig;

/** Named recipes, so the CLI and the demo pick one by name. */
export const recipes: Readonly<Record<"default" | "quick" | "g2p" | "g2p-quick", SelfImprovementConfig>> = Object.freeze({
  default: DEFAULT_RECIPE,
  quick: QUICK_RECIPE,
  g2p: G2P_RECIPE,
  "g2p-quick": G2P_QUICK_RECIPE,
});

/** Checks a config before any model is built; InvalidArgument naming the field. */
export function checkConfig(c: SelfImprovementConfig): void {
  const bad = (msg: string): never => {
    throw new AutodidactError(`self-improvement config: ${msg}`, Code.InvalidArgument);
  };
  if (!["addition", "addition-padded", "g2p"].includes(c.task)) bad(`task "${String(c.task)}" has no recipe (only "addition", "addition-padded", "g2p")`);
  if (c.seeds.length === 0) bad("seeds must name at least one lineage");
  if (new Set(c.seeds).size !== c.seeds.length) bad("seeds must be distinct");
  if (!(Number.isInteger(c.baseDigits) && c.baseDigits >= 1)) bad("baseDigits must be an integer >= 1");
  if (!(Number.isInteger(c.rounds) && c.rounds >= 0)) bad("rounds must be an integer >= 0");
  if (!(c.anchorShare >= 0 && c.anchorShare <= 1)) bad("anchorShare must be in [0, 1]");
  if (!(c.voteThreshold > 0 && c.voteThreshold <= 1)) bad("voteThreshold must be in (0, 1]");
  if (!(c.frontierThreshold > 0 && c.frontierThreshold <= 1)) bad("frontierThreshold must be in (0, 1]");
  for (const [name, p] of [["base", c.base], ["round", c.round]] as const) {
    if (!(Number.isInteger(p.steps) && p.steps >= 0)) bad(`${name}.steps must be an integer >= 0`);
    if (!(Number.isInteger(p.batchSize) && p.batchSize >= 1)) bad(`${name}.batchSize must be an integer >= 1`);
    if (!(p.lr > 0)) bad(`${name}.lr must be > 0`);
  }
  const pack = getTaskPack(c.task);
  if (c.baseDigits < pack.difficulty.min || c.baseDigits > pack.difficulty.max) bad(`baseDigits must be in ${pack.difficulty.min}..${pack.difficulty.max} for task ${c.task}`);
  const longest = Math.min(c.baseDigits + c.rounds + 1, pack.difficulty.max);
  // bos, the longest prompt, the longest answer, eos.
  const need = pack.maxPromptLength(longest) + pack.maxAnswerLength(longest) + 2;
  if (c.model.maxPositions < need) bad(`model.maxPositions ${c.model.maxPositions} cannot hold difficulty-${longest} problems (needs ${need})`);
}
