import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { serialize, validate } from "../graph/index.js";
import { createRng } from "../random.js";
import { createSession, type HostTensor, type ModelSession, type TensorMap } from "../runtime/index.js";
import {
  buildForwardGraph,
  buildServingGraph,
  createTransformerConfig,
  initParameters,
  loraParamNames,
  parameterCount,
  parameterSpecs,
  REFERENCE_CONFIG,
  type Parameters,
  type TransformerConfig,
} from "./index.js";

/** Parameters with large random values, so any wiring mistake changes the logits visibly. */
function loudParams(c: TransformerConfig, seed: number): Parameters {
  const p = initParameters(c, seed);
  const rng = createRng(`loud${seed}`);
  for (const t of Object.values(p)) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) + 0.25 * rng.normal();
  return p;
}

const i64 = (dims: number[], values: number[]): HostTensor => ({ dtype: "int64", dims, data: BigInt64Array.from(values.map(BigInt)) });

async function forwardLogits(c: TransformerConfig, params: Parameters, ids: number[][], seq: number | string = "seq"): Promise<Float32Array> {
  const fw = buildForwardGraph(c, { seq });
  validate(fw.model.graph);
  const s = await createSession(serialize(fw.model));
  const out = await s.run({ input_ids: i64([ids.length, ids[0]!.length], ids.flat()), ...params });
  await s.release();
  return out.logits!.data as Float32Array;
}

