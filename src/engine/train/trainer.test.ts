import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadLoraAdapter } from "../checkpoint/peft.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { decodeBatch } from "../generate/decode.js";
import { serialize } from "../graph/serialize.js";
import { createTransformerConfig } from "../model/config.js";
import { parseHfConfig } from "../model/hf/config.js";
import { initParameters, type Parameters } from "../model/params.js";
import { buildServingGraph } from "../model/transformer.js";
import { createRng } from "../random.js";
import { createSession } from "../runtime/session.js";
import { makeBatch, type Example } from "./batch.js";
import { createTrainer, type Trainer } from "./trainer.js";

// Reversal task: 6 letters from an 8-letter alphabet, a separator, then the letters reversed.
const LETTERS = 8;
const SEP = 8;
const PAD = 9;
const LEN = 6;
const SEQ = 2 * LEN; // 13 tokens → 12 next-token positions

const config = createTransformerConfig({
  vocabSize: 10,
  numLayers: 2,
  hiddenSize: 64,
  numHeads: 4,
  intermediateSize: 128,
  maxPositions: 16,
  positional: "learned",
});

function reversalExamples(seed: string, n: number): Example[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => {
    const s = Array.from({ length: LEN }, () => rng.int(LETTERS));
    return { prompt: [...s, SEP], completion: [...s].reverse() };
  });
}

const bits = (p: Parameters): Map<string, string> =>
  new Map(Object.entries(p).map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString("base64")]));

const open: Trainer[] = [];
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
});

describe("makeBatch", () => {
  it("shifts targets by one and masks prompt and padding positions", () => {
    const b = makeBatch(
      [
        { prompt: [1, 2], completion: [3, 4] },
        { prompt: [5], completion: [6] },
      ],
      { padId: 0 },
    );
    expect(b.seqLen).toBe(3);
    expect(Array.from(b.inputIds, Number)).toEqual([1, 2, 3, 5, 0, 0]);
    expect(Array.from(b.targets, Number)).toEqual([2, 3, 4, 6, 0, 0]);
    // Row 0: predicting 2 is prompt (0), 3 and 4 are completion (1). Row 1: 6 is completion.
    expect(Array.from(b.mask)).toEqual([0, 1, 1, 1, 0, 0]);
    expect(() => makeBatch([{ prompt: [1, 2, 3], completion: [4, 5] }], { padId: 0, seqLen: 3 })).toThrow(/does not fit/);
    expect(() => makeBatch([], { padId: 0 })).toThrow(AutodidactError);
  });
});

