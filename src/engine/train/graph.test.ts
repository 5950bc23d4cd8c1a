import { describe, expect, it } from "vitest";
import { checkGradients } from "../autodiff/gradcheck.js";
import { buildGradientModel } from "../autodiff/gradient.js";
import { AD_DOMAIN } from "../graph/ir.js";
import { serialize } from "../graph/serialize.js";
import { createTransformerConfig, type TransformerConfig } from "../model/config.js";
import { parameterSpecs } from "../model/params.js";
import { buildForwardGraph } from "../model/transformer.js";
import { createRng } from "../random.js";
import { createSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { buildLossGraph, buildTrainingGraph, type LoraOptions } from "./graph.js";
import { adaptedLinears } from "./lora.js";

const B = 2;
const T = 5;

/** Random float64 weights with a larger scale than init, so every gradient is well above noise. */
function randomParams(c: TransformerConfig, seed: string): Record<string, HostTensor<"float64">> {
  const rng = createRng(seed);
  const out: Record<string, HostTensor<"float64">> = {};
  for (const s of parameterSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = s.kind === "norm_weight" ? 1 + 0.2 * rng.normal() : 0.4 * rng.normal();
    out[s.name] = { dtype: "float64", dims: [...s.shape], data };
  }
  return out;
}

/** ids/targets/mask with a masked prompt prefix and one padded tail. */
function batchFeeds(c: TransformerConfig, dtype: "float32" | "float64", seed: string): TensorMap {
  const rng = createRng(seed);
  const ids = BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(c.vocabSize)));
  const targets = BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(c.vocabSize)));
  const maskValues = [0, 1, 1, 1, 1, 0, 0, 1, 1, 0];
  return {
    input_ids: { dtype: "int64", dims: [B, T], data: ids },
    targets: { dtype: "int64", dims: [B, T], data: targets },
    loss_mask: dtype === "float64" ? { dtype, dims: [B, T], data: Float64Array.from(maskValues) } : { dtype, dims: [B, T], data: Float32Array.from(maskValues) },
  };
}

const tiny = (over: Partial<TransformerConfig>): TransformerConfig =>
  createTransformerConfig({ vocabSize: 7, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 8, ...over });

describe("whole-model gradients vs finite differences", () => {
  it("tiny transformer (2 layers, width 16, LayerNorm, learned positions, tanh-GELU), float64, all parameters", async () => {
    const c = tiny({ positional: "learned", activation: "gelu_tanh", norm: "layernorm", bias: true });
    const lg = buildLossGraph(c, { mode: "full", dtype: "float64", batch: B, seq: T });
    const feeds = { ...batchFeeds(c, "float64", "data-1"), ...randomParams(c, "params-1") };
    const res = await checkGradients(lg.model, { wrt: lg.trainable, loss: lg.loss, feeds, maxElements: 6, eps: 1e-5 });
    expect(res.checked).toBeGreaterThan(6 * 20);
    expect(res.maxRelError, JSON.stringify(res.worst)).toBeLessThan(1e-5);
  });

  it("RMSNorm + rotary + tied embeddings variant, float64", async () => {
    const c = tiny({ positional: "rotary", activation: "gelu_tanh", norm: "rmsnorm", tieEmbeddings: true });
    const lg = buildLossGraph(c, { mode: "full", dtype: "float64", batch: B, seq: "seq" });
    const feeds = { ...batchFeeds(c, "float64", "data-2"), ...randomParams(c, "params-2") };
    const res = await checkGradients(lg.model, { wrt: lg.trainable, loss: lg.loss, feeds, maxElements: 4, eps: 1e-5 });
    expect(res.maxRelError, JSON.stringify(res.worst)).toBeLessThan(1e-5);
  });

  it("erf-GELU model in float32 with the contrib (FusedMatMul) backward", async () => {
    const c = tiny({ activation: "gelu" });
    const lg = buildLossGraph(c, { mode: "full", dtype: "float32", batch: B, seq: T });
    const p64 = randomParams(c, "params-3");
    const p32: TensorMap = {};
    for (const [k, v] of Object.entries(p64)) p32[k] = { dtype: "float32", dims: v.dims, data: Float32Array.from(v.data) };
    const feeds = { ...batchFeeds(c, "float32", "data-3"), ...p32 };
    const res = await checkGradients(lg.model, { wrt: lg.trainable, loss: lg.loss, feeds, maxElements: 3, eps: 3e-3, contrib: true });
    expect(res.maxAbsError, JSON.stringify(res.worst)).toBeLessThan(5e-3);
  });
});

