import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Rng } from "../random.js";

/** How to pick each next token. */
export interface SamplingOptions {
  /** 0 (or `greedy: true`) = argmax. Default 1. */
  readonly temperature?: number;
  readonly greedy?: boolean;
  /** Keep only the k most likely tokens (0 = off). */
  readonly topK?: number;
  /** Keep the smallest set whose probability reaches p (1 = off). */
  readonly topP?: number;
}

/** Validates sampling options; InvalidArgument names the bad one. */
export function checkSampling(o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature >= 0)) throw new AutodidactError(`temperature must be >= 0, got ${o.temperature}`, Code.InvalidArgument);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new AutodidactError(`topK must be an integer >= 0, got ${o.topK}`, Code.InvalidArgument);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new AutodidactError(`topP must be in (0, 1], got ${o.topP}`, Code.InvalidArgument);
}

/**
 * Scratch buffers for one vocabulary size, reused across steps so sampling allocates nothing per
 * token (this runs once per row per generated token).
 */
export interface Sampler {
  /**
   * Picks a token from `logits[offset .. offset+V)`; returns the id and its log-probability under
   * the unmodified softmax (temperature 1, no filtering), as critics and calibration need.
   */
  sample(logits: Float32Array, offset: number, rng: Rng): { id: number; logprob: number };
}

/** Whether options ask for greedy decoding (`greedy`, or temperature 0): the one rule every decoding path applies. */
export function isGreedy(options: SamplingOptions): boolean {
  return options.greedy === true || options.temperature === 0;
}

/** Creates a {@link Sampler} for a vocabulary size and fixed options. */
export function createSampler(vocabSize: number, options: SamplingOptions): Sampler {
  checkSampling(options);
  const V = vocabSize;
  const temperature = options.temperature ?? 1;
  const greedy = isGreedy(options);
  const topK = options.topK && options.topK > 0 && options.topK < V ? options.topK : 0;
  const topP = options.topP ?? 1;
  const probs = new Float64Array(V);
  const order = new Int32Array(V);
  return {
    sample(logits, offset, rng) {
      let max = -Infinity;
      let arg = 0;
      for (let v = 0; v < V; v++) {
        const x = logits[offset + v] as number;
        if (x > max) {
          max = x;
          arg = v;
        }
      }
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp((logits[offset + v] as number) - max);
      if (!Number.isFinite(max) || !Number.isFinite(sum)) {
        throw new AutodidactError("model produced non-finite logits (NaN/Inf): corrupt or diverged weights", Code.DataLoss);
      }
      const logZ = max + Math.log(sum);
      const logprobOf = (id: number): number => (logits[offset + id] as number) - logZ;
      if (greedy) return { id: arg, logprob: logprobOf(arg) };

      // Tempered probabilities.
      let tsum = 0;
      for (let v = 0; v < V; v++) {
        const p = Math.exp(((logits[offset + v] as number) - max) / temperature);
        probs[v] = p;
        tsum += p;
      }
      for (let v = 0; v < V; v++) probs[v] = (probs[v] as number) / tsum;
      let count = V;
      if (topK > 0 || topP < 1) {
        for (let v = 0; v < V; v++) order[v] = v;
        const sorted = order.sort((a, b) => (probs[b] as number) - (probs[a] as number) || a - b);
        count = topK > 0 ? topK : V;
        if (topP < 1) {
          let acc = 0;
          for (let i = 0; i < count; i++) {
            acc += probs[sorted[i] as number] as number;
            if (acc >= topP) {
              count = i + 1;
              break;
            }
          }
        }
        let kept = 0;
        for (let i = 0; i < count; i++) kept += probs[sorted[i] as number] as number;
        let u = rng.next() * kept;
        for (let i = 0; i < count; i++) {
          const id = sorted[i] as number;
          u -= probs[id] as number;
          if (u <= 0) return { id, logprob: logprobOf(id) };
        }
        const last = sorted[count - 1] as number;
        return { id: last, logprob: logprobOf(last) };
      }
      let u = rng.next();
      for (let v = 0; v < V; v++) {
        u -= probs[v] as number;
        if (u <= 0) return { id: v, logprob: logprobOf(v) };
      }
      return { id: arg, logprob: logprobOf(arg) };
    },
  };
}
