import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { checkGradients } from "../autodiff/gradcheck.js";
import { loadPolicyValueModel, savePolicyValueModel } from "../checkpoint/policy-value-folder.js";
import { serialize } from "../graph/serialize.js";
import { createRng } from "../random.js";
import { createSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { createModelWorker } from "../runtime/worker.js";
import { buildPolicyValueTrainingGraph } from "../train/policy-value.js";
import type { Parameters } from "./params.js";
import {
  buildPolicyValueGraph,
  buildPolicyValueLossGraph,
  createPolicyValueConfig,
  initPolicyValueParams,
  POLICY_VALUE_IO as IO,
  policyValueParamSpecs,
  type PolicyValueConfig,
} from "./policy-value.js";
import { convNeighbourhoods } from "./policy-value-conv.js";
import { openPolicyValueNetwork } from "./policy-value-network.js";

const small = createPolicyValueConfig({ inputLength: 6, vocabSize: 3, numMoves: 4, hidden: 8, blocks: 2, valueHidden: 5 });
/** A 3×4 board plus one global token, 3×3 kernels (edges, corners and the extra token all exercised). */
const smallConv = createPolicyValueConfig({ arch: "conv", board: { rows: 3, cols: 4 }, inputLength: 13, vocabSize: 3, numMoves: 4, hidden: 4, blocks: 1, valueHidden: 3 });
const archs = [
  ["mlp", small],
  ["conv", smallConv],
] as const;

/** Init weights with every tensor perturbed, so heads, norms and biases all carry gradient. */
function perturbed(c: PolicyValueConfig, seed: string): Parameters {
  const p = initPolicyValueParams(c, seed);
  const rng = createRng(`perturb-${seed}`);
  for (const t of Object.values(p)) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) + 0.3 * rng.normal();
  return p;
}

/** A batch of random positions: tokens, ≥ 1 legal move per row, a distribution on the legal moves, values in [−1, 1]. */
function randomData(c: PolicyValueConfig, B: number, seed: string, dtype: "float32" | "float64"): TensorMap {
  const rng = createRng(seed);
  const tokens = BigInt64Array.from({ length: B * c.inputLength }, () => BigInt(rng.int(c.vocabSize)));
  const legal = new Uint8Array(B * c.numMoves);
  const policy = new Float64Array(B * c.numMoves);
  for (let r = 0; r < B; r++) {
    for (let m = 0; m < c.numMoves; m++) legal[r * c.numMoves + m] = rng.next() < 0.7 ? 1 : 0;
    legal[r * c.numMoves + rng.int(c.numMoves)] = 1;
    let sum = 0;
    for (let m = 0; m < c.numMoves; m++) {
      const k = r * c.numMoves + m;
      policy[k] = legal[k] ? rng.next() : 0;
      sum += policy[k] as number;
    }
    for (let m = 0; m < c.numMoves; m++) policy[r * c.numMoves + m] = (policy[r * c.numMoves + m] as number) / sum;
  }
  const value = Float64Array.from({ length: B }, () => 2 * rng.next() - 1);
  const f = (a: Float64Array): HostTensor => (dtype === "float64" ? { dtype, dims: [], data: a } : { dtype, dims: [], data: Float32Array.from(a) });
  return {
    [IO.tokens]: { dtype: "int64", dims: [B, c.inputLength], data: tokens },
    [IO.legal]: { dtype: "bool", dims: [B, c.numMoves], data: legal },
    [IO.targetPolicy]: { ...f(policy), dims: [B, c.numMoves] },
    [IO.targetValue]: { ...f(value), dims: [B] },
  };
}