describe("Trainer (worker thread)", () => {
  it("learns to reverse 6-character strings to 100% exact match (greedy KV-cache decoding)", async () => {
    const trainer = await createTrainer({
      config,
      weights: initParameters(config, "reverse"),
      mode: "full",
      optimizer: { lr: 3e-3, weightDecay: 0.01, schedule: { kind: "cosine", warmupSteps: 30, totalSteps: 400, minLrRatio: 0.05 } },
      batchSize: 64,
      seqLen: SEQ,
    });
    open.push(trainer);
    const train = reversalExamples("train", 64 * 400);
    let first = Number.NaN;
    let last = Number.NaN;
    for (let i = 0; i < 400; i++) {
      const r = await trainer.step(makeBatch(train.slice(i * 64, (i + 1) * 64), { padId: PAD, seqLen: SEQ }));
      if (i === 0) first = r.loss;
      last = r.loss;
      expect(r.step).toBe(i + 1);
    }
    expect(first).toBeGreaterThan(1.5); // ≈ ln 8 at the start
    expect(last).toBeLessThan(0.05);

    // Held-out strings, decoded by the generation engine from the trained weights.
    const seen = new Set(train.map((e) => e.prompt.join(",")));
    const test = reversalExamples("held-out", 300).filter((e) => !seen.has(e.prompt.join(",")));
    expect(test.length).toBeGreaterThan(250);
    const session = await createSession(serialize(buildServingGraph(config, await trainer.getWeights())));
    const rows = await decodeBatch(session, { prompts: test.map((e) => e.prompt), maxNewTokens: LEN, greedy: true, padId: PAD });
    await session.release();
    const exact = rows.filter((r, i) => r.tokens.join(",") === test[i]!.completion.join(",")).length;
    expect(exact).toBe(test.length);
    // 400 training steps: ~20 s on a quiet 2-core machine; the limit only guards against a hang.
  }, 240_000);

  it("keeps the event loop answering while a step runs", async () => {
    const big = createTransformerConfig({ vocabSize: 10, numLayers: 2, hiddenSize: 64, numHeads: 4, intermediateSize: 256, maxPositions: 48 });
    const trainer = await createTrainer({ config: big, weights: initParameters(big, 1), mode: "full", optimizer: { lr: 1e-3 } });
    open.push(trainer);
    const rng = createRng("loop");
    const examples = Array.from({ length: 64 }, () => ({
      prompt: Array.from({ length: 20 }, () => rng.int(10)),
      completion: Array.from({ length: 28 }, () => rng.int(10)),
    }));
    const batch = makeBatch(examples, { padId: 0, seqLen: 47 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    let ticksAtEnd = -1;
    await trainer.step(batch).then(() => {
      ticksAtEnd = ticks;
    });
    clearInterval(timer);
    // Had the step run on this thread, no timer could have fired before it resolved.
    expect(ticksAtEnd).toBeGreaterThan(0);
  });

  it("is reproducible: two trainers given the same weights and batches end bit-identical (2 ORT threads)", async () => {
    // 64 × 47 tokens over a 10-token vocabulary: every embedding row is hit hundreds of times per
    // step, so a gradient kernel that races on repeated indices shows up as different weights (with
    // ScatterND-add it did at width 128, where ORT splits the scatter across its threads).
    const big = createTransformerConfig({ vocabSize: 10, numLayers: 1, hiddenSize: 128, numHeads: 4, intermediateSize: 256, maxPositions: 48 });
    const rng = createRng("reproducible");
    const batches = Array.from({ length: 3 }, () =>
      makeBatch(
        Array.from({ length: 64 }, () => ({ prompt: Array.from({ length: 20 }, () => rng.int(10)), completion: Array.from({ length: 28 }, () => rng.int(10)) })),
        { padId: 0, seqLen: 47 },
      ),
    );
    const finals: Map<string, string>[] = [];
    for (let t = 0; t < 2; t++) {
      const trainer = await createTrainer({ config: big, weights: initParameters(big, 7), mode: "full", optimizer: { lr: 1e-3 }, threads: 2, batchSize: 64, seqLen: 47 });
      open.push(trainer);
      for (const b of batches) await trainer.step(b);
      finals.push(bits(await trainer.getWeights()));
    }
    const changed = [...finals[0]!.keys()].filter((k) => finals[0]!.get(k) !== finals[1]!.get(k));
    expect(changed).toEqual([]);
    expect(bits(initParameters(big, 7)).get("model.embed_tokens.weight")).not.toBe(finals[0]!.get("model.embed_tokens.weight"));
  });

  it("aborts a step on NaN (loss and gradients) with Code.Aborted, changes nothing, and keeps serving", async () => {
    const small = createTransformerConfig({ vocabSize: 10, numLayers: 1, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 16 });
    const trainer = await createTrainer({ config: small, weights: initParameters(small, 2), mode: "full", optimizer: { lr: 1e-2 } });
    open.push(trainer);
    const batch = makeBatch(reversalExamples("nan", 8), { padId: PAD });
    await trainer.step(batch);
    const poisoned = await trainer.getWeights();
    const embed = poisoned["model.embed_tokens.weight"]!;
    embed.data[3] = Number.NaN;
    await trainer.setWeights(poisoned);
    const before = bits(await trainer.getWeights());
    const stateBefore = await trainer.optimizerState();
    const err = await trainer.step(batch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.Aborted);
    expect(bits(await trainer.getWeights())).toEqual(before);
    expect((await trainer.optimizerState()).step).toBe(stateBefore.step);
    // Fix the weight: training resumes.
    embed.data[3] = 0;
    await trainer.setWeights(poisoned);
    const r = await trainer.step(batch);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.step).toBe(2);
    // Bad input is InvalidArgument, not a crash.
    const bad = makeBatch([{ prompt: [1], completion: [42] }], { padId: PAD });
    await expect(trainer.step(bad)).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("LoRA: trains only the adapters (base frozen), swaps adapters without a new session, and merges", async () => {
    const base = initParameters(config, "lora-base");
    const lora = { rank: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "up_proj", "down_proj"] };
    const trainer = await createTrainer({ config, weights: base, mode: "lora", lora, optimizer: { lr: 1e-2, weightDecay: 0 }, seed: 3 });
    open.push(trainer);
    expect(trainer.trainable.every((n) => n.includes("lora_"))).toBe(true);
    const batches = reversalExamples("lora", 64 * 6).map((_, i, all) => (i % 64 === 0 ? all.slice(i, i + 64) : null)).filter((x): x is Example[] => x !== null);
    const evalBatch = makeBatch(batches[0]!, { padId: PAD });
    const initialAdapters = await trainer.getAdapters();
    const loss0 = await trainer.evaluate(evalBatch);
    for (const b of batches) await trainer.step(makeBatch(b, { padId: PAD }));
    const loss1 = await trainer.evaluate(evalBatch);
    expect(loss1).toBeLessThan(loss0);
    expect(bits(await trainer.getWeights())).toEqual(bits(base));
    // Swap back to the initial adapters: same session, same loss as before training.
    const trained = await trainer.getAdapters();
    await trainer.setAdapters(initialAdapters);
    expect(await trainer.evaluate(evalBatch)).toBeCloseTo(loss0, 6);
    // Saved in the PEFT layout and loaded back: the same adapted model.
    const dir = await mkdtemp(join(tmpdir(), "adapter-"));
    try {
      await trainer.setAdapters(trained);
      await trainer.saveAdapter(dir, { baseModel: "test-base" });
      const loaded = await loadLoraAdapter(dir, config);
      expect(loaded.config.r).toBe(4);
      expect(loaded.config.target_modules).toEqual(lora.targetModules);
      await trainer.setAdapters(initialAdapters);
      await trainer.setAdapters(loaded.adapters);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await trainer.evaluate(evalBatch)).toBeCloseTo(loss1, 6);
    // Merged weights reproduce the adapted model's loss in a plain full-weight graph.
    const merged = await trainer.getMergedWeights();
    const full = await createTrainer({ config, weights: merged, mode: "full", optimizer: { lr: 0 } });
    open.push(full);
    expect(await full.evaluate(evalBatch)).toBeCloseTo(loss1, 4);
  });

  it("LoRA on a GPT-2 import: the adapter config records the modules PEFT matches there (c_attn) and its Conv1D flag", async () => {
    const { config: gpt2 } = parseHfConfig({ model_type: "gpt2", vocab_size: 10, n_embd: 16, n_layer: 1, n_head: 2, n_positions: 16 });
    const trainer = await createTrainer({ config: gpt2, weights: initParameters(gpt2, 1), mode: "lora", lora: { rank: 2, alpha: 4, targetModules: ["q_proj", "v_proj"] }, optimizer: { lr: 1e-2 } });
    open.push(trainer);
    const dir = await mkdtemp(join(tmpdir(), "adapter-gpt2-"));
    try {
      await trainer.saveAdapter(dir, { baseModel: "gpt2-base" });
      const loaded = await loadLoraAdapter(dir, gpt2);
      expect(loaded.config.target_modules).toEqual(["attn.c_attn"]);
      expect(loaded.config.fan_in_fan_out).toBe(true);
      expect(Object.keys(loaded.adapters).sort()).toEqual(["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
