import { createTaskTokenizer } from "./tokenizer-spec.js";
import { HELD_OUT_SPLITS, type TaskExample, type TaskPack, type TaskProblem } from "./task-pack.js";
import type { DatasetPack } from "./dataset/index.js";
import { DATASET_SPLITS } from "./dataset/index.js";

/** One check of {@link checkTaskPack}: a name, whether it passed, and what it found. */
export interface TaskCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What `autodidact task check` prints: every check, counts per split and difficulty, a few examples. */
export interface TaskCheckReport {
  readonly task: string;
  readonly checks: readonly TaskCheck[];
  /** split → difficulty → count (drawn counts for generator packs' anchor and sampler). */
  readonly counts: Readonly<Record<string, ReadonlyMap<number, number>>>;
  readonly examples: Readonly<Record<string, readonly TaskProblem[]>>;
  readonly ok: boolean;
}

/** Knobs of {@link checkTaskPack}. */
export interface TaskCheckOptions {
  /** Problems drawn per difficulty from the sampler and the anchor source. Default 64. */
  readonly draws?: number;
  /** Seeds the determinism check compares. Default [1, 2]. */
  readonly seeds?: readonly number[];
}

const isDataset = (pack: TaskPack): pack is DatasetPack => typeof (pack as Partial<DatasetPack>).rows === "function";
const same = (a: readonly TaskProblem[], b: readonly TaskProblem[]): boolean => a.length === b.length && a.every((p, i) => p.prompt === b[i]?.prompt && p.difficulty === b[i]?.difficulty);
const quote = (s: string): string => JSON.stringify(s.length > 50 ? `${s.slice(0, 50)}…` : s);

/** Runs a check, turning a throw into a failed check that says what was thrown. */
function attempt(name: string, body: () => string | { ok: boolean; detail: string }): TaskCheck {
  try {
    const r = body();
    return typeof r === "string" ? { name, ok: true, detail: r } : { name, ...r };
  } catch (err) {
    return { name, ok: false, detail: `threw: ${(err as Error).message}` };
  }
}

/** Draws of the prompt sampler per difficulty (difficulties without prompts left out), per seed. */
function drawSampler(pack: TaskPack, seed: number, draws: number): Map<number, TaskProblem[]> {
  const out = new Map<number, TaskProblem[]>();
  for (let d = pack.difficulty.min; d <= pack.difficulty.max; d++) {
    try {
      out.set(d, pack.createPromptSampler({ seed, difficulty: d }).take(draws));
    } catch {
      // no prompts at this difficulty (a data-set pool that does not reach it)
    }
  }
  return out;
}

/**
 * Checks a task pack the way the mesh will use it: the sampler and the anchor source are deterministic
 * per seed, held-out splits are disjoint from each other and from everything trained on or proposed
 * from, the tokenizer covers every prompt and answer, and the pack's own answers pass its equivalence,
 * format and length rules. Never throws: a failing part is a failed check.
 */
