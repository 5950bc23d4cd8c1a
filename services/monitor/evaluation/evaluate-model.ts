import { createHash } from "node:crypto";
import type { TextGenerator } from "../../../src/engine/index.js";
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { taskIdentity, type HeldOutSplit, type TaskExample, type TaskIdentity, type TaskPack } from "../../../src/domain/tasks/index.js";
import { detectCollapse, type CollapseAlarm, type CollapseSignals, type CollapseThresholds } from "./detectors.js";
import { distinctN, entropy, expectedCalibrationError, klDivergence, overconfidentWrongRate, tokenCounts } from "./metrics.js";

/**
 * Accuracy a difficulty needs to count for the frontier. One number for every frontier the monitor
 * reports (the README's definition: every length from 1 to L at >= 95 %).
 */
export const FRONTIER_THRESHOLD = 0.95;

/**
 * The frontier of per-difficulty accuracies: the largest L such that every difficulty from `from`
 * (the task's easiest, 1 for the built-in tasks) to L was evaluated and reached `threshold`;
 * `from - 1` when `from` did not. A gap or a miss at an easy length ends it: easy tails count.
 */
export function frontierOf(perDifficulty: readonly { difficulty: number; accuracy: number }[], from: number, threshold = FRONTIER_THRESHOLD): number {
  const byDifficulty = new Map(perDifficulty.map((d) => [d.difficulty, d.accuracy]));
  let frontier = from - 1;
  while ((byDifficulty.get(frontier + 1) ?? -1) >= threshold) frontier++;
  return frontier;
}

/** Metrics of one difficulty level of one held-out split. */
export interface DifficultyReport {
  readonly difficulty: number;
  readonly count: number;
  readonly accuracy: number;
  /** Mean per-token cross-entropy (nats) of the reference answers (teacher-forced, answer + end token). */
  readonly loss: number;
  readonly calibrationEce: number;
}

/**
 * The monitor's evaluation of one model on the task's real held-out data: what the gate compares and
 * the dashboard plots. Plain data (JSON-safe), converted to the wire `Evaluation` by the service.
 */
export interface EvaluationReport {
  readonly task: string;
  /** The held-out split evaluated: every number below comes from it alone. */
  readonly split: HeldOutSplit;
  readonly perDifficulty: readonly DifficultyReport[];
  readonly accuracy: number;
  readonly loss: number;
  readonly calibrationEce: number;
  readonly overconfidentWrongRate: number;
  /** n → distinct-n of sampled (temperature 1) answers. */
  readonly distinctN: Readonly<Record<number, number>>;
  /** Entropy (nats) of the tokens of sampled answers. */
  readonly tokenEntropy: number;
  /** Accuracy on held-out problems tagged with a rare slice (e.g. long carry chains). */
  readonly tailCoverage: number;
  /** Accuracy per rare slice. */
  readonly sliceAccuracy: Readonly<Record<string, number>>;
  /** KL (nats) of the sampled answers' token distribution from the real answers'. */
  readonly driftKl: number;
  /** {@link frontierOf} this split's accuracies at {@link FRONTIER_THRESHOLD} (the test split's is the result). */
  readonly frontier: number;
  /** SHA-256 of the evaluated problem ids: evaluations compare only on the same set. */
  readonly evalSetDigest: string;
  /** The task code and data evaluated with (absent in evaluations stored before it was recorded). */
  readonly taskIdentity?: TaskIdentity;
  readonly alarms: readonly CollapseAlarm[];
  readonly durationMs: number;
}

/** Options of {@link evaluateModel}. */
export interface EvaluateModelOptions {
  /** The held-out split to evaluate (the gate reads validation; results come from test). */
  readonly split: HeldOutSplit;
  /**
   * Greedy accuracy only (no teacher-forced loss, no sampled answers): what a results-only
   * evaluation needs, at about a third of the cost. Loss, calibration, diversity and drift read 0.
   */
  readonly accuracyOnly?: boolean;
  /** Difficulties to evaluate; default the pack's whole range. */
  readonly difficulties?: readonly number[];
  /** Cap on problems per difficulty (default: the whole held-out set). */
  readonly limitPerDifficulty?: number;
  /**
   * Cap on the temperature-1 answers sampled per difficulty for diversity and drift (the first problems
   * of each evaluated set; default: all of them). Sampling decodes token by token and costs about as
   * much as the rest of the evaluation together, while distinct-n and drift need far fewer answers
   * than accuracy does.
   */
  readonly samplesPerDifficulty?: number;
  /** Confidence (sequence probability) above which a wrong answer counts as overconfident. Default 0.9. */
  readonly overconfidenceThreshold?: number;
  /** Seed of the sampled generations (diversity, drift). */
  readonly seed?: number | string;
  /** Rows per engine call. Default 64. */
  readonly batchSize?: number;
  /** Reference signals (the incumbent's) and thresholds for the collapse detectors. */
  readonly reference?: CollapseSignals;
  readonly thresholds?: CollapseThresholds;
}

