/**
 * Deterministic pseudo-random streams for task packs. Every sampler, anchor source and held-out
 * set draws from its own named stream, so the same seed always yields the same problems on any
 * machine and two purposes (anchor vs evaluation) never share a sequence by accident.
 */

import { AutodidactError, Code } from "../errors/index.js";

/** A seeded source of uniform numbers; not cryptographic, only reproducible. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/** Hashes a string into four 32-bit words (cyrb128-style mixing) to seed an sfc32 generator. */
function hash128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ c, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ c, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ c, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ c, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/**
 * Creates a reproducible generator from any list of stream-name parts (task, purpose, seed,
 * difficulty…). Parts are joined unambiguously, so `("a", "bc")` and `("ab", "c")` differ.
 */
export function createRng(...parts: ReadonlyArray<string | number>): Rng {
  let [a, b, c, d] = hash128(parts.map((p) => `${typeof p}:${String(p).length}:${String(p)}`).join("|"));
  const nextU32 = (): number => {
    // sfc32: small, fast, passes PractRand for the volumes a task pack draws.
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Warm up so nearby seeds decorrelate.
  for (let i = 0; i < 12; i++) nextU32();
  const next = (): number => nextU32() / 4294967296;
  return {
    next,
    int(min: number, max: number): number {
      return min + Math.floor(next() * (max - min + 1));
    },
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new AutodidactError("cannot pick from an empty list", Code.InvalidArgument);
      return items[Math.floor(next() * items.length)] as T;
    },
  };
}