export function checkTaskPack(pack: TaskPack, options: TaskCheckOptions = {}): TaskCheckReport {
  const draws = options.draws ?? 64;
  const [s1, s2] = options.seeds ?? [1, 2];
  const checks: TaskCheck[] = [];
  const sampled = drawSampler(pack, s1!, draws);
  checks.push(
    attempt("sampler deterministic per seed", () => {
      if (sampled.size === 0) return { ok: false, detail: "the sampler yields no prompt at any difficulty" };
      const again = drawSampler(pack, s1!, draws);
      const bad = [...sampled].filter(([d, ps]) => !same(ps, again.get(d) ?? []));
      if (bad.length > 0) return { ok: false, detail: `seed ${s1} gave different prompts on a second draw at difficulty ${bad.map(([d]) => d).join(", ")}` };
      const other = drawSampler(pack, s2!, draws);
      const varies = [...sampled].some(([d, ps]) => !same(ps, other.get(d) ?? []));
      return `${sampled.size} difficulties, ${draws} prompts each, same per seed${varies ? "" : " (seeds " + s1 + " and " + s2 + " draw alike: a tiny pool?)"}`;
    }),
  );
  const anchorRange = { minDifficulty: pack.difficulty.min, maxDifficulty: pack.difficulty.max };
  let anchor: TaskExample[] = [];
  checks.push(
    attempt("anchor deterministic per seed", () => {
      const ranges = anchorRanges(pack, anchorRange);
      if (ranges.length === 0) return "no anchor data";
      for (const r of ranges) {
        const a = pack.createAnchorSource({ seed: s1!, ...r }).take(draws);
        const b = pack.createAnchorSource({ seed: s1!, ...r }).take(draws);
        if (!same(a, b)) return { ok: false, detail: `seed ${s1} gave different anchor examples on a second draw (${r.minDifficulty}..${r.maxDifficulty})` };
        anchor = anchor.concat(a);
      }
      return `${anchor.length} examples drawn twice alike`;
    }),
  );
  const heldOut = new Map<string, TaskExample[]>(HELD_OUT_SPLITS.map((s) => [s, []]));
  for (const split of HELD_OUT_SPLITS) for (let d = pack.difficulty.min; d <= pack.difficulty.max; d++) heldOut.get(split)!.push(...pack.heldOut(split, d));
  checks.push(attempt("held-out splits disjoint from training and proposals", () => disjointness(pack, heldOut, anchor, [...sampled.values()].flat())));
  const labelled = [...anchor, ...heldOut.get("validation")!, ...heldOut.get("test")!];
  checks.push(attempt("tokenizer covers every prompt and answer", () => coverage(pack, labelled, [...sampled.values()].flat())));
  checks.push(attempt("answers pass equivalence, format and length rules", () => answerSanity(pack, labelled)));
  checks.push(
    attempt("difficulty of every prompt", () => {
      const wrong = [...labelled, ...[...sampled.values()].flat()].filter((p) => pack.difficultyOf(p.prompt) !== p.difficulty);
      return wrong.length === 0 ? "difficultyOf agrees with every drawn problem" : { ok: false, detail: `difficultyOf(${quote(wrong[0]!.prompt)}) is ${pack.difficultyOf(wrong[0]!.prompt)}, drawn at ${wrong[0]!.difficulty} (${wrong.length} such)` };
    }),
  );
  const { counts, examples } = summary(pack, heldOut, anchor, sampled);
  return { task: pack.name, checks, counts, examples, ok: checks.every((c) => c.ok) };
}

/** Anchor ranges to draw from: the whole range, or for a data-set pack each difficulty that has anchor rows. */
function anchorRanges(pack: TaskPack, whole: { minDifficulty: number; maxDifficulty: number }): { minDifficulty: number; maxDifficulty: number }[] {
  if (!isDataset(pack)) return [whole];
  return [...pack.counts().anchor.keys()].map((d) => ({ minDifficulty: d, maxDifficulty: d }));
}

function disjointness(pack: TaskPack, heldOut: Map<string, TaskExample[]>, anchor: readonly TaskExample[], proposed: readonly TaskProblem[]): string | { ok: boolean; detail: string } {
  const validation = new Set(heldOut.get("validation")!.map((e) => e.prompt));
  const test = new Set(heldOut.get("test")!.map((e) => e.prompt));
  const both = [...validation].filter((p) => test.has(p));
  if (both.length > 0) return { ok: false, detail: `${both.length} prompts in both validation and test, e.g. ${quote(both[0]!)}` };
  const trained = isDataset(pack) ? [...pack.rows("anchor"), ...pack.rows("pool")] : [...anchor, ...proposed];
  const leaks = trained.filter((p) => validation.has(p.prompt) || test.has(p.prompt));
  if (leaks.length > 0) return { ok: false, detail: `${leaks.length} trained-on or proposed prompts are held out, e.g. ${quote(leaks[0]!.prompt)}` };
  return `validation ${validation.size}, test ${test.size}; none among ${trained.length} anchor/proposed prompts`;
}

