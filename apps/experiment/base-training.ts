// Base models of the reversed-addition recipe (Lee et al. 2025): one independently seeded lineage per
// recipe seed, trained on real 1..baseDigits problems, and the held-out accuracy table the base-model
// script prints. The self-improvement loop itself is the conductor's (services/conductor).
import {
  createTrainer,
  createTransformerConfig,
  initParameters,
  makeBatch,
  openWeights,
  type Tokenizer,
  type Example,
  type ModelWorker,
  type Parameters,
  type TextGenerator,
  type TransformerConfig,
} from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createTaskTokenizer, getTaskPack, type TaskExample, type TaskPack } from "../../src/domain/tasks/index.js";
import { type ModelShape, type SelfImprovementConfig, type TrainPhase } from "./recipe.js";

/** One independently seeded model: its worker thread and current weights. */
export interface Lineage {
  readonly name: string;
  readonly seed: number;
  readonly host: ModelWorker;
  weights: Parameters;
}

/** The task pack a config names (both recipe tasks are built into src/domain/tasks). */
export function recipeTask(name: SelfImprovementConfig["task"]): TaskPack {
  return getTaskPack(name);
}

/** The task's transformer config for a model shape (NoPE, as in Lee et al. 2025). */
export function modelConfig(shape: ModelShape, tokenizer: Tokenizer): TransformerConfig {
  return createTransformerConfig({ ...shape, vocabSize: tokenizer.vocabSize, positional: shape.positional ?? "none" });
}

/** Tokenizes a prompt/answer pair as a supervised example (answer followed by eos). */
export function toExample(tokenizer: Tokenizer, prompt: string, answer: string, bos = false): Example {
  const eos = tokenizer.eosId;
  if (eos === null) throw new AutodidactError("the task tokenizer has no eos token", Code.FailedPrecondition);
  return { prompt: tokenizer.encode(prompt, { addBos: bos }), completion: [...tokenizer.encode(answer), eos] };
}

/**
 * Trains weights for one phase in `host` (warmup-stable-decay schedule) and returns the new full
 * weights (LoRA adapters merged). The trainer lives only for this phase: a fresh optimizer and
 * schedule per round, as in Lee et al.'s per-round 500 stable + 500 decay steps.
 */
export async function trainPhase(options: {
  readonly host: ModelWorker;
  readonly config: TransformerConfig;
  readonly weights: Parameters;
  readonly phase: TrainPhase;
  readonly padId: number;
  readonly nextBatch: () => Example[];
  readonly mode?: SelfImprovementConfig["mode"];
  readonly lora?: SelfImprovementConfig["lora"];
  readonly seed: number;
  readonly threads?: number;
  readonly onStep?: (step: number, total: number, loss: number) => void;
}): Promise<Parameters> {
  const { phase } = options;
  if (phase.steps === 0) return options.weights;
  const mode = options.mode ?? "full";
  const trainer = await createTrainer({
    host: options.host,
    config: options.config,
    weights: options.weights,
    mode,
    ...(mode === "lora" && options.lora !== undefined ? { lora: options.lora } : {}),
    seed: options.seed,
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    optimizer: {
      lr: phase.lr,
      weightDecay: phase.weightDecay,
      maxGradNorm: 1,
      schedule: {
        kind: "wsd",
        warmupSteps: Math.min(phase.warmupSteps, phase.steps - 1),
        totalSteps: phase.steps,
        decaySteps: Math.max(1, Math.round(phase.steps * phase.decayShare)),
        minLrRatio: 0.01,
      },
    },
  });
  try {
    for (let s = 1; s <= phase.steps; s++) {
      const r = await trainer.step(makeBatch(options.nextBatch(), { padId: options.padId }));
      options.onStep?.(s, phase.steps, r.loss);
    }
    return await trainer.getMergedWeights();
  } finally {
    await trainer.close();
  }
}

/** Greedy answers of one model to many prompts (batched KV-cached decoding), eos stripped. */
export async function greedyAnswers(generator: TextGenerator, prompts: readonly string[], maxDigits: number, bos = false, chunk = 256): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < prompts.length; i += chunk) {
    const part = prompts.slice(i, i + chunk);
    const gens = await generator.generate(part, { maxNewTokens: maxDigits + 1, greedy: true, addBos: bos });
    for (const g of gens) out.push(g.finishReason === "stop" ? g.text : `${g.text}?`);
  }
  return out;
}

/** Serves a lineage's current weights in its worker for the duration of `fn`. */
export async function withGenerator<T>(
  lineage: Lineage,
  config: TransformerConfig,
  tokenizer: Tokenizer,
  threads: number,
  fn: (g: TextGenerator) => Promise<T>,
): Promise<T> {
  const opened = await openWeights(lineage.host, { config, params: lineage.weights, tokenizer }, { intraOpThreads: threads, interOpThreads: 1 });
  try {
    return await fn(opened.generator);
  } finally {
    await opened.session.release().catch(() => undefined);
  }
}

/** Exact-match accuracy on held-out problems of each length. */
export async function accuracyByLength(
  generator: TextGenerator,
  pack: TaskPack,
  lengths: readonly number[],
  size: number,
  bos = false,
): Promise<{ length: number; accuracy: number }[]> {
  const sets = lengths.map((n) => pack.heldOut("test", n, Math.min(size, pack.heldOut("test", n).length)));
  const all: TaskExample[] = sets.flat();
  const answers = await greedyAnswers(
    generator,
    all.map((e) => e.prompt),
    Math.max(...lengths) + 1,
    bos,
  );
  let k = 0;
  return sets.map((set, i) => {
    let ok = 0;
    for (const e of set) if (pack.equivalent(answers[k++] as string, e.answer)) ok++;
    return { length: lengths[i] as number, accuracy: set.length === 0 ? 0 : ok / set.length };
  });
}

/** Longest L such that every length from..L reached `threshold` (from - 1 when `from` did not). */
export function frontierOf(accuracy: readonly { length: number; accuracy: number }[], threshold: number, from = 1): number {
  const byLength = new Map(accuracy.map((a) => [a.length, a.accuracy]));
  let f = from - 1;
  while ((byLength.get(f + 1) ?? -1) >= threshold) f++;
  return f;
}

/** Trains one base model from its seed on real problems of 1..baseDigits digits. */
export async function trainBase(options: {
  readonly config: SelfImprovementConfig;
  readonly seed: number;
  readonly host: ModelWorker;
  readonly onStep?: (step: number, total: number, loss: number) => void;
}): Promise<Parameters> {
  const c = options.config;
  const pack = recipeTask(c.task);
  const tokenizer = createTaskTokenizer(pack);
  const mc = modelConfig(c.model, tokenizer);
  const anchor = pack.createAnchorSource({ seed: `base:${options.seed}`, minDifficulty: pack.difficulty.min, maxDifficulty: c.baseDigits });
  return trainPhase({
    host: options.host,
    config: mc,
    weights: initParameters(mc, options.seed),
    phase: c.base,
    padId: tokenizer.padId ?? 0,
    nextBatch: () => anchor.take(c.base.batchSize).map((e) => toExample(tokenizer, e.prompt, e.answer, c.bos)),
    mode: "full",
    seed: options.seed,
    threads: c.threads,
    ...(options.onStep ? { onStep: options.onStep } : {}),
  });
}
