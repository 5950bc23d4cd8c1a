import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { AdaptationMode, DataMix, type TrainingConfig } from "../../src/gen/autodidact/v1/training_pb.js";
import type { MixMode } from "./mix.js";

/**
 * A round's training settings with every default applied and every range checked: what a round plan
 * journals and trains with. The trainer's flags have the same shape ({@link TrainingDefaults}).
 */
export interface ResolvedTraining {
  mode: "lora" | "full";
  mix: MixMode;
  /** Optimizer steps; 0 = one pass over the synthetic pool. */
  steps: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Warmup-stable-decay: both 0 = constant learning rate. */
  warmupSteps: number;
  decayShare: number;
  /** 0 = no clipping. */
  maxGradNorm: number;
  abortGradNorm: number;
  maxReuse: number;
  hardestShare: number;
  seed: string;
  loraRank: number;
  loraAlpha: number;
  anchorRatio: number;
  /** 0 = the accepted samples' range. */
  anchorMinDifficulty: number;
  anchorMaxDifficulty: number;
}

/** The trainer's flags that act as defaults of every unset {@link TrainingConfig} field. */
export type TrainingDefaults = Readonly<ResolvedTraining>;

type NumericKey = Exclude<keyof ResolvedTraining, "mode" | "mix" | "seed">;

/** The range of one numeric setting, with its field in TrainingConfig and the trainer flag that defaults it. */
interface Range {
  readonly field: string;
  readonly flag: string;
  readonly integer: boolean;
  readonly min: number;
  readonly max: number;
  /** min (max) itself is outside the range. */
  readonly aboveMin?: boolean;
  readonly belowMax?: boolean;
}

/** Every numeric setting's range: the one place they are checked, for requests and for the flags alike. */
export const TRAINING_RANGES: Readonly<Record<NumericKey, Range>> = {
  steps: { field: "training.steps", flag: "--steps", integer: true, min: 0, max: 1_000_000 },
  batchSize: { field: "training.batch_size", flag: "--batch-size", integer: true, min: 2, max: 4096 },
  lr: { field: "training.learning_rate", flag: "--lr", integer: false, min: 0, max: 10, aboveMin: true },
  weightDecay: { field: "training.weight_decay", flag: "--weight-decay", integer: false, min: 0, max: 1 },
  warmupSteps: { field: "training.warmup_steps", flag: "--warmup-steps", integer: true, min: 0, max: 1_000_000 },
  decayShare: { field: "training.decay_share", flag: "--decay-share", integer: false, min: 0, max: 1 },
  maxGradNorm: { field: "training.max_grad_norm", flag: "--max-grad-norm", integer: false, min: 0, max: 1e6 },
  abortGradNorm: { field: "training.abort_grad_norm", flag: "--abort-grad-norm", integer: false, min: 0, max: 1e30, aboveMin: true },
  maxReuse: { field: "training.max_reuse", flag: "--max-reuse", integer: true, min: 1, max: 2 ** 32 - 1 },
  hardestShare: { field: "training.hardest_share", flag: "--hardest-share", integer: false, min: 0, max: 1, belowMax: true },
  loraRank: { field: "training.lora.rank", flag: "--lora-rank", integer: true, min: 1, max: 256 },
  loraAlpha: { field: "training.lora.alpha", flag: "--lora-alpha", integer: false, min: 0, max: 1e6, aboveMin: true },
  anchorRatio: { field: "training.anchor.ratio", flag: "--anchor-ratio", integer: false, min: 0, max: 1, belowMax: true },
  anchorMinDifficulty: { field: "training.anchor.min_difficulty", flag: "--anchor-min-difficulty", integer: true, min: 0, max: 1_000_000 },
  anchorMaxDifficulty: { field: "training.anchor.max_difficulty", flag: "--anchor-max-difficulty", integer: true, min: 0, max: 1_000_000 },
};

const MAX_SEED_CHARS = 256;

/**
 * Examples a round may train on (steps × batch size): a round builds all its batches in memory before
 * the first step, so this bounds what one request can make the trainer allocate.
 */
export const MAX_EXAMPLES_PER_ROUND = 1_000_000;

const invalid = (message: string): AutodidactError => new AutodidactError(message, Code.InvalidArgument);

function describeRange(r: Range): string {
  const kind = r.integer ? "an integer" : "a number";
  return `${kind} in ${r.aboveMin ? "(" : "["}${r.min}, ${r.max}${r.belowMax ? ")" : "]"}`;
}

