import { describe, expect, it } from "vitest";
import { distinctN, entropy, expectedCalibrationError, klDivergence, meanVariance, overconfidentWrongRate, tokenCounts } from "./metrics.js";

describe("evaluation metrics", () => {
  it("ECE is zero for a calibrated predictor and the confidence gap for a constant one", () => {
    // 10 answers at confidence 0.7, 7 right: calibrated.
    const conf = Array(10).fill(0.7);
    const right = [...Array(7).fill(true), ...Array(3).fill(false)];
    expect(expectedCalibrationError(conf, right)).toBeCloseTo(0, 12);
    // Same confidence, all wrong: gap 0.7.
    expect(expectedCalibrationError(conf, Array(10).fill(false))).toBeCloseTo(0.7, 12);
    // Two bins weighted by size: 0.95 (all right: gap .05) ×2, 0.15 (all wrong: gap .15) ×2.
    expect(expectedCalibrationError([0.95, 0.95, 0.15, 0.15], [true, true, false, false])).toBeCloseTo(0.1, 12);
    expect(() => expectedCalibrationError([1.5], [true])).toThrow(/\[0, 1\]/);
  });

  it("overconfident wrong rate counts only wrong answers above the threshold", () => {
    expect(overconfidentWrongRate([0.95, 0.95, 0.2, 0.99], [false, true, false, false], 0.9)).toBeCloseTo(0.5, 12);
  });

  it("distinct-n", () => {
    expect(distinctN(["abab"], 2)).toBeCloseTo(2 / 3, 12); // ab, ba, ab
    expect(distinctN(["abc", "abc"], 1)).toBeCloseTo(3 / 6, 12);
    expect(distinctN([[1, 2, 3]], 3)).toBe(1);
    expect(distinctN([], 2)).toBe(0);
  });

  it("entropy and KL", () => {
    expect(entropy([1, 1, 1, 1])).toBeCloseTo(Math.log(4), 12);
    expect(entropy(tokenCounts(["aaaa"]))).toBe(0);
    const p = tokenCounts(["aabb"]);
    expect(klDivergence(p, p)).toBeCloseTo(0, 12);
    const q = tokenCounts(["aaab"]);
    const kl = klDivergence(p, q, 1e-9);
    expect(kl).toBeCloseTo(0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(0.5 / 0.25), 6);
    expect(klDivergence(tokenCounts(["zzzz"]), tokenCounts(["aaaa"]))).toBeGreaterThan(1);
  });

  it("mean and population variance", () => {
    expect(meanVariance([1, 2, 3, 4])).toEqual({ mean: 2.5, variance: 1.25 });
  });
});
