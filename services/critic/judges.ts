import type { OpenDecoder } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { ClassifierModel, ModelHolder } from "../../src/domain/serving/index.js";
import { createTaskTokenizer, type TaskPack } from "../../src/domain/tasks/index.js";
import type { GamePack } from "../../src/domain/games/index.js";

/** The critic methods a critic instance can run (`--kind`). */
export const CRITIC_KINDS = ["model", "likelihood", "rules", "novelty", "classifier", "verifier", "accept-all"] as const;
/** One critic method. */
export type CriticKind = (typeof CRITIC_KINDS)[number];

/** One judgement of one sample, before it becomes a Verdict. */
export interface Judgement {
  readonly approve: boolean;
  /** In [0, 1], higher = better sample. */
  readonly score: number;
  readonly reason: string;
  /** Model version that produced the judgement ("" for model-free methods). */
  readonly modelVersion: string;
}

/**
 * A critic method. Exists so the critic's bus and RPC plumbing is the same for every kind: only
 * `judge` differs. Throwing InvalidArgument / OutOfRange means "this sample is malformed for me" and
 * becomes a rejection with the error as reason.
 */
export interface Judge {
  readonly kind: CriticKind;
  judge(sample: Sample, task: TaskPack): Promise<Judgement>;
  /** Judges a game task's sample (its typed game record); critics without it reject game samples. */
  judgeGame?(sample: Sample, pack: GamePack): Promise<Judgement>;
  /** Told about every accepted decision (novelty remembers them). */
  noteAccepted?(sample: Sample): void;
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/** Rules critic: the task's format rules plus an optional cap on completion length. */
export function createRulesJudge(options: { maxCompletionChars?: number } = {}): Judge {
  return {
    kind: "rules",
    async judge(sample, task) {
      const completion = task.normalize(sample.completion);
      if (options.maxCompletionChars !== undefined && completion.length > options.maxCompletionChars) {
        return { approve: false, score: 0, reason: `completion has ${completion.length} characters, limit ${options.maxCompletionChars}`, modelVersion: "" };
      }
      const check = task.checkFormat(sample.prompt, sample.completion);
      return check.ok
        ? { approve: true, score: 1, reason: "format and length rules pass", modelVersion: "" }
        : { approve: false, score: 0, reason: check.reason, modelVersion: "" };
    },
  };
}

/**
 * Accept-all critic: approves every sample without looking. It exists for the no-consensus ablation
 * (`autodidact demo --no-consensus`), which shows what happens when nothing filters self-made labels.
 */
export function createAcceptAllJudge(): Judge {
  return {
    kind: "accept-all",
    async judge() {
      return { approve: true, score: 1, reason: "accept-all critic (no filtering: ablation)", modelVersion: "" };
    },
    async judgeGame() {
      return { approve: true, score: 1, reason: "accept-all critic (no filtering: ablation)", modelVersion: "" };
    },
  };
}

/** Verifier critic: the task's ground truth (only when a deployment configures it on purpose). */
export function createVerifierJudge(): Judge {
  return {
    kind: "verifier",
    async judge(sample, task) {
      if (task.verifier === undefined) {
        throw new AutodidactError(`task ${task.name} has no verifier`, Code.FailedPrecondition);
      }
      const ok = task.verifier.check(sample.prompt, sample.completion);
      return { approve: ok, score: ok ? 1 : 0, reason: ok ? "matches the ground truth" : "differs from the ground truth", modelVersion: "" };
    },
  };
}

/** Character n-grams of a string (the whole string when shorter than n). */
export function charNgrams(text: string, n: number): Set<string> {
  const out = new Set<string>();
  if (text.length <= n) {
    if (text.length > 0) out.add(text);
    return out;
  }
  for (let i = 0; i + n <= text.length; i++) out.add(text.slice(i, i + n));
  return out;
}

/** Jaccard similarity of two sets (0 when both are empty). */
export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let inter = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/** Options of {@link createNoveltyJudge}. */
export interface NoveltyOptions {
  /** Character n-gram size of the near-duplicate measure. Default 3. */
  readonly n?: number;
  /** Jaccard similarity above which a sample is a near-duplicate of a recent accepted one. Default 0.8. */
  readonly threshold?: number;
  /** Accepted samples per task the near-duplicate measure compares with. Default 1000. */
  readonly window?: number;
  /** Accepted prompts per task remembered for the already-labelled check. Default 100 000. */
  readonly promptMemory?: number;
}

/**
 * Novelty critic. Two measures, in order:
 * 1. **already labelled**: the sample's prompt (the task's prompt id) was accepted in an earlier round.
 *    A second label for the same problem adds no information and weights that problem twice in an
 *    accumulated training pool. This is what fires on short-answer tasks like addition, where text
 *    similarity cannot: two different random problems of the same length share few n-grams, and
 *    near-identical texts are the same problem. Within one round it does not fire (decisions of a
 *    round race each other, so the outcome would depend on timing); a redelivery of the accepted
 *    sample itself is not a repeat.
 * 2. **near-duplicate text**: prompt+completion character n-grams with Jaccard similarity above
 *    `threshold` to one of the last `window` accepted samples of the task (free-text tasks).
 * Memory comes from the accepted decisions the critic sees while it runs (not replayed on restart).
 */
export function createNoveltyJudge(options: NoveltyOptions = {}): Judge {
  const n = options.n ?? 3;
  const threshold = options.threshold ?? 0.8;
  const capacity = options.window ?? 1000;
  const promptCapacity = options.promptMemory ?? 100_000;
  const recent = new Map<string, Array<{ id: string; grams: Set<string> }>>();
  /** task → prompt → the first accepted sample of it. */
  const labelled = new Map<string, Map<string, { id: string; round: number }>>();
  const text = (s: Sample, task: TaskPack): string => `${s.prompt}${task.normalize(s.completion)}`;
  const tasks = new Map<string, TaskPack>();
  const remember = (sample: Sample): void => {
    let prompts = labelled.get(sample.task);
    if (prompts === undefined) labelled.set(sample.task, (prompts = new Map()));
    if (prompts.has(sample.prompt)) return;
    prompts.set(sample.prompt, { id: sample.id, round: sample.round });
    // Oldest first out (a Map iterates in insertion order).
    if (prompts.size > promptCapacity) prompts.delete(prompts.keys().next().value as string);
  };
  return {
    kind: "novelty",
    async judge(sample, task) {
      tasks.set(task.name, task);
      const first = labelled.get(task.name)?.get(sample.prompt);
      if (first !== undefined && first.id !== sample.id && first.round < sample.round) {
        return {
          approve: false,
          score: 0,
          reason: `already labelled: prompt ${task.promptId(sample.prompt)} was accepted in round ${first.round} (sample ${first.id})`,
          modelVersion: "",
        };
      }
      const grams = charNgrams(text(sample, task), n);
      let best = 0;
      let bestId = "";
      for (const r of recent.get(task.name) ?? []) {
        if (r.id === sample.id) continue;
        const sim = jaccard(grams, r.grams);
        if (sim > best) {
          best = sim;
          bestId = r.id;
        }
      }
      const approve = best <= threshold;
      return {
        approve,
        score: clamp01(1 - best),
        reason: approve ? `prompt not labelled in an earlier round; max similarity ${best.toFixed(3)} <= ${threshold}` : `near-duplicate of accepted sample ${bestId} (Jaccard ${best.toFixed(3)} > ${threshold})`,
        modelVersion: "",
      };
    },
    noteAccepted(sample) {
      remember(sample);
      let list = recent.get(sample.task);
      if (list === undefined) recent.set(sample.task, (list = []));
      if (list.some((r) => r.id === sample.id)) return;
      const task = tasks.get(sample.task);
      list.push({ id: sample.id, grams: charNgrams(task ? text(sample, task) : `${sample.prompt}${sample.completion}`, n) });
      if (list.length > capacity) list.splice(0, list.length - capacity);
    },
  };
}

/** Options of {@link createModelJudge}. */
export interface ModelJudgeOptions {
  /** Own answers per sample: 1 = greedy, more = seeded draws at `temperature`. */
  samples?: number;
  temperature?: number;
  /** Share of own answers that must agree with the sample's (default 0.5). */
  threshold?: number;
  /**
   * An own answer counts as agreeing only when its least likely token (end token included) has at
   * least this natural-log probability. Models that learned from the same data agree on some
   * wrong answers, and are less sure of those: at the edge of what they can do, this trades
   * accepted volume for label accuracy. Default: no confidence requirement.
   */
  minLogprob?: number;
}

/**
 * Model critic: its own model answers the prompt (greedy when `samples` is 1, else `samples`
 * seeded draws at `temperature`) and approves when the share of its answers equivalent to the
 * sample's (task-defined equivalence), and confident enough when `minLogprob` is set, reaches
 * `threshold`.
 */
export function createModelJudge(holder: ModelHolder<OpenDecoder>, options: ModelJudgeOptions = {}): Judge {
  const k = Math.max(1, options.samples ?? 1);
  const threshold = options.threshold ?? 0.5;
  const minLogprob = options.minLogprob ?? -Infinity;
  if (Number.isNaN(minLogprob) || minLogprob > 0) throw new AutodidactError(`minLogprob must be a log-probability (<= 0), got ${minLogprob}`, Code.InvalidArgument);
  return {
    kind: "model",
    judge: (sample, task) =>
      holder.use(async (model, version) => {
        const maxNewTokens = task.maxAnswerLength(task.difficultyOf(sample.prompt)) + 1;
        const prompts = Array.from({ length: k }, () => sample.prompt);
        const gens = await model.generator.generate(prompts, {
          maxNewTokens,
          addBos: true,
          ...(k === 1 ? { greedy: true } : { temperature: options.temperature ?? 0.7, seed: sample.id }),
        });
        const answers = gens.map((g) => task.normalize(g.text));
        const weakest = gens.map((g) => g.logprobs.reduce((m, lp) => Math.min(m, lp), 0));
        const equal = answers.map((a) => task.equivalent(a, sample.completion));
        const equalCount = equal.filter(Boolean).length;
        const agree = equal.filter((e, i) => e && (weakest[i] as number) >= minLogprob).length;
        const unsure = equalCount - agree;
        const share = agree / k;
        const approve = share >= threshold;
        const shown = answers[0] ?? "";
        const single = (): string => {
          if (approve) return "own answer agrees";
          if (equal[0] === true) return `own answer agrees but its weakest token log-prob ${(weakest[0] ?? 0).toFixed(3)} < ${minLogprob}`;
          return `own answer ${JSON.stringify(shown)} differs`;
        };
        return {
          approve,
          score: clamp01(share),
          reason: k === 1 ? single() : `${agree}/${k} own answers agree${unsure > 0 ? ` (${unsure} more below log-prob ${minLogprob})` : ""} (need ${threshold})`,
          modelVersion: version,
        };
      }),
  };
}

/**
 * Likelihood critic: teacher-forced mean log-probability per token of the completion (with its end
 * token) under the critic's model; approves at or above `threshold` (natural log). Score = exp(mean).
 */
export function createLikelihoodJudge(holder: ModelHolder<OpenDecoder>, options: { threshold?: number } = {}): Judge {
  const threshold = options.threshold ?? Math.log(0.5);
  return {
    kind: "likelihood",
    judge: (sample, task) =>
      holder.use(async (model, version) => {
        const completion = task.normalize(sample.completion);
        const [row] = await model.generator.score([sample.prompt], [completion], { addBos: true, addEos: true });
        if (row === undefined || row.logprobs.length === 0) throw new AutodidactError("nothing to score", Code.InvalidArgument);
        const mean = row.total / row.logprobs.length;
        const approve = mean >= threshold;
        return {
          approve,
          score: clamp01(Math.exp(mean)),
          reason: `mean log-prob ${mean.toFixed(3)} ${approve ? ">=" : "<"} ${threshold.toFixed(3)}`,
          modelVersion: version,
        };
      }),
  };
}

/**
 * Classifier critic: an ONNX sequence classifier / reward model reads prompt + completion and
 * approves when the probability of `label` reaches `threshold`.
 */
export function createClassifierJudge(holder: ModelHolder<ClassifierModel>, options: { label?: number; threshold?: number } = {}): Judge {
  const label = options.label ?? 1;
  const threshold = options.threshold ?? 0.5;
  return {
    kind: "classifier",
    judge: (sample, task) =>
      holder.use(async (model, version) => {
        const tokenizer = model.tokenizer ?? createTaskTokenizer(task);
        const ids = tokenizer.encode(`${sample.prompt}${task.normalize(sample.completion)}`, { addBos: tokenizer.bosId !== null });
        const [probs] = await model.classify([ids]);
        const p = probs?.[label];
        if (p === undefined) throw new AutodidactError(`classifier has no label ${label} (labels: ${probs?.length ?? 0})`, Code.FailedPrecondition);
        const approve = p >= threshold;
        return { approve, score: clamp01(p), reason: `p(label ${label}) = ${p.toFixed(3)} ${approve ? ">=" : "<"} ${threshold}`, modelVersion: version };
      }),
  };
}
