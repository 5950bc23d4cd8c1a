import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelWorker, openDecoder, type ModelWorker, type OpenDecoder } from "../../../src/engine/index.js";
import { saveTinyDecoder } from "../../../src/domain/serving/test-models.js";
import { getTaskPack } from "../../../src/domain/tasks/index.js";
import { applyGate, DEFAULT_GATE_POLICY } from "./gate.js";
import { evaluateModel, labelAccuracy } from "./evaluate-model.js";

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
    const report = await evaluateModel(decoder.generator, pack, { difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
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
    const again = await evaluateModel(decoder.generator, pack, { difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
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
    const full = await evaluateModel(counting, pack, { difficulties: [1, 2], limitPerDifficulty: 8, seed: 1 });
    expect(sampledRows).toBe(16);
    sampledRows = 0;
    const capped = await evaluateModel(counting, pack, { difficulties: [1, 2], limitPerDifficulty: 8, samplesPerDifficulty: 3, seed: 1 });
    expect(sampledRows).toBe(6);
    // Accuracy and loss still cover every problem; only the sampled signals shrink.
    expect(capped.perDifficulty).toEqual(full.perDifficulty);
    expect(capped.accuracy).toBe(full.accuracy);
    expect(capped.evalSetDigest).not.toBe(full.evalSetDigest);
    const again = await evaluateModel(decoder.generator, pack, { difficulties: [1, 2], limitPerDifficulty: 8, samplesPerDifficulty: 3, seed: 1 });
    expect(again.evalSetDigest).toBe(capped.evalSetDigest);
    expect(again.distinctN).toEqual(capped.distinctN);
  });

  it("label accuracy uses the verifier", () => {
    const [a, b] = pack.heldOut("test", 3, 2);
    expect(labelAccuracy(pack, [
      { prompt: a!.prompt, completion: a!.answer },
      { prompt: b!.prompt, completion: `${b!.answer}9` },
    ])).toEqual({ accuracy: 0.5, count: 2 });
  });
});
