import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Rng } from "../../engine/index.js";

/**
 * A Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shape < 1 through Gamma(shape + 1)·U^(1/shape)).
 * Seeded through the engine's Rng, so the root noise of a search is reproducible.
 */
export function sampleGamma(rng: Rng, shape: number): number {
  if (!(shape > 0)) throw new AutodidactError(`gamma shape must be > 0, got ${shape}`, Code.InvalidArgument);
  if (shape < 1) {
    let u = rng.next();
    while (u === 0) u = rng.next();
    return sampleGamma(rng, shape + 1) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A draw from the symmetric Dirichlet(alpha, …, alpha) over `n` outcomes (sums to 1). */
export function sampleDirichlet(rng: Rng, alpha: number, n: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new AutodidactError(`Dirichlet size must be a positive integer, got ${n}`, Code.InvalidArgument);
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    out[i] = sampleGamma(rng, alpha);
    sum += out[i] as number;
  }
  if (sum === 0) out.fill(1 / n);
  else for (let i = 0; i < n; i++) out[i] = (out[i] as number) / sum;
  return out;
}
