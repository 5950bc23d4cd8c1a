import { createRng, type Rng } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { TaskExample, TaskStream } from "../../src/domain/tasks/index.js";

/** How synthetic data enters a round: kept across rounds (default, no collapse) or only the newest. */
export type MixMode = "accumulate" | "replace";

/** A synthetic sample as the mixer sees it. */
export interface MixSample {
  readonly sampleId: string;
  readonly difficulty: number;
}

/** Options of {@link buildMix}. */
export interface MixOptions {
  readonly batchSize: number;
  /** Minimum share of real anchor examples in EVERY batch. */
  readonly anchorRatio: number;
  /** Times one synthetic sample may appear in a round. */
  readonly maxReuse: number;
  /** Optimizer steps; 0 = one pass over the synthetic pool. Capped by what maxReuse allows. */
  readonly steps: number;
  /** Seed of the shuffles: same seed, same pool, same anchors → the same mix. */
  readonly seed: string;
  /**
   * Share of every batch's synthetic slots drawn from the pool's hardest difficulty (in a length
   * curriculum: the length being learned), the rest from the other samples; 0 (default) draws
   * uniformly from the whole pool.
   * An accumulated pool spreads a round's new labels thin (one length of many), so without it they are
   * seen about once per round.
   */
  readonly hardestShare?: number;
}

/** One batch of the mix: which synthetic samples and which anchor examples it holds. */
export interface MixBatch<S extends MixSample> {
  readonly index: number;
  readonly synthetic: readonly S[];
  readonly anchors: readonly TaskExample[];
}

/** A round's mix and its composition (what the manifest reports). */
export interface Mix<S extends MixSample> {
  readonly batches: readonly MixBatch<S>[];
  readonly syntheticCount: number;
  readonly realCount: number;
  /** Distinct synthetic sample ids used, sorted. */
  readonly sampleIds: readonly string[];
  readonly syntheticByDifficulty: Record<number, number>;
  readonly realByDifficulty: Record<number, number>;
}

/** Real examples per batch so that every batch holds at least `anchorRatio` real data. */
export function anchorsPerBatch(batchSize: number, anchorRatio: number): number {
  const n = Math.ceil(anchorRatio * batchSize - 1e-9);
  return anchorRatio > 0 ? Math.max(1, n) : 0;
}

/** `items` shuffled once per pass, as many passes as `wanted` draws need (at least one, at most `maxReuse`). */
function shuffledPasses<S>(items: readonly S[], wanted: number, maxReuse: number, rng: Rng): S[] {
  const out: S[] = [];
  if (items.length === 0 || wanted <= 0) return out;
  const passes = Math.min(maxReuse, Math.max(1, Math.ceil(wanted / items.length)));
  for (let pass = 0; pass < passes; pass++) {
    const r = rng.fork(`pass-${pass}`);
    const perm = [...items];
    for (let i = perm.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    out.push(...perm);
  }
  return out;
}

/**
 * The seeded, reproducible mixing rule: the synthetic pool is shuffled once per reuse pass
 * (at most `maxReuse` passes), cut into batches of `batchSize − anchorsPerBatch` synthetic slots;
 * every batch is topped up with anchor examples, so the real share of each batch is never below
 * `anchorRatio` (the last batch may hold more real data, never less). With `hardestShare`, that share
 * of the synthetic slots comes from such a stream over the hardest difficulty's samples and the rest
 * from one over the other samples.
 */
export function buildMix<S extends MixSample>(pool: readonly S[], anchors: TaskStream<TaskExample>, o: MixOptions): Mix<S> {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 2) throw new AutodidactError(`batch size ${o.batchSize} must be an integer >= 2`, Code.InvalidArgument);
  if (!(o.anchorRatio >= 0 && o.anchorRatio < 1)) throw new AutodidactError(`anchor ratio ${o.anchorRatio} must be in [0, 1)`, Code.InvalidArgument);
  if (!Number.isInteger(o.maxReuse) || o.maxReuse < 1) throw new AutodidactError(`max reuse ${o.maxReuse} must be an integer >= 1`, Code.InvalidArgument);
  if (pool.length === 0) throw new AutodidactError("no accepted synthetic samples to train on", Code.FailedPrecondition);
  const real = anchorsPerBatch(o.batchSize, o.anchorRatio);
  const synth = o.batchSize - real;
  if (synth < 1) throw new AutodidactError(`anchor ratio ${o.anchorRatio} leaves no synthetic slot in a batch of ${o.batchSize}`, Code.InvalidArgument);
  const rng = createRng(o.seed);
  const hardest = pool.reduce((m, s) => Math.max(m, s.difficulty), -Infinity);
  const hard = pool.filter((s) => s.difficulty === hardest);
  const share = o.hardestShare ?? 0;
  if (!(share >= 0 && share < 1)) throw new AutodidactError(`hardest share ${share} must be in [0, 1)`, Code.InvalidArgument);
  // Slots per batch for the hardest difficulty (none when the pool holds only that difficulty anyway).
  const hardSlots = hard.length < pool.length ? Math.round(share * synth) : 0;
  const wantSteps = o.steps > 0 ? o.steps : Math.ceil(pool.length / synth);
  // Two streams when focusing: the hardest samples and the others (each sample in one, so maxReuse
  // holds); otherwise one over the whole pool. Only the passes the steps can use are built (a huge
  // maxReuse means "reuse as often as needed"); steps = 0 means one pass over the pool.
  const rest = hardSlots > 0 ? pool.filter((s) => s.difficulty !== hardest) : pool;
  const draws = o.steps > 0 ? wantSteps * synth : pool.length;
  const restOrder = shuffledPasses(rest, draws, o.maxReuse, rng);
  const hardOrder = hardSlots > 0 ? shuffledPasses(hard, draws, o.maxReuse, rng.fork("hardest")) : [];
  const batches: MixBatch<S>[] = [];
  const ids = new Set<string>();
  const synByDiff: Record<number, number> = {};
  const realByDiff: Record<number, number> = {};
  let syntheticCount = 0;
  let realCount = 0;
  // The hardest samples' slots first, the others fill the rest; when either stream is used up
  // (maxReuse), the other fills its slots.
  let hi = 0;
  let ri = 0;
  for (let b = 0; b < wantSteps; b++) {
    const fromHard = hardOrder.slice(hi, hi + hardSlots);
    hi += fromHard.length;
    const fromRest = restOrder.slice(ri, ri + synth - fromHard.length);
    ri += fromRest.length;
    const topUp = hardOrder.slice(hi, hi + synth - fromHard.length - fromRest.length);
    hi += topUp.length;
    const synthetic = [...fromHard, ...topUp, ...fromRest];
    if (synthetic.length === 0) break;
    const anchorList = anchors.take(o.batchSize - synthetic.length);
    for (const s of synthetic) {
      ids.add(s.sampleId);
      synByDiff[s.difficulty] = (synByDiff[s.difficulty] ?? 0) + 1;
    }
    for (const a of anchorList) realByDiff[a.difficulty] = (realByDiff[a.difficulty] ?? 0) + 1;
    syntheticCount += synthetic.length;
    realCount += anchorList.length;
    batches.push({ index: b, synthetic, anchors: anchorList });
  }
  return {
    batches,
    syntheticCount,
    realCount,
    sampleIds: [...ids].sort(),
    syntheticByDifficulty: synByDiff,
    realByDifficulty: realByDiff,
  };
}