/** Checks one value against its range; `requested` says whether it came from the request (else from the flag). */
function checkRange(key: NumericKey, value: number, requested: boolean): number {
  const r = TRAINING_RANGES[key];
  const ok =
    Number.isFinite(value) &&
    (!r.integer || Number.isInteger(value)) &&
    (r.aboveMin ? value > r.min : value >= r.min) &&
    (r.belowMax ? value < r.max : value <= r.max);
  if (!ok) {
    const who = requested ? r.field : `${r.flag} (the trainer's default for ${r.field})`;
    throw invalid(`${who} must be ${describeRange(r)}, got ${value}`);
  }
  return value;
}

function modeOf(mode: AdaptationMode, fallback: ResolvedTraining["mode"]): ResolvedTraining["mode"] {
  switch (mode) {
    case AdaptationMode.UNSPECIFIED:
      return fallback;
    case AdaptationMode.LORA:
      return "lora";
    case AdaptationMode.FULL:
      return "full";
    default:
      throw invalid(`training.mode ${String(mode)} is not an AdaptationMode (LORA or FULL)`);
  }
}

function mixOf(mix: DataMix, fallback: MixMode): MixMode {
  switch (mix) {
    case DataMix.UNSPECIFIED:
      return fallback;
    case DataMix.ACCUMULATE:
      return "accumulate";
    case DataMix.REPLACE:
      return "replace";
    default:
      throw invalid(`training.mix ${String(mix)} is not a DataMix (ACCUMULATE or REPLACE)`);
  }
}

/** The numeric fields a TrainingConfig sets (undefined = unset), by setting. */
function requestedNumbers(c: TrainingConfig | undefined): Record<NumericKey, number | undefined> {
  return {
    // A uint64 past 2^53 still compares correctly as a (rounded) number: far past the range either way.
    steps: c?.steps === undefined ? undefined : Number(c.steps),
    batchSize: c?.batchSize,
    lr: c?.learningRate,
    weightDecay: c?.weightDecay,
    warmupSteps: c?.warmupSteps,
    decayShare: c?.decayShare,
    maxGradNorm: c?.maxGradNorm,
    abortGradNorm: c?.abortGradNorm,
    maxReuse: c?.maxReuse,
    hardestShare: c?.hardestShare,
    loraRank: c?.lora?.rank,
    loraAlpha: c?.lora?.alpha,
    anchorRatio: c?.anchor?.ratio,
    anchorMinDifficulty: c?.anchor?.minDifficulty,
    anchorMaxDifficulty: c?.anchor?.maxDifficulty,
  };
}

/**
 * Applies the trainer's defaults to a round's TrainingConfig and checks every range, in one place:
 * an unset field (or an UNSPECIFIED enum) takes its flag's value; a value out of range is refused with
 * INVALID_ARGUMENT naming the field (or the flag, when a default is out of range, which the trainer checks
 * at start by resolving an empty config). The anchor ratio is a floor: a request may raise it, never lower it.
 */
export function resolveTraining(config: TrainingConfig | undefined, defaults: TrainingDefaults): ResolvedTraining {
  const requested = requestedNumbers(config);
  const numbers = {} as Record<NumericKey, number>;
  for (const key of Object.keys(TRAINING_RANGES) as NumericKey[]) {
    const value = requested[key];
    numbers[key] = value === undefined ? checkRange(key, defaults[key], false) : checkRange(key, value, true);
  }
  // The flag is the floor of real data in every batch (the guard against collapse).
  if (requested.anchorRatio !== undefined) numbers.anchorRatio = Math.max(checkRange("anchorRatio", defaults.anchorRatio, false), numbers.anchorRatio);
  const { anchorMinDifficulty: lo, anchorMaxDifficulty: hi } = numbers;
  if (lo > 0 && hi > 0 && lo > hi) {
    const from = requested.anchorMinDifficulty !== undefined || requested.anchorMaxDifficulty !== undefined ? "training.anchor" : "--anchor-min/max-difficulty";
    throw invalid(`${from}: min_difficulty ${lo} is above max_difficulty ${hi}`);
  }
  if (numbers.steps * numbers.batchSize > MAX_EXAMPLES_PER_ROUND) {
    const from = requested.steps !== undefined || requested.batchSize !== undefined ? "training.steps × training.batch_size" : "--steps × --batch-size";
    throw invalid(`${from} = ${numbers.steps} × ${numbers.batchSize} exceeds ${MAX_EXAMPLES_PER_ROUND} examples per round`);
  }
  const seed = config?.seed ?? defaults.seed;
  if (seed.length === 0 || seed.length > MAX_SEED_CHARS) {
    throw invalid(`${config?.seed !== undefined ? "training.seed" : "--seed (the trainer's default for training.seed)"} must be 1..${MAX_SEED_CHARS} characters, got ${seed.length}`);
  }
  return {
    ...numbers,
    mode: modeOf(config?.mode ?? AdaptationMode.UNSPECIFIED, defaults.mode),
    mix: mixOf(config?.mix ?? DataMix.UNSPECIFIED, defaults.mix),
    seed,
  };
}