async function inBatches<T, R>(items: readonly T[], size: number, run: (batch: readonly T[]) => Promise<R[]>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await run(items.slice(i, i + size))));
  return out;
}

/** The collapse signals of an evaluation, for comparing against another one. */
export function signalsOf(report: EvaluationReport): CollapseSignals {
  return {
    accuracy: report.accuracy,
    distinct2: report.distinctN[2],
    tokenEntropy: report.tokenEntropy,
    tailCoverage: report.tailCoverage,
    overconfidentWrongRate: report.overconfidentWrongRate,
    calibrationEce: report.calibrationEce,
    driftKl: report.driftKl,
  };
}

/** An evaluation of no problems (a split the policy allows nowhere): zeros, no alarms. */
export function emptyEvaluation(pack: TaskPack, split: HeldOutSplit): EvaluationReport {
  return {
    task: pack.name,
    split,
    perDifficulty: [],
    accuracy: 0,
    loss: 0,
    calibrationEce: 0,
    overconfidentWrongRate: 0,
    distinctN: {},
    tokenEntropy: 0,
    tailCoverage: 1,
    sliceAccuracy: {},
    driftKl: 0,
    frontier: pack.difficulty.min - 1,
    evalSetDigest: createHash("sha256").update(`${split}:`).digest("hex"),
    alarms: [],
    durationMs: 0,
  };
}

/**
 * Evaluates a decoder on one of the pack's real held-out splits: greedy answers judged by the verifier (exact
 * match), teacher-forced loss of the true answers, calibration of the greedy answer's sequence
 * probability, diversity and drift of sampled answers, tail coverage on rare slices, and the collapse
 * alarms against `reference`. Runs on the engine's worker (never blocks the event loop).
 */
