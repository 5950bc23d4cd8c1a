// The run's labels regime is written into the gating policy the conductor sets through the monitor.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GatingPolicySchema } from "../../src/gen/autodidact/v1/report_pb.js";
import { runGatePolicy } from "./gate-policy.js";
import { normalizeRunSpec } from "./run-spec.js";
import { testSpec } from "./test-spec.js";

describe("runGatePolicy", () => {
  const current = create(GatingPolicySchema, { version: 4n, maxDifficultyRegression: 0.1, autoPromote: true, note: "operator" });

  it("lets the gate read validation labels only where the run has them, and measures results on its test range", () => {
    const spec = normalizeRunSpec(testSpec({ labels: { anchor: { min: 1, max: 3 }, validation: { min: 1, max: 3 }, test: { min: 1, max: 12 }, validationSize: 20, testSize: 64 } }));
    const gate = runGatePolicy(spec, current);
    expect([gate.validation?.min, gate.validation?.max]).toEqual([1, 3]);
    expect([gate.test?.min, gate.test?.max]).toEqual([1, 12]);
    expect([gate.validationSize, gate.testSize]).toEqual([20, 64]);
    expect(gate.peerLineages).toEqual(["gen", "crit"]);
    // The spec names no gate: the monitor's current rule stays, with the regime written in.
    expect(gate.maxDifficultyRegression).toBeCloseTo(0.1);
  });

  it("no validation labels in the run: an explicit empty range, never an unset one (which would mean every difficulty)", () => {
    const spec = normalizeRunSpec(testSpec({ labels: { anchor: { min: 1, max: 3 }, test: { min: 1, max: 8 } } }));
    const gate = runGatePolicy(spec, current);
    expect(gate.validation).toBeDefined();
    expect(gate.validation!.max).toBeLessThan(gate.validation!.min);
  });

  it("the spec's gate may not name validation or test ranges of its own: the labels regime says them once", () => {
    expect(() => normalizeRunSpec(testSpec({ gate: { autoPromote: true, validation: { min: 1, max: 20 } } }))).toThrow(/gate\.validation and gate\.test come from labels/);
  });
});