describe("training graph GELU", () => {
  it("the erf-GELU backward that reuses forward intermediates gives the gradients autodiff derives from the composed loss graph", async () => {
    const c = tiny({ activation: "gelu", numLayers: 2 });
    const tg = buildTrainingGraph(c, { mode: "full", dtype: "float32", batch: B, seq: T });
    const nodes = tg.model.graph.nodes;
    // One Erf per layer (nothing recomputed in the backward) and no private-domain node left.
    expect(nodes.filter((n) => n.op === "Erf")).toHaveLength(c.numLayers);
    expect(nodes.some((n) => n.domain === AD_DOMAIN)).toBe(false);
    const lg = buildLossGraph(c, { mode: "full", dtype: "float32", batch: B, seq: T });
    const ref = buildGradientModel(lg.model, { wrt: lg.trainable, loss: lg.loss, contrib: true });
    const p32: TensorMap = {};
    for (const [k, v] of Object.entries(randomParams(c, "params-gelu"))) p32[k] = { dtype: "float32", dims: v.dims, data: Float32Array.from(v.data) };
    const feeds = { ...batchFeeds(c, "float32", "data-gelu"), ...p32 };
    const st = await createSession(serialize(tg.model));
    const sr = await createSession(serialize(ref.model));
    const ot = await st.run(feeds);
    const or = await sr.run(feeds);
    expect(Number(ot["loss"]!.data[0])).toBeCloseTo(Number(or["loss"]!.data[0]), 6);
    let worst = 0;
    for (const p of tg.trainable) {
      const a = ot[tg.gradients.get(p)!]!.data as Float32Array;
      const b = or[ref.gradients.get(p)!]!.data as Float32Array;
      const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
    }
    expect(worst).toBeLessThan(1e-4);
    await st.release();
    await sr.release();
  });
});

describe("training graphs' erf-GELU form", () => {
  it("with 1/√2 folded into up_proj and √(2/π) into down_proj (weights, biases, LoRA paths) it computes the plain graph's logits", async () => {
    const c = tiny({ activation: "gelu", bias: true });
    const lora: LoraOptions = { rank: 3, alpha: 6, targetModules: ["up_proj", "down_proj"] };
    const lg = buildLossGraph(c, { mode: "lora", lora, dtype: "float32", batch: B, seq: T });
    const nodes = lg.model.graph.nodes;
    expect(nodes.some((n) => n.op === "Gelu")).toBe(false);
    expect(nodes.filter((n) => n.op === "Erf")).toHaveLength(c.numLayers);
    const plain = buildForwardGraph(c, { batch: B, seq: T, lora: { rank: lora.rank, alpha: lora.alpha, targetModules: lora.targetModules } });
    expect(plain.model.graph.nodes.filter((n) => n.op === "Erf")).toHaveLength(c.numLayers);
    const rng = createRng("scaled-gelu");
    const feeds: TensorMap = { ...batchFeeds(c, "float32", "data-scaled") };
    for (const [k, v] of Object.entries(randomParams(c, "params-scaled"))) feeds[k] = { dtype: "float32", dims: v.dims, data: Float32Array.from(v.data) };
    for (const l of adaptedLinears(c, lora)) {
      feeds[l.a] = { dtype: "float32", dims: [lora.rank, l.in], data: Float32Array.from({ length: lora.rank * l.in }, () => 0.3 * rng.normal()) };
      feeds[l.b] = { dtype: "float32", dims: [l.out, lora.rank], data: Float32Array.from({ length: l.out * lora.rank }, () => 0.3 * rng.normal()) };
    }
    const sl = await createSession(serialize(lg.model));
    const sp = await createSession(serialize(plain.model));
    const want = (await sp.run({ input_ids: feeds["input_ids"]!, ...Object.fromEntries(plain.paramInputs.concat(plain.loraInputs.map((l) => l.name)).map((k) => [k, feeds[k]!])) }))["logits"]!.data as Float32Array;
    const got = await sl.run(feeds);
    const logits = got["logits"]!.data as Float32Array;
    const scale = Math.max(...Array.from(want, Math.abs));
    expect(scale).toBeGreaterThan(0.5);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(logits[i]! - want[i]!));
    expect(worst / scale).toBeLessThan(1e-5);
    // The training graph computes the affine step of the same form as one BatchNormalization.
    const tg = buildTrainingGraph(c, { mode: "lora", lora, dtype: "float32", batch: B, seq: T });
    expect(tg.model.graph.nodes.filter((n) => n.op === "BatchNormalization")).toHaveLength(c.numLayers);
    const st = await createSession(serialize(tg.model));
    const lossT = Number((await st.run(feeds, ["loss"]))["loss"]!.data[0]);
    expect(Math.abs(lossT - Number(got["loss"]!.data[0]))).toBeLessThan(1e-6 * Math.max(1, Math.abs(lossT)));
    await Promise.all([sl.release(), sp.release(), st.release()]);
  });
});

