import { createRng } from "../../../src/engine/index.js";
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { meanVariance } from "./metrics.js";

/**
 * How each generation's training data is formed in a recursive-training chain (Gerstgrasser et al.
 * 2024): `replace` trains only on the previous generation's samples, `accumulate` on everything
 * produced so far plus the real data, `mix` on fresh samples with a share of real data.
 */
export type ChainMode = { readonly kind: "replace" } | { readonly kind: "accumulate" } | { readonly kind: "mix"; readonly realFraction: number };

/** One generation of a simulated chain. */
export interface GaussianGeneration {
  readonly generation: number;
  readonly mean: number;
  readonly variance: number;
}

/**
 * The Gaussian refit chain of Shumailov et al. (2024, Thm 3.1): fit mean and variance on M samples,
 * sample M new ones from the fit, repeat. Under `replace` the fitted variance goes to zero almost
 * surely; under `accumulate` or with real data mixed in it does not. Seeded and deterministic; the
 * controlled setting the collapse detectors are validated against.
 */
export function gaussianChain(options: { samples: number; generations: number; mode: ChainMode; seed: number | string; mean?: number; std?: number }): GaussianGeneration[] {
  const { samples: M, generations, mode } = options;
  if (!Number.isInteger(M) || M < 2) throw new AutodidactError(`samples must be an integer >= 2, got ${M}`, Code.InvalidArgument);
  if (mode.kind === "mix" && !(mode.realFraction >= 0 && mode.realFraction <= 1)) {
    throw new AutodidactError(`realFraction must be in [0, 1], got ${mode.realFraction}`, Code.InvalidArgument);
  }
  const rng = createRng(`gaussian-chain:${options.seed}`);
  const mu0 = options.mean ?? 0;
  const sd0 = options.std ?? 1;
  const real = (): number => mu0 + sd0 * rng.normal();
  let data = Array.from({ length: M }, real);
  const pool = [...data];
  const out: GaussianGeneration[] = [];
  for (let g = 0; g < generations; g++) {
    const fit = meanVariance(mode.kind === "accumulate" ? pool : data);
    out.push({ generation: g, ...fit });
    const sd = Math.sqrt(fit.variance);
    const nReal = mode.kind === "mix" ? Math.round(mode.realFraction * M) : 0;
    data = [...Array.from({ length: M - nReal }, () => fit.mean + sd * rng.normal()), ...Array.from({ length: nReal }, real)];
    if (mode.kind === "accumulate") pool.push(...data);
  }
  return out;
}

/** One generation of a categorical (Zipf) chain. */
export interface CategoricalGeneration {
  readonly generation: number;
  /** Categories with non-zero fitted probability. */
  readonly support: number;
  /** Share of the original tail categories still in the support. */
  readonly tailCoverage: number;
  /** Entropy (nats) of the fitted distribution. */
  readonly entropy: number;
}

/**
 * A Zipf distribution over `categories` refit by counting `samples` draws each generation. A category
 * that draws no sample has probability zero from then on, so the support only shrinks and the rare
 * tail goes first: early collapse in its simplest form. `tailFrom` is the first rank (0-based) counted as tail.
 */
export function zipfChain(options: { categories: number; exponent: number; samples: number; generations: number; seed: number | string; tailFrom: number; mode?: ChainMode }): CategoricalGeneration[] {
  const { categories: K, samples: M, generations, tailFrom } = options;
  if (!Number.isInteger(K) || K < 2 || tailFrom < 0 || tailFrom >= K) throw new AutodidactError(`need categories >= 2 and 0 <= tailFrom < categories`, Code.InvalidArgument);
  const mode = options.mode ?? { kind: "replace" };
  const rng = createRng(`zipf-chain:${options.seed}`);
  const truth = Array.from({ length: K }, (_, i) => 1 / (i + 1) ** options.exponent);
  const z = truth.reduce((a, b) => a + b, 0);
  for (let i = 0; i < K; i++) truth[i] = truth[i]! / z;
  const cumulative = (p: readonly number[]): Float64Array => {
    const c = new Float64Array(K);
    let s = 0;
    for (let i = 0; i < K; i++) c[i] = s += p[i]!;
    return c;
  };
  const draw = (c: Float64Array): number => {
    const u = rng.next() * c[K - 1]!;
    let lo = 0;
    let hi = K - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const realC = cumulative(truth);
  let p = truth;
  const accumulated = new Float64Array(K);
  const out: CategoricalGeneration[] = [];
  for (let g = 0; g < generations; g++) {
    let support = 0;
    let tail = 0;
    let h = 0;
    for (let i = 0; i < K; i++) {
      if (p[i]! > 0) {
        support++;
        if (i >= tailFrom) tail++;
        h -= p[i]! * Math.log(p[i]!);
      }
    }
    out.push({ generation: g, support, tailCoverage: tail / (K - tailFrom), entropy: h });
    const c = cumulative(p);
    const nReal = mode.kind === "mix" ? Math.round(mode.realFraction * M) : 0;
    const counts = new Float64Array(K);
    for (let s = 0; s < M - nReal; s++) counts[draw(c)]! += 1;
    for (let s = 0; s < nReal; s++) counts[draw(realC)]! += 1;
    if (mode.kind === "accumulate") for (let i = 0; i < K; i++) accumulated[i]! += counts[i]!;
    const use = mode.kind === "accumulate" ? accumulated : counts;
    const total = use.reduce((a, b) => a + b, 0);
    p = Array.from(use, (v) => v / total);
  }
  return out;
}
