import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { TaskExample, TaskPack } from "./task-pack.js";

/** Outcome of an ensemble vote over several models' answers to one prompt (Lee et al. 2025). */
export interface EnsembleVote {
  /** The most common answer among those that pass the length filter (normalized), or null when none does. */
  readonly answer: string | null;
  /** Share of ALL answers (filtered ones count against) that equal `answer`. */
  readonly share: number;
  /** Whether `share` reached the threshold: the pseudo-label is trusted. */
  readonly agreed: boolean;
  /** How many answers the length filter dropped. */
  readonly droppedByLength: number;
}

/**
 * Majority vote with the length filter, the two filters that keep self-generated labels clean in
 * Lee et al. 2025: answers shorter than the longest by `maxShortfall` are dropped, the rest are
 * grouped by the task's equivalence, and the largest group wins if it holds at least `threshold`
 * of all answers. Ties go to the longer answer, then the lexicographically smaller one, so the
 * result does not depend on the order of the ensemble.
 */
export function ensembleVote(
  pack: TaskPack,
  answers: readonly string[],
  options: { threshold?: number; maxShortfall?: number } = {},
): EnsembleVote {
  const threshold = options.threshold ?? 0.5;
  if (!(threshold > 0 && threshold <= 1)) throw new AutodidactError(`threshold must be in (0, 1], got ${threshold}`, Code.InvalidArgument);
  if (answers.length === 0) return { answer: null, share: 0, agreed: false, droppedByLength: 0 };
  const keep = pack.lengthFilter(answers, options.maxShortfall);
  const counts = new Map<string, number>();
  answers.forEach((a, i) => {
    if (!keep[i]) return;
    const n = pack.normalize(a);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  });
  let best: string | null = null;
  let bestCount = 0;
  for (const [answer, count] of counts) {
    const better =
      best === null ||
      count > bestCount ||
      (count === bestCount && (answer.length > best.length || (answer.length === best.length && answer < best)));
    if (better) {
      best = answer;
      bestCount = count;
    }
  }
  const share = bestCount / answers.length;
  return { answer: best, share, agreed: best !== null && share >= threshold, droppedByLength: keep.filter((k) => !k).length };
}

/** Accuracy of a set of answers against ground truth, overall, per difficulty and per rare slice. */
export interface AccuracyReport {
  readonly total: number;
  readonly correct: number;
  readonly accuracy: number;
  readonly byDifficulty: ReadonlyMap<number, { total: number; correct: number; accuracy: number }>;
  /** Every slice the task declares appears, with total 0 when the set holds none of it. */
  readonly bySlice: ReadonlyMap<string, { total: number; correct: number; accuracy: number }>;
}

/**
 * Scores model answers on held-out examples with the task's equivalence against the true answer.
 * The monitor uses it for accuracy per difficulty (the curriculum) and per rare slice (the tails
 * that vanish first in model collapse).
 */
export function scoreAnswers(pack: TaskPack, examples: readonly TaskExample[], answers: readonly string[]): AccuracyReport {
  if (examples.length !== answers.length) {
    throw new AutodidactError(`${examples.length} examples but ${answers.length} answers`, Code.InvalidArgument);
  }
  const byDifficulty = new Map<number, { total: number; correct: number; accuracy: number }>();
  const bySlice = new Map<string, { total: number; correct: number; accuracy: number }>(
    pack.sliceNames.map((s) => [s, { total: 0, correct: 0, accuracy: 0 }]),
  );
  let correct = 0;
  const bump = (entry: { total: number; correct: number; accuracy: number }, ok: boolean): void => {
    entry.total++;
    if (ok) entry.correct++;
    entry.accuracy = entry.correct / entry.total;
  };
  examples.forEach((e, i) => {
    const ok = pack.equivalent(answers[i] as string, e.answer);
    if (ok) correct++;
    let d = byDifficulty.get(e.difficulty);
    if (d === undefined) {
      d = { total: 0, correct: 0, accuracy: 0 };
      byDifficulty.set(e.difficulty, d);
    }
    bump(d, ok);
    for (const slice of e.slices) {
      let s = bySlice.get(slice);
      if (s === undefined) {
        s = { total: 0, correct: 0, accuracy: 0 };
        bySlice.set(slice, s);
      }
      bump(s, ok);
    }
  });
  return {
    total: examples.length,
    correct,
    accuracy: examples.length === 0 ? 0 : correct / examples.length,
    byDifficulty: new Map([...byDifficulty.entries()].sort(([a], [b]) => a - b)),
    bySlice,
  };
}
