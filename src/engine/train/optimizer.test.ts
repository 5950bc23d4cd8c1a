import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { AdamW, learningRate, type OptimizerParam } from "./optimizer.js";

describe("AdamW", () => {
  it("matches a hand-computed two-step reference (decoupled decay, bias correction)", () => {
    // w (rank 2, decays) starts at [1, -2]; b (rank 1, no decay) at [0.5].
    const w: OptimizerParam = { name: "w", dims: [1, 2], data: Float32Array.from([1, -2]) };
    const b: OptimizerParam = { name: "b", dims: [1], data: Float32Array.from([0.5]) };
    const opt = new AdamW([w, b], { lr: 0.1, weightDecay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: 0 });
    // Step 1, g_w = [0.5, -1], g_b = [2]. m̂ = g and v̂ = g² after bias correction, so each
    // update is lr·sign(g) (up to eps); decay first multiplies w by 1 − lr·wd = 0.99.
    const r1 = opt.update([Float32Array.from([0.5, -1]), Float32Array.from([2])], 1.0);
    expect(r1.gradNorm).toBeCloseTo(Math.sqrt(0.25 + 1 + 4), 6);
    expect(w.data[0]).toBeCloseTo(0.99 - 0.1, 6); // 0.89
    expect(w.data[1]).toBeCloseTo(-1.98 + 0.1, 6); // -1.88
    expect(b.data[0]).toBeCloseTo(0.5 - 0.1, 6); // 0.4
    // Step 2, g_w = [0.5, 0], g_b = [-2].
    // w0: m = 0.9·0.05 + 0.1·0.5 = 0.095; v = 0.999·0.00025 + 0.001·0.25 = 0.00049975
    //     m̂ = 0.095/0.19 = 0.5; v̂ = 0.00049975/0.001999 = 0.25 → update 0.1·0.5/0.5 = 0.1
    //     w0 = 0.89·0.99 − 0.1 = 0.7811
    // w1: m = 0.9·(−0.1) = −0.09; v = 0.999·0.001 = 0.000999
    //     m̂ = −0.09/0.19 = −0.47368; v̂ = 0.000999/0.001999 = 0.49975; √v̂ = 0.706929
    //     update = 0.1·(−0.47368)/0.706929 = −0.0670055 → w1 = −1.88·0.99 + 0.0670055 = −1.8612 + 0.0670055 = −1.7941945
    // b:  m = 0.9·0.2 + 0.1·(−2) = −0.02; v = 0.999·0.004 + 0.001·4 = 0.007996
    //     m̂ = −0.02/0.19 = −0.1052632; v̂ = 0.007996/0.001999 = 4 → update = 0.1·(−0.1052632)/2 → b = 0.4 + 0.00526316
    const r2 = opt.update([Float32Array.from([0.5, 0]), Float32Array.from([-2])], 0.5);
    expect(r2.step).toBe(2);
    expect(w.data[0]).toBeCloseTo(0.7811, 5);
    expect(w.data[1]).toBeCloseTo(-1.7941945, 5);
    expect(b.data[0]).toBeCloseTo(0.40526316, 5);
  });

  it("clips by global norm (PyTorch clip_grad_norm_ semantics)", () => {
    const p: OptimizerParam = { name: "p", dims: [2], data: Float32Array.from([0, 0]) };
    const q: OptimizerParam = { name: "q", dims: [2], data: Float32Array.from([0, 0]) };
    const plain = new AdamW([q], { lr: 1, weightDecay: 0, maxGradNorm: 0, beta1: 0, beta2: 0, eps: 0 });
    const clipped = new AdamW([p], { lr: 1, weightDecay: 0, maxGradNorm: 1, beta1: 0, beta2: 0, eps: 0 });
    // With beta1 = beta2 = 0, eps = 0 the update is g/|g| elementwise: clipping must not change it...
    const r = clipped.update([Float32Array.from([3, 4])], 1);
    plain.update([Float32Array.from([3, 4])], 1);
    expect(r.clipped).toBe(true);
    expect(r.gradNorm).toBeCloseTo(5, 6);
    expect(Array.from(p.data)).toEqual(Array.from(q.data));
    // ...but with eps it does: the clipped gradient is [0.6, 0.8], so update = g/(|g| + eps).
    const e: OptimizerParam = { name: "e", dims: [2], data: Float32Array.from([0, 0]) };
    const withEps = new AdamW([e], { lr: 1, weightDecay: 0, maxGradNorm: 1, beta1: 0, beta2: 0, eps: 0.2 });
    withEps.update([Float32Array.from([3, 4])], 1);
    expect(e.data[0]).toBeCloseTo(-0.6 / 0.8, 5);
    expect(e.data[1]).toBeCloseTo(-0.8 / 1.0, 5);
  });

  it("refuses NaN/Inf losses, non-finite and exploding gradients with Aborted, changing nothing", () => {
    const p: OptimizerParam = { name: "p", dims: [2, 1], data: Float32Array.from([1, 2]) };
    const opt = new AdamW([p], { lr: 0.1, abortGradNorm: 100 });
    opt.update([Float32Array.from([0.1, 0.1])], 1);
    const before = { data: Array.from(p.data), state: opt.state() };
    const attempts: [Float32Array, number][] = [
      [Float32Array.from([0.1, 0.1]), Number.NaN],
      [Float32Array.from([0.1, 0.1]), Number.POSITIVE_INFINITY],
      [Float32Array.from([Number.NaN, 0.1]), 1],
      [Float32Array.from([1e3, 0]), 1],
    ];
    for (const [g, loss] of attempts) {
      let err: unknown;
      try {
        opt.update([g], loss);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AutodidactError);
      expect((err as AutodidactError).code).toBe(Code.Aborted);
      expect(Array.from(p.data)).toEqual(before.data);
      expect(opt.step).toBe(1);
      expect(Array.from(opt.state().m["p"]!)).toEqual(Array.from(before.state.m["p"]!));
    }
  });

  it("state round-trips", () => {
    const mk = (): OptimizerParam => ({ name: "p", dims: [3], data: Float32Array.from([1, 2, 3]) });
    const a = mk();
    const oa = new AdamW([a], { lr: 0.01 });
    oa.update([Float32Array.from([1, -1, 0.5])], 1);
    const b = { ...mk(), data: a.data.slice() };
    const ob = new AdamW([b], { lr: 0.01 });
    ob.loadState(oa.state());
    oa.update([Float32Array.from([0.3, 0.2, -0.1])], 1);
    ob.update([Float32Array.from([0.3, 0.2, -0.1])], 1);
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });
});

