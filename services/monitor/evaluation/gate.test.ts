// The gate's rules on plain evaluations: validation only, difficulty 1 included, label-free beyond.
import { describe, expect, it } from "vitest";
import { applyGate, checkGatePolicy, DEFAULT_GATE_POLICY, type GatePolicy, type LabelFreeDifficulty } from "./gate.js";
import type { EvaluationReport } from "./evaluate-model.js";

const report = (accByDifficulty: number[], split: EvaluationReport["split"] = "validation"): EvaluationReport => ({
  task: "addition",
  split,
  perDifficulty: accByDifficulty.map((accuracy, i) => ({ difficulty: i + 1, count: 20, accuracy, loss: 0, calibrationEce: 0 })),
  accuracy: accByDifficulty.reduce((a, b) => a + b, 0) / accByDifficulty.length,
  loss: 0,
  calibrationEce: 0,
  overconfidentWrongRate: 0,
  distinctN: { 2: 0.5 },
  tokenEntropy: 1,
  tailCoverage: 1,
  sliceAccuracy: {},
  driftKl: 0,
  frontier: 0,
  evalSetDigest: `${split}-digest`,
  alarms: [],
  durationMs: 0,
});

describe("applyGate", () => {
  const tight: GatePolicy = { ...DEFAULT_GATE_POLICY, maxDifficultyRegression: 0.04, minAccuracyDelta: -0.05 };

  it("with a tight per-difficulty tolerance, a 1-digit drop the overall delta hides is refused", () => {
    // 1-digit falls from 100 % to 90 % while 3-digit gains: overall delta is +0.
    const out = applyGate(tight, report([0.9, 1, 1]), report([1, 1, 0.9]));
    expect(out.passed).toBe(false);
    expect(out.reasons).toEqual([expect.stringMatching(/^difficulty 1 \(validation\): accuracy 0\.900 regressed from 1\.000/)]);
    // The old 10-point tolerance let it through.
    expect(applyGate({ ...tight, maxDifficultyRegression: 0.1 }, report([0.9, 1, 1]), report([1, 1, 0.9])).passed).toBe(true);
  });

  it("beyond validation: a drop of the label-free signal past the tolerance is refused, noise within it is not", () => {
    const lf = (candidate: number, incumbent: number): LabelFreeDifficulty => ({ difficulty: 5, count: 32, signal: "peer_agreement", candidate, incumbent });
    const v = report([1, 1]);
    expect(applyGate(tight, v, v, [lf(0.7, 0.9)]).reasons).toEqual([expect.stringMatching(/difficulty 5 \(label-free\): peer agreement 0\.700 fell from the incumbent's 0\.900/)]);
    expect(applyGate(tight, v, v, [lf(0.88, 0.9)]).passed).toBe(true);
    // No incumbent: nothing to compare with.
    expect(applyGate(tight, v, undefined, [lf(0, -1)]).passed).toBe(true);
  });

  it("refuses to read the test split, and checks the policy's new limits", () => {
    expect(() => applyGate(tight, report([1], "test"), undefined)).toThrow(/validation split only/);
    expect(() => checkGatePolicy({ ...tight, labelFreeProbeSize: -1 })).toThrow(/labelFreeProbeSize/);
    expect(() => checkGatePolicy({ ...tight, maxAgreementRegression: 2 })).toThrow(/maxAgreementRegression/);
    expect(() => checkGatePolicy({ ...tight, validation: { min: 0, max: 3 } })).toThrow(/validation range/);
    expect(() => checkGatePolicy({ ...tight, test: { min: 3, max: 2 } })).toThrow(/test range must not be empty/);
    expect(checkGatePolicy({ ...tight, validation: { min: 1, max: 0 } })).toBeTruthy();
  });
});