function paramFeeds(p: Parameters, dtype: "float32" | "float64"): TensorMap {
  const out: TensorMap = {};
  for (const [k, t] of Object.entries(p)) out[k] = dtype === "float32" ? t : { dtype: "float64", dims: t.dims, data: Float64Array.from(t.data) };
  return out;
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("policy/value network", () => {
  it.each(archs)("%s: the loss gradient w.r.t. every parameter matches central finite differences (float64)", async (_arch, cfg) => {
    for (const valueWeight of [1, 2.5]) {
      const { model, trainable } = buildPolicyValueLossGraph(cfg, { dtype: "float64", valueWeight });
      expect(trainable).toEqual(policyValueParamSpecs(cfg).map((s) => s.name));
      const feeds = { ...paramFeeds(perturbed(cfg, `g${valueWeight}`), "float64"), ...randomData(cfg, 5, `d${valueWeight}`, "float64") };
      const r = await checkGradients(model, { wrt: trainable, loss: IO.loss, feeds, maxElements: 24 });
      expect(r.checked).toBeGreaterThan(200);
      if (r.maxRelError > 1e-5) throw new Error(`gradient mismatch ${r.maxRelError} at ${JSON.stringify(r.worst)}`);
    }
  });

  it.each(archs)("%s: the float32 training graph (fused backward) gives the float64 gradients", async (_arch, cfg) => {
    const p = perturbed(cfg, "f32");
    const data64 = randomData(cfg, 7, "f32-data", "float64");
    const data32 = randomData(cfg, 7, "f32-data", "float32");
    const ref = buildPolicyValueTrainingGraph(cfg, { dtype: "float64" });
    const f32 = buildPolicyValueTrainingGraph(cfg, { dtype: "float32", batch: 7 });
    expect(f32.model.graph.nodes.some((n) => n.op === "FusedMatMul")).toBe(true);
    const s64 = await createSession(serialize(ref.model), { intraOpThreads: 1 });
    const s32 = await createSession(serialize(f32.model), { intraOpThreads: 1 });
    try {
      const o64 = await s64.run({ ...paramFeeds(p, "float64"), ...data64 });
      const o32 = await s32.run({ ...paramFeeds(p, "float32"), ...data32 });
      expect(Number(o32[IO.loss]!.data[0])).toBeCloseTo(Number(o64[IO.loss]!.data[0]), 4);
      for (const name of f32.trainable) {
        const a = o64[ref.gradients.get(name)!]!.data as Float64Array;
        const b = o32[f32.gradients.get(name)!]!.data as Float32Array;
        const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
        for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] as number) - (b[i] as number)) / scale).toBeLessThan(1e-4);
      }
    } finally {
      await s64.release();
      await s32.release();
    }
  });

  it("computes the AlphaZero loss as specified: soft-target cross-entropy over legal moves + weighted value MSE", async () => {
    const valueWeight = 0.7;
    const { model } = buildPolicyValueLossGraph(small, { dtype: "float64", valueWeight });
    const B = 6;
    const data = randomData(small, B, "loss-def", "float64");
    const s = await createSession(serialize(model), { intraOpThreads: 1 });
    try {
      const out = await s.run({ ...paramFeeds(perturbed(small, "loss-def"), "float64"), ...data });
      const logits = out[IO.logits]!.data as Float64Array;
      const value = out[IO.value]!.data as Float64Array;
      const legal = data[IO.legal]!.data as Uint8Array;
      const pi = data[IO.targetPolicy]!.data as Float64Array;
      const z = data[IO.targetValue]!.data as Float64Array;
      const M = small.numMoves;
      let ce = 0;
      let mse = 0;
      for (let r = 0; r < B; r++) {
        let max = -Infinity;
        for (let m = 0; m < M; m++) if (legal[r * M + m]) max = Math.max(max, logits[r * M + m] as number);
        let sum = 0;
        for (let m = 0; m < M; m++) if (legal[r * M + m]) sum += Math.exp((logits[r * M + m] as number) - max);
        for (let m = 0; m < M; m++) if (legal[r * M + m]) ce -= (pi[r * M + m] as number) * ((logits[r * M + m] as number) - max - Math.log(sum));
        mse += ((value[r] as number) - (z[r] as number)) ** 2;
        expect(Math.abs(value[r] as number)).toBeLessThan(1);
      }
      expect(Number(out[IO.policyLoss]!.data[0])).toBeCloseTo(ce / B, 10);
      expect(Number(out[IO.valueLoss]!.data[0])).toBeCloseTo(mse / B, 10);
      expect(Number(out[IO.loss]!.data[0])).toBeCloseTo(ce / B + valueWeight * (mse / B), 10);
    } finally {
      await s.release();
    }
  });

  it.each([
    ["mlp", createPolicyValueConfig({ inputLength: 43, vocabSize: 5, numMoves: 7, hidden: 32, blocks: 1, valueHidden: 16 })],
    ["conv", createPolicyValueConfig({ arch: "conv", board: { rows: 6, cols: 7 }, inputLength: 43, vocabSize: 5, numMoves: 7, hidden: 8, blocks: 1, valueHidden: 16 })],
  ] as const)("%s: the inference graph (weights baked in) and the worker network give the loss graph's outputs", async (_arch, c) => {
    const p = perturbed(c, "inference");
    const B = 9;
    const data = randomData(c, B, "inference-data", "float32");
    const lossSession = await createSession(serialize(buildPolicyValueLossGraph(c).model), { intraOpThreads: 1 });
    const worker = createModelWorker();
    try {
      const ref = await lossSession.run({ ...paramFeeds(p, "float32"), ...data }, [IO.logits, IO.value]);
      const net = await openPolicyValueNetwork(worker, c, p);
      const tokens = Array.from(data[IO.tokens]!.data as BigInt64Array, Number);
      const out = await net.evaluate(tokens, B);
      expect(out.logits.length).toBe(B * c.numMoves);
      expect(out.values.length).toBe(B);
      const refLogits = ref[IO.logits]!.data as Float32Array;
      const refValues = ref[IO.value]!.data as Float32Array;
      out.logits.forEach((v, i) => expect(v).toBeCloseTo(refLogits[i] as number, 5));
      out.values.forEach((v, i) => expect(v).toBeCloseTo(refValues[i] as number, 5));
      await expect(net.evaluate(tokens.slice(1), B)).rejects.toMatchObject({ code: Code.InvalidArgument });
      await net.release();
      // The plain forward graph (parameters as inputs) has the same signature minus the weights.
      const fwd = buildPolicyValueGraph(c, { batch: "batch" });
      expect(fwd.graph.inputs.map((i) => i.name)).toEqual([IO.tokens, ...policyValueParamSpecs(c).map((s) => s.name)]);
      expect(fwd.graph.outputs.map((o) => o.name)).toEqual([IO.logits, IO.value]);
    } finally {
      await lossSession.release();
      await worker.close();
    }
  });

  it("saves and loads a checkpoint folder (safetensors + config + manifest) and detects corruption", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pv-ckpt-"));
    dirs.push(dir);
    const p = perturbed(small, "ckpt");
    const manifest = await savePolicyValueModel(dir, { config: small, params: p, extra: { game: "connect4-6x7", round: 3 }, metadata: { round: "3" } });
    expect(Object.keys(manifest.files).sort()).toEqual(["config.json", "model.safetensors", "onnx/model.onnx"]);
    const loaded = await loadPolicyValueModel(dir);
    expect(loaded.config).toEqual(small);
    expect(loaded.extra).toEqual({ game: "connect4-6x7", round: 3 });
    expect(loaded.metadata).toEqual({ round: "3" });
    for (const [k, t] of Object.entries(p)) expect(Array.from(loaded.params[k]!.data)).toEqual(Array.from(t.data));
    // The stored ONNX graph runs and agrees with a graph rebuilt from the loaded weights.
    const onnx = new Uint8Array(await readFile(join(dir, "onnx/model.onnx")));
    const s = await createSession(onnx, { intraOpThreads: 1 });
    const out = await s.run({ [IO.tokens]: randomData(small, 2, "ckpt-run", "float32")[IO.tokens]! });
    expect(out[IO.value]!.dims).toEqual([2]);
    await s.release();

    const weights = join(dir, "model.safetensors");
    const bytes = await readFile(weights);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(weights, bytes);
    await expect(loadPolicyValueModel(dir)).rejects.toMatchObject({ code: Code.DataLoss });
    await expect(savePolicyValueModel(dir, { config: { ...small, hidden: 9 }, params: p })).rejects.toBeInstanceOf(AutodidactError);
  });

  it("conv: every cell reads its own k×k neighbourhood, zeros off the board", () => {
    // 3 rows × 4 cols, cells row-major: (r, c) = 4r + c.
    const { index, mask } = convNeighbourhoods(3, 4, 3);
    const window = (cell: number): (number | null)[] => Array.from({ length: 9 }, (_, k) => (mask[cell * 9 + k] === 1 ? Number(index[cell * 9 + k]) : null));
    expect(window(5)).toEqual([0, 1, 2, 4, 5, 6, 8, 9, 10]);
    expect(window(0)).toEqual([null, null, null, null, 0, 1, null, 4, 5]);
    expect(window(11)).toEqual([6, 7, null, 10, 11, null, null, null, null]);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(4 * 4 + 6 * 4 + 2 * 6 + 9 * 2);
  });

  it("rejects bad configs with the field's name", () => {
    expect(() => createPolicyValueConfig({ inputLength: 0, vocabSize: 3, numMoves: 2 })).toThrow(/inputLength must be a positive integer/);
    expect(() => createPolicyValueConfig({ inputLength: 4, vocabSize: 3, numMoves: 2, blocks: -1 })).toThrow(/blocks must be a non-negative integer/);
    expect(() => createPolicyValueConfig({ arch: "conv", inputLength: 4, vocabSize: 3, numMoves: 2 })).toThrow(/arch conv needs board/);
    expect(() => createPolicyValueConfig({ arch: "conv", board: { rows: 3, cols: 3 }, inputLength: 4, vocabSize: 3, numMoves: 2 })).toThrow(/needs 9 tokens, inputLength is 4/);
    expect(() => createPolicyValueConfig({ arch: "conv", board: { rows: 2, cols: 2 }, kernel: 2, inputLength: 4, vocabSize: 3, numMoves: 2 })).toThrow(/kernel must be an odd/);
  });
});
