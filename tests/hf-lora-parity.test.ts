import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importHfModel, saveHfModel, type HfModel } from "../src/engine/checkpoint/hf-folder.js";
import { loadLoraAdapter, saveLoraAdapter } from "../src/engine/checkpoint/peft.js";
import { serialize } from "../src/engine/graph/serialize.js";
import { buildForwardGraph } from "../src/engine/model/transformer.js";
import { createSession } from "../src/engine/runtime/session.js";
import type { HostTensor, TensorMap } from "../src/engine/runtime/tensor.js";
import { buildTrainingGraph } from "../src/engine/train/graph.js";
import { mergeLora } from "../src/engine/train/lora.js";
import { reference, torchMissing } from "./reference/reference.js";
import { TINY } from "./reference/tiny-models.js";

// LoRA on imported models with Hugging Face module names, checked against PyTorch autograd with
// PEFT semantics: gradients on every target module, adapters exchanged in the PEFT layout both
// ways, and merging back into safetensors with the original names.

const missing = torchMissing();

/** Per family: PEFT target_modules covering every adaptable linear. */
const TARGETS: Record<string, string[]> = {
  gpt2: ["c_attn", "c_proj", "c_fc"],
  llama: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"],
  qwen2: ["q_proj", "k_proj", "v_proj", "o_proj"],
};
const RANK = 4;
const ALPHA = 8;
const IDS = [
  [3, 17, 5, 9, 22, 41, 7, 11],
  [8, 1, 30, 2, 49, 13, 6, 0],
];
const TARGET_IDS = IDS.map((row) => [...row.slice(1), 4]);
const LOSS_MASK = [
  [0, 0, 1, 1, 1, 1, 1, 1],
  [0, 1, 1, 1, 1, 1, 0, 0],
];

const int64 = (rows: number[][]): HostTensor => ({ dtype: "int64", dims: [rows.length, rows[0]!.length], data: BigInt64Array.from(rows.flat().map(BigInt)) });