function coverage(pack: TaskPack, labelled: readonly TaskExample[], proposed: readonly TaskProblem[]): string | { ok: boolean; detail: string } {
  const tok = createTaskTokenizer(pack);
  const texts = [...labelled.flatMap((e) => [e.prompt, e.answer]), ...proposed.map((p) => p.prompt), ...(isDataset(pack) ? DATASET_SPLITS.flatMap((s) => pack.rows(s).map((r) => r.prompt)) : [])];
  const bare = (s: string): string => s.replace(/\s+/g, "");
  let checked = 0;
  for (const text of new Set(texts)) {
    let back: string;
    try {
      back = tok.decode(tok.encode(text), { skipSpecial: true });
    } catch (err) {
      return { ok: false, detail: `cannot encode ${quote(text)}: ${(err as Error).message}` };
    }
    if (bare(back) !== bare(text)) return { ok: false, detail: `${quote(text)} comes back as ${quote(back)} (characters outside the vocabulary)` };
    checked++;
  }
  return `${checked} distinct texts encode and decode unchanged (vocabulary ${tok.vocabSize})`;
}

function answerSanity(pack: TaskPack, labelled: readonly TaskExample[]): string | { ok: boolean; detail: string } {
  const eos = pack.tokenizer.special.eos;
  for (const e of labelled) {
    const fail = (what: string): { ok: boolean; detail: string } => ({ ok: false, detail: `${quote(e.prompt)} → ${quote(e.answer)}: ${what}` });
    if (pack.normalize(e.answer) !== e.answer) return fail(`the stored answer is not normalized (normalizes to ${quote(pack.normalize(e.answer))})`);
    if (!pack.equivalent(e.answer, `${e.answer}${eos}`)) return fail("not equivalent to itself followed by the end token");
    const format = pack.checkFormat(e.prompt, `${e.answer}${eos}`);
    if (!format.ok) return fail(`the true answer breaks the format rules: ${format.reason}`);
    if (pack.verifier !== undefined && !pack.verifier.check(e.prompt, `${e.answer}${eos}`)) return fail("the verifier rejects the true answer");
    if ([...e.answer].length > pack.maxAnswerLength(e.difficulty) && pack.tokenizer.kind === "char") return fail(`longer than maxAnswerLength(${e.difficulty}) = ${pack.maxAnswerLength(e.difficulty)}`);
  }
  return `${labelled.length} labelled examples: normalized, self-equivalent, well-formed${pack.verifier ? ", verified" : ""}`;
}

function summary(pack: TaskPack, heldOut: Map<string, TaskExample[]>, anchor: readonly TaskExample[], sampled: Map<number, TaskProblem[]>): Pick<TaskCheckReport, "counts" | "examples"> {
  const byDifficulty = (items: readonly TaskProblem[]): Map<number, number> => {
    const m = new Map<number, number>();
    for (const p of items) m.set(p.difficulty, (m.get(p.difficulty) ?? 0) + 1);
    return new Map([...m].sort((a, b) => a[0] - b[0]));
  };
  if (isDataset(pack)) {
    const counts = pack.counts();
    return { counts, examples: Object.fromEntries(DATASET_SPLITS.map((s) => [s, pack.rows(s).slice(0, 2)])) };
  }
  const proposed = [...sampled.values()].flat();
  return {
    counts: { "anchor (drawn)": byDifficulty(anchor), validation: byDifficulty(heldOut.get("validation")!), test: byDifficulty(heldOut.get("test")!), "sampler (drawn)": byDifficulty(proposed) },
    examples: { anchor: anchor.slice(0, 2), validation: heldOut.get("validation")!.slice(0, 2), test: heldOut.get("test")!.slice(0, 2), sampler: proposed.slice(0, 2) },
  };
}
