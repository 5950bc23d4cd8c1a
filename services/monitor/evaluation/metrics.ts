import { AutodidactError, Code } from "../../../src/platform/errors/index.js";

function checkPaired(a: readonly unknown[], b: readonly unknown[], what: string): void {
  if (a.length !== b.length) throw new AutodidactError(`${what}: ${a.length} values but ${b.length} labels`, Code.InvalidArgument);
}

/**
 * Expected calibration error: the gap between stated confidence and observed accuracy, averaged over
 * equal-width confidence bins weighted by their size. Late collapse shows up as confident answers
 * that are wrong, which this measures.
 */
export function expectedCalibrationError(confidence: readonly number[], correct: readonly boolean[], bins = 10): number {
  checkPaired(confidence, correct, "expectedCalibrationError");
  if (!Number.isInteger(bins) || bins < 1) throw new AutodidactError(`bins must be an integer >= 1, got ${bins}`, Code.InvalidArgument);
  if (confidence.length === 0) return 0;
  const sumConf = new Float64Array(bins);
  const sumAcc = new Float64Array(bins);
  const count = new Float64Array(bins);
  confidence.forEach((c, i) => {
    if (!(c >= 0 && c <= 1)) throw new AutodidactError(`confidence must be in [0, 1], got ${c}`, Code.InvalidArgument);
    const b = Math.min(bins - 1, Math.floor(c * bins));
    sumConf[b]! += c;
    sumAcc[b]! += correct[i] ? 1 : 0;
    count[b]! += 1;
  });
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    if (count[b] === 0) continue;
    ece += (count[b]! / confidence.length) * Math.abs(sumConf[b]! / count[b]! - sumAcc[b]! / count[b]!);
  }
  return ece;
}

/** Share of all answers that are wrong yet given with confidence at or above `threshold` ("overconfidently wrong"). */
export function overconfidentWrongRate(confidence: readonly number[], correct: readonly boolean[], threshold: number): number {
  checkPaired(confidence, correct, "overconfidentWrongRate");
  if (confidence.length === 0) return 0;
  let n = 0;
  confidence.forEach((c, i) => {
    if (!correct[i] && c >= threshold) n++;
  });
  return n / confidence.length;
}

/** Distinct-n: distinct n-grams over total n-grams across sequences (1 = every n-gram unique; low = repetitive, bland output). */
export function distinctN(sequences: readonly (string | readonly (string | number)[])[], n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new AutodidactError(`n must be an integer >= 1, got ${n}`, Code.InvalidArgument);
  const seen = new Set<string>();
  let total = 0;
  for (const seq of sequences) {
    const toks = typeof seq === "string" ? [...seq] : seq.map(String);
    for (let i = 0; i + n <= toks.length; i++) {
      seen.add(toks.slice(i, i + n).join("\u0001"));
      total++;
    }
  }
  return total === 0 ? 0 : seen.size / total;
}

/** Counts of each token over sequences (characters of strings): the empirical output distribution. */
export function tokenCounts(sequences: readonly (string | readonly (string | number)[])[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const seq of sequences) for (const t of typeof seq === "string" ? [...seq] : seq.map(String)) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/** Shannon entropy (nats) of a count distribution: how spread out the produced tokens are. */
export function entropy(counts: ReadonlyMap<unknown, number> | readonly number[]): number {
  const values = Array.isArray(counts) ? (counts as readonly number[]) : [...(counts as ReadonlyMap<unknown, number>).values()];
  const total = values.reduce((a, b) => a + b, 0);
  if (total <= 0) return 0;
  let h = 0;
  for (const v of values) if (v > 0) h -= (v / total) * Math.log(v / total);
  return h;
}

/**
 * KL(p ‖ q) in nats between two count distributions over the union of their keys, with additive
 * smoothing `alpha` so a token q never produced costs a finite amount. Used for drift of the model's
 * output distribution from the real data's.
 */
export function klDivergence(p: ReadonlyMap<string, number>, q: ReadonlyMap<string, number>, alpha = 0.5): number {
  if (!(alpha > 0)) throw new AutodidactError(`alpha must be > 0, got ${alpha}`, Code.InvalidArgument);
  const keys = new Set([...p.keys(), ...q.keys()]);
  if (keys.size === 0) return 0;
  let pt = 0;
  let qt = 0;
  for (const k of keys) {
    pt += (p.get(k) ?? 0) + alpha;
    qt += (q.get(k) ?? 0) + alpha;
  }
  let kl = 0;
  for (const k of keys) {
    const pk = ((p.get(k) ?? 0) + alpha) / pt;
    const qk = ((q.get(k) ?? 0) + alpha) / qt;
    kl += pk * Math.log(pk / qk);
  }
  return kl;
}

/** Mean and (population) variance of values. */
export function meanVariance(values: readonly number[]): { mean: number; variance: number } {
  if (values.length === 0) return { mean: 0, variance: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, variance };
}
