import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelWorker, openDecoder, type ModelWorker, type OpenDecoder } from "../../../src/engine/index.js";
import { saveTinyDecoder } from "../../../src/domain/serving/test-models.js";
import { getTaskPack } from "../../../src/domain/tasks/index.js";
import { applyGate, DEFAULT_GATE_POLICY } from "./gate.js";
import { evaluateModel, FRONTIER_THRESHOLD, frontierOf, labelAccuracy } from "./evaluate-model.js";

describe("evaluateModel on the addition task's held-out sets (tiny random decoder)", () => {
  let dir: string;
  let worker: ModelWorker;
  let decoder: OpenDecoder;
  const pack = getTaskPack("addition");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eval-"));
    await saveTinyDecoder(dir, 1);
    worker = createModelWorker();
    decoder = await openDecoder(worker, dir);
  });
  afterAll(async () => {
    await decoder?.session.release();
    await worker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reports per-difficulty accuracy and loss, calibration, diversity, drift and a stable eval-set digest", async () => {
    const report = await evaluateModel(decoder.generator, pack, { split: "validation", difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
    expect(report.perDifficulty.map((d) => [d.difficulty, d.count])).toEqual([
      [1, 8],
      [2, 8],
    ]);
    // A random model: high loss (near log vocab), low accuracy.
    expect(report.loss).toBeGreaterThan(1);
    expect(report.accuracy).toBeLessThan(0.5);
    for (const d of report.perDifficulty) expect(Number.isFinite(d.loss) && d.loss > 0).toBe(true);
    expect(report.distinctN[1]).toBeGreaterThan(0);
    expect(report.tokenEntropy).toBeGreaterThan(0);
    expect(report.driftKl).toBeGreaterThan(0);
    const again = await evaluateModel(decoder.generator, pack, { split: "validation", difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
    expect(again.evalSetDigest).toBe(report.evalSetDigest);
    expect(again.accuracy).toBe(report.accuracy);
    expect(again.distinctN).toEqual(report.distinctN);
    // The gate against itself passes unless an absolute limit fails; against a much better incumbent it fails.
    const better = { ...report, accuracy: report.accuracy + 0.5, perDifficulty: report.perDifficulty.map((d) => ({ ...d, accuracy: d.accuracy + 0.5 })) };
    const outcome = applyGate(DEFAULT_GATE_POLICY, report, better);
    expect(outcome.passed).toBe(false);
    expect(outcome.reasons.join("\n")).toMatch(/accuracy/);
  });

  it("samples only samplesPerDifficulty answers per difficulty for diversity, and says so in the eval-set digest", async () => {
    let sampledRows = 0;
    const g = decoder.generator;
    const counting: typeof g = {
      session: g.session,
      tokenizer: g.tokenizer,
      generate: (prompts, o) => {
        if (o.greedy !== true) sampledRows += prompts.length;
        return g.generate(prompts, o);
      },
      score: (p, c, o) => g.score(p, c, o),
    };
    const full = await evaluateModel(counting, pack, { split: "validation", difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
    expect(sampledRows).toBe(16);
    sampledRows = 0;
    const capped = await evaluateModel(counting, pack, { split: "validation", difficulties: [1, 2], limitPerDifficulty: 8, samplesPerDifficulty: 3, seed: 1 });
    expect(sampledRows).toBe(6);
    // Accuracy and loss still cover every problem; only the sampled signals shrink.
    expect(capped.perDifficulty).toEqual(full.perDifficulty);
    expect(capped.accuracy).toBe(full.accuracy);
    expect(capped.evalSetDigest).not.toBe(full.evalSetDigest);
    const again = await evaluateModel(decoder.generator, pack, { split: "validation", difficulties: [1, 2], limitPerDifficulty: 8, samplesPerDifficulty: 3, seed: 1 });
    expect(again.evalSetDigest).toBe(capped.evalSetDigest);
    expect(again.distinctN).toEqual(capped.distinctN);
  });

  it("evaluates one named split: its own problems, its own digest; accuracyOnly skips loss and sampling", async () => {
    let sampled = 0;
    let scored = 0;
    const g = decoder.generator;
    const counting: typeof g = {
      session: g.session,
      tokenizer: g.tokenizer,
      generate: (prompts, o) => {
        if (o.greedy !== true) sampled += prompts.length;
        return g.generate(prompts, o);
      },
      score: (p, c, o) => {
        scored += p.length;
        return g.score(p, c, o);
      },
    };
    const validation = await evaluateModel(decoder.generator, pack, { split: "validation", difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
    const test = await evaluateModel(counting, pack, { split: "test", accuracyOnly: true, difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
    expect(validation.split).toBe("validation");
    expect(test.split).toBe("test");
    expect(test.evalSetDigest).not.toBe(validation.evalSetDigest);
    expect(test.perDifficulty.map((d) => d.count)).toEqual([8, 8]);
    expect([sampled, scored]).toEqual([0, 0]);
    expect(test.alarms).toEqual([]);
    // The gate reads validation only: an evaluation of the test split is refused, never compared.
    expect(() => applyGate(DEFAULT_GATE_POLICY, test, undefined)).toThrow(/validation split only/);
    expect(() => applyGate(DEFAULT_GATE_POLICY, validation, test)).toThrow(/validation split only/);
  });

  it("the frontier is the largest L with every difficulty 1..L at >= 95 %, difficulty 1 included", () => {
    const at = (...acc: number[]) => acc.map((accuracy, i) => ({ difficulty: i + 1, accuracy }));
    expect(FRONTIER_THRESHOLD).toBe(0.95);
    expect(frontierOf(at(1, 1, 0.96, 0.5, 1), 1)).toBe(3);
    // 1-digit below 95 %: no frontier at all, however good the longer lengths are.
    expect(frontierOf(at(0.93, 1, 1, 1), 1)).toBe(0);
    expect(frontierOf(at(0.95, 0.949), 1)).toBe(1);
    // A length not evaluated ends the frontier.
    expect(frontierOf([{ difficulty: 1, accuracy: 1 }, { difficulty: 3, accuracy: 1 }], 1)).toBe(1);
  });

  it("label accuracy uses the verifier", () => {
    const [a, b] = pack.heldOut("test", 3, 2);
    expect(labelAccuracy(pack, [
      { prompt: a!.prompt, completion: a!.answer },
      { prompt: b!.prompt, completion: `${b!.answer}9` },
    ])).toEqual({ accuracy: 0.5, count: 2 });
  });
});