/** ‖a − b‖ / ‖b‖. */
function relError(a: ArrayLike<number>, b: readonly number[]): number {
  let num = 0;
  let den = 0;
  b.forEach((v, i) => {
    num += (Number(a[i]) - v) ** 2;
    den += v * v;
  });
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function engineLogits(m: HfModel, params: Record<string, HostTensor<"float32">>, ids: number[][]): Promise<Float32Array> {
  const session = await createSession(serialize(buildForwardGraph(m.config, { fused: true }).model));
  const out = await session.run({ input_ids: int64(ids), ...params }, ["logits"]);
  await session.release();
  return out.logits!.data as Float32Array;
}

describe.skipIf(missing !== null)("LoRA on Hugging Face imports matches PEFT + PyTorch autograd", () => {
  let root: string;
  const models: Record<string, HfModel> = {};
  const refGrads: Record<string, { loss: number; grads: Record<string, number[]> }> = {};
  const reloaded: Record<string, { merged: Record<string, HostTensor<"float32">>; withAdapter: number[]; fromMerged: number[] }> = {};

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "hf-lora-"));
    const names = Object.keys(TARGETS);
    await reference(names.flatMap((n, k) => [
      { op: "make", dir: join(root, n), seed: 10 + k, ...TINY[n] },
      { op: "make_adapter", dir: join(root, n), out: join(root, `${n}-peft`), r: RANK, alpha: ALPHA, target_modules: TARGETS[n], seed: 20 + k },
    ]));
    const grads = await reference<{ loss: number; grads: Record<string, number[]> }>(
      names.map((n) => ({ op: "lora_grads", dir: join(root, n), adapter: join(root, `${n}-peft`), input_ids: IDS, targets: TARGET_IDS, loss_mask: LOSS_MASK, float64: true })),
    );
    for (const [k, n] of names.entries()) {
      models[n] = await importHfModel(join(root, n));
      refGrads[n] = grads[k]!;
    }
    const jobs = [];
    for (const n of names) {
      const { merged, jobs: js } = await writeEngineAdapter(n);
      reloaded[n] = { merged, withAdapter: [], fromMerged: [] };
      jobs.push(...js);
    }
    const outs = await reference<{ logits: number[][][] }>(jobs);
    names.forEach((n, k) => {
      reloaded[n]!.withAdapter = outs[2 * k]!.logits.flat(2);
      reloaded[n]!.fromMerged = outs[2 * k + 1]!.logits.flat(2);
    });
  }, 120_000);

  /**
   * Writes an adapter of the engine's own (the reference's one, moved along its gradient) in the
   * PEFT layout, merges it, exports the merged model with HF names; returns the reference jobs
   * that read both back.
   */
  async function writeEngineAdapter(name: string): Promise<{ merged: Record<string, HostTensor<"float32">>; jobs: Record<string, unknown>[] }> {
    const m = models[name]!;
    const made = await loadLoraAdapter(join(root, `${name}-peft`), m.config);
    const adapters = Object.fromEntries(
      Object.entries(made.adapters).map(([k, t]) => [k, { ...t, data: t.data.map((v, i) => v - 0.5 * (refGrads[name]!.grads[k]![i] ?? 0)) }]),
    ) as Record<string, HostTensor<"float32">>;
    const lora = { rank: RANK, alpha: ALPHA, targetModules: TARGETS[name]! };
    const dir = join(root, `${name}-engine-adapter`);
    await saveLoraAdapter(dir, { adapters, rank: RANK, alpha: ALPHA, targetModules: lora.targetModules, baseModel: m.dir, fanInFanOut: m.family === "gpt2" });
    const merged = mergeLora(m.config, m.params, adapters, lora);
    const mergedDir = join(root, `${name}-merged`);
    await saveHfModel(mergedDir, { family: m.family, config: m.config, params: merged, hfConfig: m.hfConfig, naming: m.naming, copyFrom: m.dir });
    const mask = IDS.map((row) => row.map(() => 1));
    return {
      merged,
      jobs: [
        { op: "logits", dir: m.dir, adapter: dir, input_ids: IDS, attention_mask: mask },
        { op: "logits", dir: mergedDir, input_ids: IDS, attention_mask: mask },
      ],
    };
  }

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it.each(Object.keys(TARGETS))("%s: loss and gradients of a PEFT adapter made elsewhere, every target module, within 1e-4", async (name) => {
    const m = models[name]!;
    const adapter = await loadLoraAdapter(join(root, `${name}-peft`), m.config);
    const lora = { rank: adapter.config.r, alpha: adapter.config.lora_alpha, targetModules: adapter.config.target_modules };
    const tg = buildTrainingGraph(m.config, { mode: "lora", lora, dtype: "float32" });
    const session = await createSession(serialize(tg.model));
    const feeds: TensorMap = {
      ...m.params,
      ...adapter.adapters,
      input_ids: int64(IDS),
      targets: int64(TARGET_IDS),
      loss_mask: { dtype: "float32", dims: [2, 8], data: Float32Array.from(LOSS_MASK.flat()) },
    };
    const out = await session.run(feeds);
    await session.release();
    const ref = refGrads[name]!;
    expect(Number((out[tg.loss]!.data as Float32Array)[0])).toBeCloseTo(ref.loss, 5);
    expect(Object.keys(ref.grads).sort()).toEqual([...tg.trainable].sort());
    for (const input of tg.trainable) {
      const g = out[tg.gradients.get(input)!]!.data as Float32Array;
      expect(relError(g, ref.grads[input]!), input).toBeLessThan(1e-4);
    }
  });

  it.each(Object.keys(TARGETS))("%s: an engine-written adapter reloads in the reference with the same logits; merged export keeps the HF names", async (name) => {
    const m = models[name]!;
    const { merged, withAdapter: flat, fromMerged } = reloaded[name]!;
    const engine = await engineLogits(m, merged, IDS);
    expect(relError(engine, flat)).toBeLessThan(1e-5);
    expect(relError(Float32Array.from(fromMerged), flat)).toBeLessThan(1e-5);
    // The adapter changed the model (the check is not vacuous).
    expect(relError(await engineLogits(m, m.params, IDS), flat)).toBeGreaterThan(1e-2);
  });
});