describe("LoRA gradients", () => {
  it("grad_A = s·Bᵀ·G_W and grad_B = s·G_W·Aᵀ, where G_W is the full-weight gradient at W + s·B·A", async () => {
    const c = tiny({ activation: "gelu_tanh" });
    const lora: LoraOptions = { rank: 3, alpha: 6, targetModules: ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"] };
    const s = lora.alpha / lora.rank;
    const rng = createRng("lora-proj");
    const base = randomParams(c, "params-4");
    const adapters: Record<string, HostTensor<"float64">> = {};
    const linears = adaptedLinears(c, lora);
    for (const l of linears) {
      adapters[l.a] = { dtype: "float64", dims: [lora.rank, l.in], data: Float64Array.from({ length: lora.rank * l.in }, () => 0.3 * rng.normal()) };
      adapters[l.b] = { dtype: "float64", dims: [l.out, lora.rank], data: Float64Array.from({ length: l.out * lora.rank }, () => 0.3 * rng.normal()) };
    }
    // Effective weights W + s·B·A (float64).
    const merged: Record<string, HostTensor<"float64">> = { ...base };
    for (const l of linears) {
      const w = Float64Array.from(base[l.base]!.data);
      const a = adapters[l.a]!.data;
      const b = adapters[l.b]!.data;
      for (let i = 0; i < l.out; i++) for (let k = 0; k < lora.rank; k++) for (let j = 0; j < l.in; j++) w[i * l.in + j]! += s * b[i * lora.rank + k]! * a[k * l.in + j]!;
      merged[l.base] = { dtype: "float64", dims: [l.out, l.in], data: w };
    }
    const data = batchFeeds(c, "float64", "data-4");
    const full = buildTrainingGraph(c, { mode: "full", dtype: "float64", batch: B, seq: T });
    const lo = buildTrainingGraph(c, { mode: "lora", lora, dtype: "float64", batch: B, seq: T });
    // Frozen base weights get no gradient output at all.
    expect(lo.model.graph.outputs.map((o) => o.name).sort()).toEqual(["loss", ...lo.trainable.map((t) => lo.gradients.get(t)!)].sort());
    // Level "all" fuses ops into float32-stash kernels; keep float64 exact with basic rewrites only.
    const sf = await createSession(serialize(full.model), { graphOptimization: "basic" });
    const sl = await createSession(serialize(lo.model), { graphOptimization: "basic" });
    const of = await sf.run({ ...data, ...merged });
    const ol = await sl.run({ ...data, ...base, ...adapters });
    expect(Number(ol["loss"]!.data[0])).toBeCloseTo(Number(of["loss"]!.data[0]), 11);
    let worst = 0;
    for (const l of linears) {
      const gw = of[full.gradients.get(l.base)!]!.data as Float64Array;
      const a = adapters[l.a]!.data;
      const b = adapters[l.b]!.data;
      const ga = ol[lo.gradients.get(l.a)!]!.data as Float64Array;
      const gb = ol[lo.gradients.get(l.b)!]!.data as Float64Array;
      const r = lora.rank;
      for (let k = 0; k < r; k++) {
        for (let j = 0; j < l.in; j++) {
          let want = 0;
          for (let i = 0; i < l.out; i++) want += s * b[i * r + k]! * gw[i * l.in + j]!;
          worst = Math.max(worst, Math.abs(want - ga[k * l.in + j]!) / Math.max(1e-4, Math.abs(want)));
        }
      }
      for (let i = 0; i < l.out; i++) {
        for (let k = 0; k < r; k++) {
          let want = 0;
          for (let j = 0; j < l.in; j++) want += s * gw[i * l.in + j]! * a[k * l.in + j]!;
          worst = Math.max(worst, Math.abs(want - gb[i * r + k]!) / Math.max(1e-4, Math.abs(want)));
        }
      }
    }
    expect(worst).toBeLessThan(1e-9);
    await sf.release();
    await sl.release();
  });

  it("LoRA adapter gradients match finite differences (float64) and dropout path builds", async () => {
    const c = tiny({ activation: "gelu_tanh" });
    const lora: LoraOptions = { rank: 2, alpha: 4, targetModules: ["k_proj", "up_proj"] };
    const lg = buildLossGraph(c, { mode: "lora", lora, dtype: "float64", batch: B, seq: T });
    const rng = createRng("lora-fd");
    const feeds: TensorMap = { ...batchFeeds(c, "float64", "data-5"), ...randomParams(c, "params-5") };
    for (const l of lg.loraInputs) feeds[l.name] = { dtype: "float64", dims: l.shape, data: Float64Array.from({ length: l.shape[0]! * l.shape[1]! }, () => 0.3 * rng.normal()) };
    // The alpha/r scale sits on the rank-r intermediate (one per adapted linear: 2 modules × 2 layers).
    expect(lg.model.graph.nodes.filter((n) => n.outputs.some((o) => o.startsWith("lora_scaled_")))).toHaveLength(4);
    const res = await checkGradients(lg.model, { wrt: lg.trainable, loss: lg.loss, feeds, maxElements: 8, eps: 1e-5 });
    expect(res.maxRelError, JSON.stringify(res.worst)).toBeLessThan(1e-5);
    const withDropout = buildTrainingGraph(c, { mode: "lora", lora: { ...lora, dropout: 0.1, dropoutSeed: 7 } });
    expect(withDropout.model.graph.nodes.filter((n) => n.op === "Dropout")).toHaveLength(4);
  });

  it("rejects bad LoRA settings with InvalidArgument", () => {
    const c = tiny({});
    expect(() => buildTrainingGraph(c, { mode: "lora", lora: { rank: 0, alpha: 1, targetModules: ["q_proj"] } })).toThrow(/rank/);
    expect(() => buildTrainingGraph(c, { mode: "lora", lora: { rank: 2, alpha: 1, targetModules: ["nothing"] } })).toThrow(/match no linear/);
  });
});
