import { describe, expect, it } from "vitest";
import { gaussianChain, zipfChain, type ChainMode } from "./chains.js";
import { DEFAULT_THRESHOLDS, detectCollapse, hasCritical } from "./detectors.js";

const SEEDS = Array.from({ length: 20 }, (_, i) => i);

/** First generation whose fitted variance raises an alarm against generation 0 (the real data's fit), or -1. */
function firstVarianceAlarm(mode: ChainMode, seed: number, generations: number): number {
  const chain = gaussianChain({ samples: 100, generations, mode, seed });
  const reference = { variance: chain[0]!.variance };
  return chain.findIndex((g) => detectCollapse({ variance: g.variance }, reference, DEFAULT_THRESHOLDS).some((a) => a.kind === "variance_loss" && a.stage === "early"));
}

describe("collapse detectors against the Gaussian refit chain (Shumailov et al. Thm 3.1)", () => {
  it("raise the variance alarm within 200 generations under replace, for every seed", () => {
    for (const seed of SEEDS) {
      const first = firstVarianceAlarm({ kind: "replace" }, seed, 200);
      expect(first, `seed ${seed}`).toBeGreaterThan(0);
    }
  });

  it("the variance really collapses under replace (the alarm is not noise)", () => {
    const chain = gaussianChain({ samples: 100, generations: 1000, mode: { kind: "replace" }, seed: 7 });
    expect(chain.at(-1)!.variance).toBeLessThan(chain[0]!.variance * 1e-2);
  });

  it("stay silent for 300 generations under accumulate and with 10% real data", () => {
    for (const mode of [{ kind: "accumulate" }, { kind: "mix", realFraction: 0.1 }] as const) {
      for (const seed of SEEDS) expect(firstVarianceAlarm(mode, seed, 300), `${mode.kind} seed ${seed}`).toBe(-1);
    }
  });

  it("is deterministic per seed", () => {
    const a = gaussianChain({ samples: 20, generations: 10, mode: { kind: "replace" }, seed: "x" });
    const b = gaussianChain({ samples: 20, generations: 10, mode: { kind: "replace" }, seed: "x" });
    const c = gaussianChain({ samples: 20, generations: 10, mode: { kind: "replace" }, seed: "y" });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe("tail detector against a Zipf tail-loss chain", () => {
  it("raises the tail alarm as the support shrinks under replace", () => {
    const chain = zipfChain({ categories: 200, exponent: 1.1, samples: 500, generations: 40, seed: 3, tailFrom: 50 });
    for (let g = 1; g < chain.length; g++) expect(chain[g]!.support).toBeLessThanOrEqual(chain[g - 1]!.support);
    const reference = { tailCoverage: chain[0]!.tailCoverage, tokenEntropy: chain[0]!.entropy };
    const alarms = chain.map((g) => detectCollapse({ tailCoverage: g.tailCoverage }, reference, DEFAULT_THRESHOLDS));
    expect(alarms[0]).toEqual([]);
    const first = alarms.findIndex((a) => a.some((x) => x.kind === "tail_loss"));
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(10);
    // Once raised, it stays raised: the support never grows back under replace.
    for (let g = first; g < chain.length; g++) expect(alarms[g]!.some((x) => x.kind === "tail_loss")).toBe(true);
    expect(chain[first]!.support).toBeLessThan(chain[0]!.support);
    expect(chain.at(-1)!.support).toBeLessThan(chain[0]!.support / 4);
  });

  it("entropy of the refit distribution falls too (diversity alarm eventually)", () => {
    const chain = zipfChain({ categories: 200, exponent: 1.1, samples: 200, generations: 400, seed: 4, tailFrom: 50 });
    const alarms = detectCollapse({ tokenEntropy: chain.at(-1)!.entropy }, { tokenEntropy: chain[0]!.entropy });
    expect(alarms.some((a) => a.kind === "diversity_drop")).toBe(true);
  });
});

describe("detectCollapse", () => {
  it("raises late-collapse alarms for an accuracy drop and confident wrong answers, none for a healthy model", () => {
    const reference = { accuracy: 0.8, distinct2: 0.5 };
    expect(detectCollapse({ accuracy: 0.78, distinct2: 0.45, overconfidentWrongRate: 0.05, calibrationEce: 0.1 }, reference)).toEqual([]);
    const alarms = detectCollapse({ accuracy: 0.4, distinct2: 0.45, overconfidentWrongRate: 0.6 }, reference);
    expect(alarms.map((a) => [a.kind, a.stage]).sort()).toEqual([
      ["overconfidence", "late"],
      ["regression", "late"],
    ]);
    expect(hasCritical(alarms)).toBe(true);
  });

  it("treats calibration and drift as warnings that do not block", () => {
    const alarms = detectCollapse({ calibrationEce: 0.9, driftKl: 5 }, undefined);
    expect(alarms.map((a) => a.kind).sort()).toEqual(["calibration", "drift"]);
    expect(hasCritical(alarms)).toBe(false);
  });

  it("refuses a NaN signal", () => {
    expect(() => detectCollapse({ accuracy: Number.NaN }, undefined)).toThrow(/not a number/);
  });
});
