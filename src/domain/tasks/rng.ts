/**
 * Deterministic pseudo-random streams for task packs. Every sampler, anchor source and held-out
 * set draws from its own named stream, so the same seed always yields the same problems on any
 * machine and two purposes (anchor vs evaluation) never share a sequence by accident. The
 * generator itself is the engine's (one PRNG in the project); this adds stream naming and the
 * inclusive-range helpers task packs use.
 */

import { createRng as createEngineRng } from "../../engine/random.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";

/** A seeded source of uniform numbers; not cryptographic, only reproducible. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/**
 * Creates a reproducible generator from any list of stream-name parts (task, purpose, seed,
 * difficulty…). Parts are joined unambiguously, so `("a", "bc")` and `("ab", "c")` differ.
 */
export function createRng(...parts: ReadonlyArray<string | number>): Rng {
  const source = createEngineRng(parts.map((p) => `${typeof p}:${String(p).length}:${String(p)}`).join("|"));
  const next = (): number => source.next();
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