function emptyPast(c: TransformerConfig, batch: number): TensorMap {
  const feeds: TensorMap = {};
  const hd = c.hiddenSize / c.numHeads;
  for (let i = 0; i < c.numLayers; i++) {
    for (const kv of ["key", "value"]) feeds[`past_key_values.${i}.${kv}`] = { dtype: "float32", dims: [batch, c.numHeads, 0, hd], data: new Float32Array(0) };
  }
  return feeds;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const VARIANTS: Partial<TransformerConfig>[] = [
  { positional: "none", norm: "layernorm", activation: "gelu" },
  { positional: "learned", norm: "layernorm", activation: "gelu_tanh", bias: true },
  { positional: "rotary", norm: "rmsnorm", activation: "gelu", tieEmbeddings: true },
];

describe("transformer graphs", () => {
  it("config validation and parameter naming", () => {
    expect(() => createTransformerConfig({ vocabSize: 10, hiddenSize: 30, numHeads: 4 })).toThrow(AutodidactError);
    const c = createTransformerConfig({ vocabSize: 16 });
    const names = parameterSpecs(c).map((s) => s.name);
    expect(names).toContain("model.layers.3.self_attn.q_proj.weight");
    expect(names).toContain("model.layers.0.mlp.down_proj.weight");
    expect(names).toContain("lm_head.weight");
    // ~0.8M parameters for the reference model
    expect(parameterCount(REFERENCE_CONFIG)).toBeGreaterThan(700_000);
    expect(parameterCount(REFERENCE_CONFIG)).toBeLessThan(900_000);
    const a = initParameters(c, 1);
    const b = initParameters(c, 1);
    const d = initParameters(c, 2);
    expect(a["model.embed_tokens.weight"]!.data).toEqual(b["model.embed_tokens.weight"]!.data);
    expect(a["model.embed_tokens.weight"]!.data).not.toEqual(d["model.embed_tokens.weight"]!.data);
    expect(loraParamNames("model.layers.0.self_attn.q_proj.weight").a).toBe("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  });

  for (const variant of VARIANTS) {
    it(`serving logits equal forward logits; KV-cached decoding equals full forward (${JSON.stringify(variant)})`, async () => {
      const c = createTransformerConfig({ vocabSize: 13, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 24, maxPositions: 10, ...variant });
      const params = loudParams(c, 3);
      const ids = [
        [1, 5, 2, 7, 3, 9],
        [4, 4, 12, 0, 8, 6],
      ];
      const B = 2;
      const T = 6;
      const full = await forwardLogits(c, params, ids);
      const fixed = await forwardLogits(c, params, ids, T);
      expect(maxDiff(full, fixed)).toBeLessThan(1e-5);
      const fusedGraph = buildForwardGraph(c, { fused: true });
      expect(fusedGraph.model.graph.nodes.filter((n) => n.op === "LayerNormalization" || n.op === "Gelu").length).toBeGreaterThan(0);
      const fs = await createSession(serialize(fusedGraph.model));
      const fo = await fs.run({ input_ids: i64([B, T], ids.flat()), ...params });
      expect(maxDiff(fo.logits!.data as Float32Array, full)).toBeLessThan(1e-4);
      const serving = buildServingGraph(c, params);
      validate(serving.graph);
      const s: ModelSession = await createSession(serialize(serving));
      expect(s.inputs.map((i) => i.name).slice(0, 3)).toEqual(["input_ids", "attention_mask", "position_ids"]);
      const one = await s.run({
        input_ids: i64([B, T], ids.flat()),
        attention_mask: i64([B, T], new Array(B * T).fill(1)),
        position_ids: i64([B, T], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]),
        ...emptyPast(c, B),
      });
      expect(one.logits!.dims).toEqual([B, T, c.vocabSize]);
      expect(maxDiff(one.logits!.data as Float32Array, full)).toBeLessThan(1e-4);

      // Prefill 3 tokens, then one token at a time through the cache.
      const V = c.vocabSize;
      let past: TensorMap = emptyPast(c, B);
      const prefill = 3;
      const got = new Float32Array(B * T * V);
      for (let t = 0; t < T; ) {
        const n = t === 0 ? prefill : 1;
        const step = ids.flatMap((row) => row.slice(t, t + n));
        const out = await s.run({
          input_ids: i64([B, n], step),
          attention_mask: i64([B, t + n], new Array(B * (t + n)).fill(1)),
          position_ids: i64([B, n], ids.flatMap(() => Array.from({ length: n }, (_, k) => t + k))),
          ...past,
        });
        for (let bi = 0; bi < B; bi++) got.set((out.logits!.data as Float32Array).subarray(bi * n * V, (bi + 1) * n * V), (bi * T + t) * V);
        past = {};
        for (let i = 0; i < c.numLayers; i++) {
          past[`past_key_values.${i}.key`] = out[`present.${i}.key`]!;
          past[`past_key_values.${i}.value`] = out[`present.${i}.value`]!;
          expect(out[`present.${i}.key`]!.dims).toEqual([B, c.numHeads, t + n, c.hiddenSize / c.numHeads]);
        }
        t += n;
      }
      expect(maxDiff(got, full)).toBeLessThan(1e-4);
      await s.release();
    });
  }

  it("left padding: a padded row decodes exactly like the unpadded prompt (fused and composed attention)", async () => {
    const c = createTransformerConfig({ vocabSize: 13, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 24, maxPositions: 10, positional: "rotary" });
    const params = loudParams(c, 5);
    const prompt = [3, 1, 4];
    const alone = await forwardLogits(c, params, [prompt]);
    for (const fused of [true, false]) {
      const s = await createSession(serialize(buildServingGraph(c, params, { fused })));
      // Row 0: two pads then the prompt; row 1: a longer unrelated prompt.
      const out = await s.run({
        input_ids: i64([2, 5], [0, 0, ...prompt, 7, 7, 2, 8, 1]),
        attention_mask: i64([2, 5], [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]),
        position_ids: i64([2, 5], [0, 0, 0, 1, 2, 0, 1, 2, 3, 4]),
        ...emptyPast(c, 2),
      });
      const V = c.vocabSize;
      const row0 = (out.logits!.data as Float32Array).subarray(2 * V, 5 * V);
      expect(maxDiff(row0, alone)).toBeLessThan(1e-4);
      for (const v of out.logits!.data as Float32Array) expect(Number.isFinite(v)).toBe(true);
    }
  });

  it("float64 forward agrees with float32; LoRA inputs with zero B are a no-op and otherwise equal merged weights", async () => {
    const c = createTransformerConfig({ vocabSize: 9, numLayers: 1, hiddenSize: 8, numHeads: 2, intermediateSize: 16, maxPositions: 6 });
    const params = loudParams(c, 9);
    const ids = [[1, 2, 3, 4]];
    const base = await forwardLogits(c, params, ids);

    const f64 = buildForwardGraph(c, { dtype: "float64" });
    const s64 = await createSession(serialize(f64.model));
    const p64: TensorMap = {};
    for (const [k, v] of Object.entries(params)) p64[k] = { dtype: "float64", dims: v.dims, data: Float64Array.from(v.data) };
    const o64 = await s64.run({ input_ids: i64([1, 4], ids.flat()), ...p64 });
    expect(o64.logits!.dtype).toBe("float64");
    expect(maxDiff(o64.logits!.data as Float64Array, base)).toBeLessThan(1e-4);

    const rank = 2;
    const alpha = 4;
    const lora = buildForwardGraph(c, { lora: { rank, alpha, targetModules: ["q_proj", "up_proj"] } });
    validate(lora.model.graph);
    expect(lora.loraInputs.map((l) => l.name)).toContain("base_model.model.model.layers.0.mlp.up_proj.lora_B.weight");
    const ls = await createSession(serialize(lora.model));
    const rng = createRng("lora");
    const adapters: TensorMap = {};
    const zeroB: TensorMap = {};
    for (const l of lora.loraInputs) {
      const n = l.shape[0]! * l.shape[1]!;
      const data = new Float32Array(n).map(() => 0.3 * rng.normal());
      adapters[l.name] = { dtype: "float32", dims: l.shape, data };
      zeroB[l.name] = { dtype: "float32", dims: l.shape, data: l.which === "A" ? data : new Float32Array(n) };
    }
    const noop = await ls.run({ input_ids: i64([1, 4], ids.flat()), ...params, ...zeroB });
    expect(maxDiff(noop.logits!.data as Float32Array, base)).toBeLessThan(1e-6);
    const adapted = await ls.run({ input_ids: i64([1, 4], ids.flat()), ...params, ...adapters });
    expect(maxDiff(adapted.logits!.data as Float32Array, base)).toBeGreaterThan(1e-3);
    // Merge: W' = W + (alpha/r)·B·A
    const merged: Parameters = { ...params };
    for (const l of lora.loraInputs.filter((x) => x.which === "A")) {
      const A = adapters[l.name]!.data as Float32Array;
      const Bm = adapters[loraParamNames(l.base).b]!.data as Float32Array;
      const W = params[l.base]!;
      const [out, inp] = W.dims as [number, number];
      const data = Float32Array.from(W.data);
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inp; i++) {
          let s = 0;
          for (let r = 0; r < rank; r++) s += (Bm[o * rank + r] as number) * (A[r * inp + i] as number);
          data[o * inp + i] = (data[o * inp + i] as number) + (alpha / rank) * s;
        }
      merged[l.base] = { dtype: "float32", dims: W.dims, data };
    }
    const mergedLogits = await forwardLogits(c, merged, ids);
    expect(maxDiff(adapted.logits!.data as Float32Array, mergedLogits)).toBeLessThan(1e-4);
  });

  it("serving graph refuses weights that do not match the config", () => {
    const c = createTransformerConfig({ vocabSize: 9, numLayers: 1, hiddenSize: 8, numHeads: 2, intermediateSize: 16, maxPositions: 6 });
    const params = initParameters(c, 1);
    const bad = { ...params, "lm_head.weight": { dtype: "float32" as const, dims: [9, 4], data: new Float32Array(36) } };
    try {
      buildServingGraph(c, bad);
      expect.unreachable();
    } catch (e) {
      expect((e as AutodidactError).code).toBe(Code.InvalidArgument);
      expect((e as Error).message).toContain("lm_head.weight");
    }
  });
});
