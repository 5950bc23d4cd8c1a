// Label-free signals on fake generators (pure logic): peer agreement, self-consistency, and the
// answer cache that lets every model of a round answer the round's probe prompts once.
import { describe, expect, it } from "vitest";
import type { TextGenerator } from "../../../src/engine/index.js";
import { getTaskPack, solveAddition } from "../../../src/domain/tasks/index.js";
import { AnswerCache, measureLabelFree, type LabelFreeModel } from "./label-free.js";

const pack = getTaskPack("addition");

/** A fake model: right on prompts whose first operand's digit sum is even when `halfRight`, always right otherwise; or always "0". */
function fake(key: string, mode: "right" | "half" | "zero", calls: Map<string, number>): LabelFreeModel {
  const answer = (prompt: string, temperature: number | undefined): string => {
    if (mode === "zero") return "0";
    if (mode === "half" && (temperature ?? 0) > 0 && prompt.length % 2 === 0) return "1";
    return solveAddition(prompt);
  };
  const generator = {
    async generate(prompts: readonly string[], o: { temperature?: number }) {
      calls.set(key, (calls.get(key) ?? 0) + 1);
      return prompts.map((p) => ({ text: `${answer(p, o.temperature)}<eos>`, logprobs: [] }));
    },
  } as unknown as TextGenerator;
  return { key, generator: async () => generator };
}

describe("measureLabelFree", () => {
  it("peer agreement of candidate and incumbent on the same fresh prompts; each model answers a round's prompts once", async () => {
    const calls = new Map<string, number>();
    const cache = new AnswerCache();
    const peer = fake("b@3", "right", calls);
    const good = fake("a@5", "right", calls);
    const bad = fake("a@6", "zero", calls);
    const o = { difficulties: [4, 5], probeSize: 16, seed: "addition:round-3", cache };
    const first = await measureLabelFree({ candidate: bad, incumbent: good, peers: [peer] }, pack, o);
    expect(first.map((f) => [f.difficulty, f.count, f.signal, f.candidate, f.incumbent])).toEqual([
      [4, 16, "peer_agreement", 0, 1],
      [5, 16, "peer_agreement", 0, 1],
    ]);
    // The peer's lineage gated next in the same round: the incumbent a@5 is now its peer. Nobody answers twice.
    await measureLabelFree({ candidate: fake("b@4", "right", calls), incumbent: peer, peers: [good] }, pack, o);
    expect(Object.fromEntries(calls)).toEqual({ "b@3": 2, "a@5": 2, "a@6": 2, "b@4": 2 });
  });

  it("without peers: self-consistency of temperature-1 samples with the greedy answer", async () => {
    const calls = new Map<string, number>();
    const [f] = await measureLabelFree({ candidate: fake("c@2", "half", calls), incumbent: fake("c@1", "right", calls), peers: [] }, pack, { difficulties: [3], probeSize: 32, seed: "s" });
    expect(f!.signal).toBe("self_consistency");
    expect(f!.incumbent).toBe(1);
    expect(f!.candidate).toBeGreaterThan(0);
    expect(f!.candidate).toBeLessThan(1);
  });
});
