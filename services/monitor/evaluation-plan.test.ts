// What an evaluation covers under a gating policy (pure).
import { describe, expect, it } from "vitest";
import type { CheckpointRecord } from "../../src/domain/registry/index.js";
import { getTaskPack } from "../../src/domain/tasks/index.js";
import { DEFAULT_GATE_POLICY, type GatePolicy } from "./evaluation/index.js";
import { evaluationPlan, labelFreeDifficulties } from "./evaluation-plan.js";

const pack = getTaskPack("addition");
const trainedOn = (byDifficulty: Record<number, number>): CheckpointRecord =>
  ({ lineage: "a", version: 2, manifest: { mix: { syntheticByDifficulty: byDifficulty } } }) as unknown as CheckpointRecord;

describe("evaluationPlan", () => {
  it("validation only over the policy's range, test over its own; unset ranges mean the configured difficulties", () => {
    const run: GatePolicy = { ...DEFAULT_GATE_POLICY, validation: { min: 1, max: 7 }, test: { min: 1, max: 20 }, validationSize: 20, testSize: 64 };
    const plan = evaluationPlan(run, pack, [1, 2, 3], 32);
    expect(plan.validation).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(plan.test).toHaveLength(20);
    expect([plan.validationLimit, plan.testLimit]).toEqual([20, 64]);
    expect(evaluationPlan({ ...run, validation: { min: 1, max: 0 } }, pack, [1, 2, 3], 32).validation).toEqual([]);
    expect(evaluationPlan(DEFAULT_GATE_POLICY, pack, [1, 2, 3], 32)).toEqual({ validation: [1, 2, 3], test: [1, 2, 3], validationLimit: 32, testLimit: 32 });
    expect(evaluationPlan(run, pack, [1, 2, 3], 32, 4)).toMatchObject({ validationLimit: 4, testLimit: 4 });
  });
});

describe("labelFreeDifficulties", () => {
  const policy: GatePolicy = { ...DEFAULT_GATE_POLICY, validation: { min: 1, max: 7 }, labelFreeProbeSize: 32 };

  it("from just above the validation range to the hardest length the candidate trained on", () => {
    expect(labelFreeDifficulties(policy, pack, trainedOn({ 8: 40, 9: 120, 10: 0 }))).toEqual([8, 9]);
    expect(labelFreeDifficulties(policy, pack, trainedOn({ 5: 10 }))).toEqual([]);
    // No validation labels at all: every trained length is beyond them.
    expect(labelFreeDifficulties({ ...policy, validation: { min: 1, max: 0 } }, pack, trainedOn({ 3: 1 }))).toEqual([1, 2, 3]);
  });

  it("nothing when the check is off or no run set a validation range (every length is labelled then)", () => {
    expect(labelFreeDifficulties({ ...policy, labelFreeProbeSize: 0 }, pack, trainedOn({ 9: 1 }))).toEqual([]);
    const { validation: _unset, ...noRange } = policy;
    expect(labelFreeDifficulties(noRange, pack, trainedOn({ 9: 1 }))).toEqual([]);
  });
});
