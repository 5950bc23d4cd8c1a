// The curriculum: label-free facts in, the next difficulty out (the prototype's numbers as cases).
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CurriculumPolicySchema, CurriculumPolicy_Kind } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { capDifficulty, probes, stepByAgreement, stepWithoutProbe } from "./curriculum.js";

const policy = (kind: CurriculumPolicy_Kind, extra: object = {}) => create(CurriculumPolicySchema, { kind, start: 2, max: 10, minAgreement: 0.85, minAcceptedShare: 0.5, probeSize: 128, ...extra });

describe("curriculum", () => {
  it("FIXED_STEP labels one harder every round", () => {
    expect(stepWithoutProbe(policy(CurriculumPolicy_Kind.FIXED_STEP), { difficulty: 4, proposed: 10, accepted: 0 }).next).toBe(5);
  });

  it("ACCEPTANCE moves on once the accepted share reaches the threshold", () => {
    const p = policy(CurriculumPolicy_Kind.ACCEPTANCE);
    expect(stepWithoutProbe(p, { difficulty: 4, proposed: 10, accepted: 4 }).next).toBe(4);
    expect(stepWithoutProbe(p, { difficulty: 4, proposed: 10, accepted: 5 }).next).toBe(5);
    expect(stepWithoutProbe(p, { difficulty: 4, proposed: 0, accepted: 0 }).next).toBe(4);
  });

  it("AGREEMENT probes upward while the lineages agree and labels the first difficulty below the threshold", async () => {
    const agreement: Record<number, number> = { 7: 1, 8: 0.59, 9: 0.47 };
    const asked: number[] = [];
    const measure = async (d: number) => {
      asked.push(d);
      return { problems: 128, agreement: agreement[d] ?? 0 };
    };
    const p = policy(CurriculumPolicy_Kind.AGREEMENT);
    expect(probes(p)).toBe(true);
    const step = await stepByAgreement(p, 7, measure);
    expect(step.next).toBe(8); // "7:100% 8:59% → label 8"
    expect(step.probes).toEqual([{ difficulty: 7, problems: 128, agreement: 1 }, { difficulty: 8, problems: 128, agreement: 0.59 }]);
    expect(asked).toEqual([7, 8]);
    agreement[8] = 0.96;
    expect((await stepByAgreement(p, 8, measure)).next).toBe(9); // "8:96% 9:47% → label 9"
    // Not mastered where it labelled: the same difficulty again.
    expect((await stepByAgreement(p, 9, measure)).next).toBe(9);
  });

  it("AGREEMENT stops probing at the cap; the cap bounds what a round labels", async () => {
    const p = policy(CurriculumPolicy_Kind.AGREEMENT, { max: 5 });
    const asked: number[] = [];
    const step = await stepByAgreement(p, 4, async (d) => {
      asked.push(d);
      return { problems: 4, agreement: 1 };
    });
    expect(asked).toEqual([4, 5]);
    expect(step.next).toBe(6);
    expect(capDifficulty(p, step.next)).toBe(5);
    expect(capDifficulty(p, 1)).toBe(2);
    expect(probes(policy(CurriculumPolicy_Kind.FIXED_STEP))).toBe(false);
  });
});