describe("learning-rate schedules", () => {
  it("warmup ramps linearly, then constant / linear / cosine / wsd decay as specified", () => {
    const peak = 1e-3;
    expect(learningRate(peak, { kind: "constant", warmupSteps: 4 }, 1)).toBeCloseTo(2.5e-4, 12);
    expect(learningRate(peak, { kind: "constant", warmupSteps: 4 }, 4)).toBeCloseTo(1e-3, 12);
    expect(learningRate(peak, { kind: "constant", warmupSteps: 4 }, 100)).toBe(peak);
    const lin = { kind: "linear", warmupSteps: 10, totalSteps: 110 } as const;
    expect(learningRate(peak, lin, 60)).toBeCloseTo(5e-4, 12);
    expect(learningRate(peak, lin, 110)).toBeCloseTo(0, 12);
    expect(learningRate(peak, lin, 500)).toBeCloseTo(0, 12);
    const cos = { kind: "cosine", warmupSteps: 0, totalSteps: 100, minLrRatio: 0.1 } as const;
    expect(learningRate(peak, cos, 50)).toBeCloseTo(1e-4 + 0.9e-3 * 0.5, 12);
    expect(learningRate(peak, cos, 100)).toBeCloseTo(1e-4, 12);
    const wsd = { kind: "wsd", warmupSteps: 10, totalSteps: 100, decaySteps: 20 } as const;
    expect(learningRate(peak, wsd, 50)).toBe(peak);
    expect(learningRate(peak, wsd, 80)).toBe(peak);
    expect(learningRate(peak, wsd, 90)).toBeCloseTo(5e-4, 12);
    expect(learningRate(peak, wsd, 100)).toBeCloseTo(0, 12);
    expect(() => learningRate(peak, { kind: "cosine" }, 1)).toThrow(/totalSteps/);
  });

  it("the optimizer follows its schedule", () => {
    const p: OptimizerParam = { name: "p", dims: [1], data: Float32Array.from([0]) };
    const opt = new AdamW([p], { lr: 1, schedule: { kind: "linear", warmupSteps: 2, totalSteps: 4 } });
    const lrs = [1, 2, 3, 4].map(() => opt.update([Float32Array.from([1])], 1).lr);
    expect(lrs).toEqual([0.5, 1, 0.5, 0]);
  });
});
