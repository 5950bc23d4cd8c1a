import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createAdditionTask, ensembleVote, scoreAnswers } from "./index.js";

const task = createAdditionTask();

describe("ensembleVote", () => {
  it("takes the majority after the length filter", () => {
    // 99+1=100 → "001"; one model truncates, one is wrong.
    expect(ensembleVote(task, ["001", "001<eos>", "00", "0", "011"])).toEqual({ answer: "001", share: 0.4, agreed: false, droppedByLength: 1 });
    expect(ensembleVote(task, ["001", "001", "001", "0", "011"])).toMatchObject({ answer: "001", share: 0.6, agreed: true });
    expect(ensembleVote(task, ["001", "001", "001", "0", "011"], { threshold: 0.7 }).agreed).toBe(false);
    expect(ensembleVote(task, [])).toEqual({ answer: null, share: 0, agreed: false, droppedByLength: 0 });
    expect(() => ensembleVote(task, ["1"], { threshold: 0 })).toThrow(/threshold/);
  });

  it("does not depend on the order of the ensemble", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("15", "15<eos>", "16", "1", "151", " 15"), { minLength: 1, maxLength: 7 }), fc.nat(), (answers, seed) => {
        const shuffled = [...answers].sort((a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7) || (a < b ? -1 : 1));
        expect(ensembleVote(task, shuffled)).toEqual(ensembleVote(task, answers));
      }),
    );
  });
});

describe("scoreAnswers", () => {
  it("scores overall, per difficulty and per rare slice", () => {
    const examples = [...task.heldOut("test", 2, 20), ...task.heldOut("test", 3, 20)];
    // Right on every difficulty-2 problem, wrong on difficulty 3 unless the answer has a final carry.
    const answers = examples.map((e) => (e.difficulty === 2 || e.slices.includes("final_carry") ? `${e.answer}<eos>` : `${e.answer}9`));
    const r = scoreAnswers(task, examples, answers);
    const carries3 = examples.filter((e) => e.difficulty === 3 && e.slices.includes("final_carry")).length;
    expect(r.total).toBe(40);
    expect(r.correct).toBe(20 + carries3);
    expect(r.byDifficulty.get(2)).toEqual({ total: 20, correct: 20, accuracy: 1 });
    expect(r.byDifficulty.get(3)?.correct).toBe(carries3);
    expect([...r.byDifficulty.keys()]).toEqual([2, 3]);
    const finalCarry = r.bySlice.get("final_carry");
    expect(finalCarry?.accuracy).toBe(1);
    expect(finalCarry?.total).toBe(examples.filter((e) => e.slices.includes("final_carry")).length);
    expect([...r.bySlice.keys()]).toEqual(expect.arrayContaining([...task.sliceNames]));
    expect(() => scoreAnswers(task, examples, [])).toThrow(/40 examples but 0 answers/);
  });
});
