import { afterAll, describe, expect, it } from "vitest";
import { Code } from "../../platform/errors/index.js";
import { createPolicyValueConfig, initPolicyValueParams } from "../model/policy-value.js";
import { createRng } from "../random.js";
import { checkPolicyValueBatch, PolicyValueTrainerCore, type PolicyValueBatch } from "./policy-value.js";
import { createPolicyValueTrainer, type PolicyValueTrainer } from "./policy-value-trainer.js";

const config = createPolicyValueConfig({ inputLength: 9, vocabSize: 3, numMoves: 9, hidden: 32, blocks: 1, valueHidden: 16 });

/**
 * A learnable toy: tic-tac-toe-sized boards of random tokens; the target policy is one-hot on the
 * first empty cell (token 0), the target value is +1 when there are more 1s than 2s, else −1.
 */
function toyBatch(seed: string, B: number): PolicyValueBatch {
  const rng = createRng(seed);
  const tokens = new BigInt64Array(B * 9);
  const legal = new Uint8Array(B * 9);
  const policy = new Float32Array(B * 9);
  const value = new Float32Array(B);
  for (let r = 0; r < B; r++) {
    let ones = 0;
    let twos = 0;
    let first = -1;
    for (let i = 0; i < 9; i++) {
      const t = i === 8 && first < 0 ? 0 : rng.int(3);
      tokens[r * 9 + i] = BigInt(t);
      if (t === 0) {
        legal[r * 9 + i] = 1;
        if (first < 0) first = i;
      } else if (t === 1) ones++;
      else twos++;
    }
    policy[r * 9 + first] = 1;
    value[r] = ones > twos ? 1 : -1;
  }
  return { batchSize: B, tokens, legal, policy, value };
}

const open: PolicyValueTrainer[] = [];
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
});

describe("policy/value training", () => {
  it("learns a toy policy and value in a few hundred steps (in-thread core)", async () => {
    const core = await PolicyValueTrainerCore.create({ config, weights: initPolicyValueParams(config, 1), optimizer: { lr: 3e-3, weightDecay: 1e-4 }, batchSize: 64, threads: 1 });
    try {
      const held = toyBatch("held-out", 64);
      const before = await core.evaluate(held);
      let last = { loss: 0, policyLoss: 0, valueLoss: 0 };
      for (let s = 0; s < 300; s++) last = await core.step(toyBatch(`train-${s}`, 64));
      const after = await core.evaluate(held);
      expect(core.stepCount).toBe(300);
      expect(last.loss).toBeCloseTo(last.policyLoss + last.valueLoss, 5);
      // Uniform over ~3 legal moves and value ≈ 0 at the start; far better after.
      expect(before.policyLoss).toBeGreaterThan(0.8);
      expect(before.valueLoss).toBeGreaterThan(0.8);
      expect(after.policyLoss).toBeLessThan(0.25);
      expect(after.valueLoss).toBeLessThan(0.5);
    } finally {
      await core.release();
    }
  });

  it("runs in a worker: steps change the weights, setWeights restores them, bad batches are refused", async () => {
    const w0 = initPolicyValueParams(config, 2);
    const trainer = await createPolicyValueTrainer({ config, weights: w0, optimizer: { lr: 1e-2 }, threads: 1 });
    open.push(trainer);
    const r = await trainer.step(toyBatch("w", 16));
    expect(r.step).toBe(1);
    expect(Number.isFinite(r.gradNorm)).toBe(true);
    const w1 = await trainer.getWeights();
    expect(Array.from(w1["input.weight"]!.data)).not.toEqual(Array.from(w0["input.weight"]!.data));
    await trainer.setWeights(w0);
    expect(Array.from((await trainer.getWeights())["input.weight"]!.data)).toEqual(Array.from(w0["input.weight"]!.data));
    const state = await trainer.optimizerState();
    expect(state.step).toBe(1);
    const bad = toyBatch("bad", 4);
    const illegal = bad.legal.indexOf(0);
    bad.policy[illegal] = 0.5;
    await expect(trainer.step(bad)).rejects.toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/on illegal move/) });
  });

  it("checks batches: sizes, token range, probabilities, values", () => {
    const b = toyBatch("check", 3);
    expect(() => checkPolicyValueBatch(config, b)).not.toThrow();
    expect(() => checkPolicyValueBatch(config, { ...b, batchSize: 4 })).toThrow(/tokens has 27 entries, expected 4×9/);
    const tokens = b.tokens.slice();
    tokens[0] = 7n;
    expect(() => checkPolicyValueBatch(config, { ...b, tokens })).toThrow(/token 7 at 0 is outside \[0, 3\)/);
    const value = b.value.slice();
    value[1] = 2;
    expect(() => checkPolicyValueBatch(config, { ...b, value })).toThrow(/value target 2 at row 1/);
    expect(() => checkPolicyValueBatch(config, { ...b, legal: new Uint8Array(27) })).toThrow(/on illegal move|no legal move/);
  });
});
