import { createRng } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/errors/index.js";
import type { TaskExample, TaskStream } from "../../src/tasks/index.js";

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

/**
 * The seeded, reproducible mixing rule: the synthetic pool is shuffled once per reuse pass
 * (at most `maxReuse` passes), cut into batches of `batchSize − anchorsPerBatch` synthetic slots;
 * every batch is topped up with anchor examples, so the real share of each batch is never below
 * `anchorRatio` (the last batch may hold more real data, never less).
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
  const order: S[] = [];
  // Only the passes the steps can use are built (a huge maxReuse means "reuse as often as needed").
  const wanted = o.steps > 0 ? Math.ceil((o.steps * synth) / pool.length) : 1;
  const passes = Math.min(o.maxReuse, Math.max(1, wanted));
  for (let pass = 0; pass < passes; pass++) {
    const r = rng.fork(`pass-${pass}`);
    const perm = [...pool];
    for (let i = perm.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    order.push(...perm);
  }
  const maxSteps = Math.ceil(order.length / synth);
  const steps = Math.min(o.steps > 0 ? o.steps : Math.ceil(pool.length / synth), maxSteps);
  const batches: MixBatch<S>[] = [];
  const ids = new Set<string>();
  const synByDiff: Record<number, number> = {};
  const realByDiff: Record<number, number> = {};
  let syntheticCount = 0;
  let realCount = 0;
  for (let b = 0; b < steps; b++) {
    const synthetic = order.slice(b * synth, (b + 1) * synth);
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
