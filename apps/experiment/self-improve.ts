import {
  createModelWorker,
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
import { createRng, createTaskTokenizer, ensembleVote, getTaskPack, type Rng, type TaskExample, type TaskPack } from "../../src/domain/tasks/index.js";
import { checkConfig, type ModelShape, type SelfImprovementConfig, type TrainPhase } from "./recipe.js";

/** A prompt with the label the ensemble (or the generator alone) gave it. */
export interface LabelledSample {
  readonly prompt: string;
  readonly answer: string;
  readonly difficulty: number;
}

/** One independently seeded model: its worker thread and current weights. */
export interface Lineage {
  readonly name: string;
  readonly seed: number;
  readonly host: ModelWorker;
  weights: Parameters;
}

/** What one round (or the base training, round 0) measured. */
export interface RoundReport {
  readonly round: number;
  /**
   * Length whose problems were self-labelled this round (null for the base round): one past the
   * longest length whose labels were accepted (see `minAcceptedShare`).
   */
  readonly labelLength: number | null;
  readonly proposed: number;
  readonly accepted: number;
  /** Verifier accuracy (reporting only) of every proposed label (the generator's answers). */
  readonly proposedAccuracy: number | null;
  /** Verifier accuracy of the accepted labels. */
  readonly acceptedAccuracy: number | null;
  /** Synthetic samples in the training pool after this round. */
  readonly poolSize: number;
  /** Exact-match accuracy per length on held-out problems, per lineage (first = generator). */
  readonly accuracy: readonly (readonly { readonly length: number; readonly accuracy: number }[])[];
  /** Frontier per lineage: longest L with every length 1..L at >= the threshold. */
  readonly frontiers: readonly number[];
  /** Frontier of the generator lineage. */
  readonly frontier: number;
  readonly trainSeconds: number;
  readonly wallSeconds: number;
}

/** Final outcome of {@link runSelfImprovement}. */
export interface SelfImprovementResult {
  readonly config: SelfImprovementConfig;
  readonly rounds: readonly RoundReport[];
  readonly baseFrontier: number;
  readonly finalFrontier: number;
  readonly wallSeconds: number;
}

/** Hooks of {@link runSelfImprovement}. */
export interface RunHooks {
  readonly onRound?: (report: RoundReport) => void;
  /** Progress of training phases (lineage, step, total, loss). */
  readonly onStep?: (lineage: string, step: number, total: number, loss: number) => void;
  /** Use these base weights (e.g. loaded checkpoints) instead of training base models. */
  readonly baseWeights?: readonly Parameters[];
}

/** The task pack a config names (both recipe tasks are built into src/domain/tasks). */
export function recipeTask(name: SelfImprovementConfig["task"]): TaskPack {
  return getTaskPack(name);
}

/** The task's transformer config for a model shape (NoPE, as in Lee et al. 2025). */
export function modelConfig(shape: ModelShape, tokenizer: Tokenizer): TransformerConfig {
  return createTransformerConfig({ ...shape, vocabSize: tokenizer.vocabSize, positional: "none" });
}

/** Tokenizes a prompt/answer pair as a supervised example (answer followed by eos). */
export function toExample(tokenizer: Tokenizer, prompt: string, answer: string, bos = false): Example {
  const eos = tokenizer.eosId;
  if (eos === null) throw new AutodidactError("the task tokenizer has no eos token", Code.FailedPrecondition);
  return { prompt: tokenizer.encode(prompt, { addBos: bos }), completion: [...tokenizer.encode(answer), eos] };
}

/**
 * The mix rule of every fine-tuning batch: at least `anchorShare` of the rows are real anchor
 * problems (1..baseDigits digits); the rest are drawn uniformly from the synthetic pool. A pool
 * smaller than `fullPool` gets a proportionally smaller share (the rest is anchor data), so a
 * handful of accepted labels is never repeated into most of every batch; an empty pool gives an
 * all-anchor batch. Real data in every batch is what keeps the model tied to reality.
 */
export function mixBatch<T>(options: {
  readonly batchSize: number;
  readonly anchorShare: number;
  readonly nextAnchor: () => T;
  readonly pool: readonly T[];
  readonly rng: Rng;
  /** Pool size from which synthetic rows get their full share; default 0 (always full). */
  readonly fullPool?: number;
}): T[] {
  const { batchSize, anchorShare, nextAnchor, pool, rng } = options;
  const minAnchors = Math.min(batchSize, Math.ceil(batchSize * anchorShare));
  const fill = options.fullPool === undefined || options.fullPool <= 0 ? 1 : Math.min(1, pool.length / options.fullPool);
  const anchors = pool.length === 0 ? batchSize : batchSize - Math.floor((batchSize - minAnchors) * fill);
  const rows: T[] = [];
  for (let i = 0; i < anchors; i++) rows.push(nextAnchor());
  for (let i = anchors; i < batchSize; i++) rows.push(pool[rng.int(0, pool.length - 1)] as T);
  return rows;
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

/** Settings of {@link filterLabels}. */
export interface LabelFilter {
  readonly vote: boolean;
  readonly voteThreshold: number;
  readonly lengthFilter: boolean;
}

/**
 * Turns every model's answers into accepted labels. With `vote`, the ensemble majority (with the
 * task's length filter when `lengthFilter`) must reach the threshold; without it the generator's
 * (first model's) answer is the label, dropped only by the length filter if that is on. Answers
 * that did not finish (no eos) are never labels. Returns one label or null per prompt.
 */
export function filterLabels(pack: TaskPack, prompts: readonly string[], answersByModel: readonly (readonly string[])[], filter: LabelFilter): (string | null)[] {
  return prompts.map((_, i) => {
    const answers = answersByModel.map((a) => a[i] as string);
    const finished = (a: string): boolean => a.length > 0 && !a.endsWith("?");
    if (filter.vote) {
      const usable = answers.map((a) => (finished(a) ? a : ""));
      const v = ensembleVote(pack, usable, { threshold: filter.voteThreshold, ...(filter.lengthFilter ? {} : { maxShortfall: Number.MAX_SAFE_INTEGER }) });
      return v.agreed && v.answer !== null && v.answer.length > 0 ? v.answer : null;
    }
    const own = answers[0] as string;
    if (!finished(own)) return null;
    if (filter.lengthFilter) {
      const keep = pack.lengthFilter(answers.map((a) => (finished(a) ? a : "")));
      if (!keep[0]) return null;
    }
    return own;
  });
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
  const anchor = pack.createAnchorSource({ seed: `base:${options.seed}`, minDifficulty: 1, maxDifficulty: c.baseDigits });
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

/** Verifier accuracy of labels (reporting only; never used to decide). */
function labelAccuracy(pack: TaskPack, samples: readonly { prompt: string; answer: string }[]): number | null {
  const v = pack.verifier;
  if (v === undefined || samples.length === 0) return null;
  return samples.filter((s) => v.check(s.prompt, s.answer)).length / samples.length;
}

/**
 * Runs the whole recipe in process: base models (trained, or given), then `rounds` rounds of
 * self-labelling one digit past the longest trained length, vote + length filter, accumulated (or
 * replaced) synthetic data mixed with real anchors, per-lineage fine-tuning, held-out evaluation.
 */
export async function runSelfImprovement(config: SelfImprovementConfig, hooks: RunHooks = {}): Promise<SelfImprovementResult> {
  checkConfig(config);
  const started = Date.now();
  const pack = recipeTask(config.task);
  const tokenizer = createTaskTokenizer(pack);
  const mc = modelConfig(config.model, tokenizer);
  const padId = tokenizer.padId ?? 0;
  const lineages: Lineage[] = config.seeds.map((seed) => ({
    name: `lineage-${seed}`,
    seed,
    host: createModelWorker({ name: `experiment-${seed}` }),
    weights: {},
  }));
  const reports: RoundReport[] = [];
  try {
    const evaluate = async (maxLength: number): Promise<{ accuracy: { length: number; accuracy: number }[][]; frontiers: number[] }> => {
      const lengths = Array.from({ length: maxLength }, (_, i) => i + 1);
      const accuracy = await Promise.all(
        lineages.map((l) => withGenerator(l, mc, tokenizer, config.threads, (g) => accuracyByLength(g, pack, lengths, config.evalSize, config.bos))),
      );
      return { accuracy, frontiers: accuracy.map((a) => frontierOf(a, config.frontierThreshold, config.frontierFrom)) };
    };
    // Round 0: base models.
    let t0 = Date.now();
    await Promise.all(
      lineages.map(async (l, i) => {
        const given = hooks.baseWeights?.[i];
        l.weights =
          given ??
          (await trainBase({
            config,
            seed: l.seed,
            host: l.host,
            ...(hooks.onStep ? { onStep: (s: number, t: number, loss: number) => hooks.onStep?.(l.name, s, t, loss) } : {}),
          }));
      }),
    );
    const trainSeconds0 = (Date.now() - t0) / 1000;
    let trained = config.baseDigits;
    const ev0 = await evaluate(trained + 2);
    const base: RoundReport = {
      round: 0,
      labelLength: null,
      proposed: 0,
      accepted: 0,
      proposedAccuracy: null,
      acceptedAccuracy: null,
      poolSize: 0,
      accuracy: ev0.accuracy,
      frontiers: ev0.frontiers,
      frontier: ev0.frontiers[0] as number,
      trainSeconds: trainSeconds0,
      wallSeconds: (Date.now() - started) / 1000,
    };
    reports.push(base);
    hooks.onRound?.(base);

    let pool: LabelledSample[] = [];
    for (let round = 1; round <= config.rounds; round++) {
      const labelLength = trained + 1;
      const prompts = pack
        .createPromptSampler({ seed: `round:${round}`, difficulty: labelLength })
        .take(config.samplesPerRound)
        .map((p) => p.prompt);
      const answersByModel = await Promise.all(
        lineages.map((l) => withGenerator(l, mc, tokenizer, config.threads, (g) => greedyAnswers(g, prompts, labelLength + 1, config.bos))),
      );
      const labels = filterLabels(pack, prompts, answersByModel, config);
      const proposed = prompts.map((prompt, i) => ({ prompt, answer: (answersByModel[0] as string[])[i] as string }));
      const accepted: LabelledSample[] = [];
      labels.forEach((answer, i) => {
        if (answer !== null) accepted.push({ prompt: prompts[i] as string, answer, difficulty: labelLength });
      });
      pool = config.data === "accumulate" ? [...pool, ...accepted] : accepted;
      const poolExamples = pool.map((s) => toExample(tokenizer, s.prompt, s.answer, config.bos));
      t0 = Date.now();
      await Promise.all(
        lineages.map(async (l) => {
          const anchor = pack.createAnchorSource({ seed: `anchor:${l.seed}:${round}`, minDifficulty: 1, maxDifficulty: config.baseDigits });
          const rng = createRng("mix", l.seed, round);
          l.weights = await trainPhase({
            host: l.host,
            config: mc,
            weights: l.weights,
            phase: config.round,
            padId,
            nextBatch: () =>
              mixBatch({
                batchSize: config.round.batchSize,
                anchorShare: config.anchorShare,
                nextAnchor: () => {
                  const e = anchor.next();
                  return toExample(tokenizer, e.prompt, e.answer, config.bos);
                },
                pool: poolExamples,
                rng,
                fullPool: config.samplesPerRound / 2,
              }),
            mode: config.mode,
            ...(config.lora !== undefined ? { lora: config.lora } : {}),
            seed: l.seed * 1000 + round,
            threads: config.threads,
            ...(hooks.onStep ? { onStep: (s: number, t: number, loss: number) => hooks.onStep?.(l.name, s, t, loss) } : {}),
          });
        }),
      );
      const trainSeconds = (Date.now() - t0) / 1000;
      if (accepted.length >= config.minAcceptedShare * prompts.length) trained = labelLength;
      const ev = await evaluate(trained + 2);
      const report: RoundReport = {
        round,
        labelLength,
        proposed: prompts.length,
        accepted: accepted.length,
        proposedAccuracy: labelAccuracy(pack, proposed),
        acceptedAccuracy: labelAccuracy(pack, accepted),
        poolSize: pool.length,
        accuracy: ev.accuracy,
        frontiers: ev.frontiers,
        frontier: ev.frontiers[0] as number,
        trainSeconds,
        wallSeconds: (Date.now() - started) / 1000,
      };
      reports.push(report);
      hooks.onRound?.(report);
    }
    const baseFrontier = reports[0]?.frontier ?? 0;
    return {
      config,
      rounds: reports,
      baseFrontier,
      finalFrontier: reports[reports.length - 1]?.frontier ?? baseFrontier,
      wallSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    await Promise.all(lineages.map((l) => l.host.close().catch(() => undefined)));
  }
}