export async function evaluateModel(generator: TextGenerator, pack: TaskPack, options: EvaluateModelOptions): Promise<EvaluationReport> {
  const started = performance.now();
  const difficulties = options.difficulties ?? Array.from({ length: pack.difficulty.max - pack.difficulty.min + 1 }, (_, i) => pack.difficulty.min + i);
  const batchSize = options.batchSize ?? 64;
  const threshold = options.overconfidenceThreshold ?? 0.9;
  const check = (ex: TaskExample, completion: string): boolean => (pack.verifier ? pack.verifier.check(ex.prompt, completion) : pack.normalize(completion) === ex.answer);
  const eos = pack.tokenizer.special.eos;

  const perDifficulty: DifficultyReport[] = [];
  const allConf: number[] = [];
  const allRight: boolean[] = [];
  const sampled: string[] = [];
  const realAnswers: string[] = [];
  const slice = new Map<string, { n: number; right: number }>();
  const ids: string[] = [];
  let lossSum = 0;
  let lossTokens = 0;
  for (const d of difficulties) {
    const full = pack.heldOut(options.split, d);
    const set = options.limitPerDifficulty ? full.slice(0, options.limitPerDifficulty) : full;
    if (set.length === 0) continue;
    const maxNewTokens = pack.maxAnswerLength(d) + 1;
    const greedy = await inBatches(set, batchSize, (b) => generator.generate(b.map((e) => e.prompt), { maxNewTokens, greedy: true, addBos: true }));
    const scored = options.accuracyOnly
      ? set.map(() => ({ total: 0, logprobs: [] as number[] }))
      : await inBatches(set, batchSize, (b) => generator.score(b.map((e) => e.prompt), b.map((e) => `${e.answer}${eos}`), { addBos: true }));
    const toSample = options.accuracyOnly ? [] : options.samplesPerDifficulty ? set.slice(0, options.samplesPerDifficulty) : set;
    const samples = await inBatches(toSample, batchSize, (b) =>
      generator.generate(b.map((e) => e.prompt), { maxNewTokens, temperature: 1, seed: `${options.seed ?? 0}:${d}`, addBos: true }),
    );
    const conf: number[] = [];
    const right: boolean[] = [];
    let dLoss = 0;
    let dTokens = 0;
    set.forEach((ex, i) => {
      ids.push(ex.id);
      const g = greedy[i]!;
      const ok = check(ex, g.text);
      const p = Math.exp(g.logprobs.reduce((a, b) => a + b, 0));
      conf.push(Math.min(1, Math.max(0, p)));
      right.push(ok);
      const s = scored[i]!;
      dLoss -= s.total;
      dTokens += s.logprobs.length;
      if (i < samples.length) {
        sampled.push(pack.normalize(samples[i]!.text));
        realAnswers.push(ex.answer);
      }
      for (const tag of ex.slices) {
        const e = slice.get(tag) ?? { n: 0, right: 0 };
        e.n++;
        if (ok) e.right++;
        slice.set(tag, e);
      }
    });
    const acc = right.filter(Boolean).length / right.length;
    perDifficulty.push({ difficulty: d, count: set.length, accuracy: acc, loss: dTokens ? dLoss / dTokens : 0, calibrationEce: expectedCalibrationError(conf, right) });
    allConf.push(...conf);
    allRight.push(...right);
    lossSum += dLoss;
    lossTokens += dTokens;
  }
  if (allRight.length === 0) throw new AutodidactError(`task ${pack.name}: no ${options.split} problems to evaluate at difficulties ${difficulties.join(",")}`, Code.FailedPrecondition);
  let tailN = 0;
  let tailRight = 0;
  const sliceAccuracy: Record<string, number> = {};
  for (const [tag, e] of slice) {
    sliceAccuracy[tag] = e.right / e.n;
    tailN += e.n;
    tailRight += e.right;
  }
  const base = {
    task: pack.name,
    split: options.split,
    taskIdentity: taskIdentity(pack.name),
    perDifficulty,
    accuracy: allRight.filter(Boolean).length / allRight.length,
    loss: lossTokens ? lossSum / lossTokens : 0,
    calibrationEce: expectedCalibrationError(allConf, allRight),
    overconfidentWrongRate: overconfidentWrongRate(allConf, allRight, threshold),
    distinctN: { 1: distinctN(sampled, 1), 2: distinctN(sampled, 2), 3: distinctN(sampled, 3) },
    tokenEntropy: entropy(tokenCounts(sampled)),
    tailCoverage: tailN ? tailRight / tailN : 1,
    sliceAccuracy,
    driftKl: klDivergence(tokenCounts(sampled), tokenCounts(realAnswers)),
    frontier: frontierOf(perDifficulty, pack.difficulty.min),
    // A capped sample count is part of the set: distinct-n and drift compare only at the same count.
    evalSetDigest: createHash("sha256")
      .update(`${options.split}:` + ids.join("\n") + (options.accuracyOnly ? "\naccuracy only" : "") + (options.samplesPerDifficulty ? `\nsamples per difficulty: ${options.samplesPerDifficulty}` : ""))
      .digest("hex"),
    alarms: [] as CollapseAlarm[],
    durationMs: 0,
  };
  const alarms = options.accuracyOnly ? [] : detectCollapse(signalsOf(base), options.reference, options.thresholds);
  return { ...base, alarms, durationMs: performance.now() - started };
}

/** A synthetic sample that trained a candidate, as listed in its manifest. */
export interface LabeledSample {
  readonly prompt: string;
  readonly completion: string;
}

/**
 * Label accuracy of training data, judged by the task's verifier (ground truth the critics did not
 * use): the share of samples whose completion is the true answer. FailedPrecondition when the task has
 * no verifier; NaN-free (0 samples gives 0 with count 0).
 */
export function labelAccuracy(pack: TaskPack, samples: readonly LabeledSample[]): { accuracy: number; count: number } {
  const verifier = pack.verifier;
  if (verifier === undefined) throw new AutodidactError(`task ${pack.name} has no verifier: label accuracy cannot be measured`, Code.FailedPrecondition);
  if (samples.length === 0) return { accuracy: 0, count: 0 };
  const right = samples.filter((s) => verifier.check(s.prompt, s.completion)).length;
  return { accuracy: right / samples.length, count: samples.length };
}
