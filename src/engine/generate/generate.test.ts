import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { serialize } from "../graph/index.js";
import { buildForwardGraph, buildServingGraph, createTransformerConfig, initParameters, type Parameters, type TransformerConfig } from "../model/index.js";
import { createRng } from "../random.js";
import { createModelWorker, createSession, type ModelSession, type ModelWorker, type RemoteSession } from "../runtime/index.js";
import { createCharTokenizer } from "../tokenizer/index.js";
import { createSampler, createTextGenerator, decodeBatch, decoderSignature, scoreBatch } from "./index.js";

const tokenizer = createCharTokenizer({ alphabet: "0123456789+=" });
const config: TransformerConfig = createTransformerConfig({
  vocabSize: tokenizer.vocabSize,
  numLayers: 2,
  hiddenSize: 16,
  numHeads: 2,
  intermediateSize: 32,
  maxPositions: 24,
  positional: "learned",
});

function loudParams(c: TransformerConfig): Parameters {
  const p = initParameters(c, 11);
  const rng = createRng("gen-loud");
  for (const t of Object.values(p)) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) + 0.4 * rng.normal();
  return p;
}

const params = loudParams(config);
let serving: ModelSession;
let forward: ModelSession;
let worker: ModelWorker;
let remote: RemoteSession;

beforeAll(async () => {
  const bytes = serialize(buildServingGraph(config, params));
  serving = await createSession(bytes);
  forward = await createSession(serialize(buildForwardGraph(config).model));
  worker = createModelWorker();
  remote = await worker.load(bytes);
});
afterAll(async () => {
  await worker.close();
});

/** Greedy continuation by recomputing the full forward pass each step (no cache, no padding). */
async function naiveGreedy(prompt: number[], n: number): Promise<{ tokens: number[]; logprobs: number[] }> {
  const seq = [...prompt];
  const tokens: number[] = [];
  const logprobs: number[] = [];
  for (let i = 0; i < n; i++) {
    const out = await forward.run({ input_ids: { dtype: "int64", dims: [1, seq.length], data: BigInt64Array.from(seq.map(BigInt)) }, ...params });
    const V = config.vocabSize;
    const last = (out.logits!.data as Float32Array).subarray((seq.length - 1) * V, seq.length * V);
    let arg = 0;
    for (let v = 1; v < V; v++) if (last[v]! > last[arg]!) arg = v;
    const max = last[arg]!;
    const lse = max + Math.log(Array.from(last).reduce((s, x) => s + Math.exp(x - max), 0));
    tokens.push(arg);
    logprobs.push(last[arg]! - lse);
    seq.push(arg);
  }
  return { tokens, logprobs };
}

describe("generation", () => {
  it("reads the decoder signature from session metadata", () => {
    const sig = decoderSignature(serving.inputs, serving.outputs);
    expect(sig).toMatchObject({ numLayers: 2, numKvHeads: 2, headDim: 8, hasPositionIds: true, hasAttentionMask: true });
    expect(() => decoderSignature(forward.inputs, forward.outputs)).toThrow(/KV cache/);
  });

  it("batched greedy decoding with left padding equals naive full-forward greedy, with matching log-probs", async () => {
    const prompts = [[4, 5, 13], [1, 7, 7, 3, 14, 9, 9], [10]];
    const rows = await decodeBatch(serving, { prompts, maxNewTokens: 6, padId: 0, greedy: true });
    for (let i = 0; i < prompts.length; i++) {
      const want = await naiveGreedy(prompts[i]!, 6);
      expect(rows[i]!.tokens).toEqual(want.tokens);
      rows[i]!.logprobs.forEach((lp, k) => expect(lp).toBeCloseTo(want.logprobs[k]!, 4));
      expect(rows[i]!.finishReason).toBe("length");
    }
  });

  it("the buffer-layout decoding graph generates and scores exactly like the HF-signature graph", async () => {
    const fast = await createSession(serialize(buildServingGraph(config, params, { kvLayout: "buffer" })));
    const sig = decoderSignature(fast.inputs, fast.outputs);
    expect(sig.kvLayout).toBe("buffer");
    expect(sig).toMatchObject({ numLayers: 2, numKvHeads: 2, headDim: 8 });
    const prompts = [[4, 5, 13], [1, 7, 7, 3, 14, 9, 9], [10]];
    for (const opts of [{ greedy: true }, { temperature: 1.3, topP: 0.9, seed: 3 }]) {
      const a = await decodeBatch(serving, { prompts, maxNewTokens: 9, padId: 0, ...opts });
      const b = await decodeBatch(fast, { prompts, maxNewTokens: 9, padId: 0, ...opts });
      expect(b.map((r) => r.tokens)).toEqual(a.map((r) => r.tokens));
      b.forEach((r, i) => r.logprobs.forEach((lp, k) => expect(lp).toBeCloseTo(a[i]!.logprobs[k]!, 4)));
    }
    // A row that stops early keeps being fed padding while the others decode (the buffer loop
    // rewrites its step tensors in place): the rows still match the HF graph token for token.
    const greedy = await decodeBatch(serving, { prompts, maxNewTokens: 9, padId: 0, greedy: true });
    const stopTokens = [greedy[1]!.tokens[2]!];
    const a = await decodeBatch(serving, { prompts, maxNewTokens: 9, padId: 0, greedy: true, stopTokens });
    const b = await decodeBatch(fast, { prompts, maxNewTokens: 9, padId: 0, greedy: true, stopTokens });
    expect(a[1]!.finishReason).toBe("stop");
    expect(b.map((r) => [r.tokens, r.finishReason])).toEqual(a.map((r) => [r.tokens, r.finishReason]));
    b.forEach((r, i) => r.logprobs.forEach((lp, k) => expect(lp).toBeCloseTo(a[i]!.logprobs[k]!, 4)));
    const conts = [[3, 3], [], [5, 6, 7]];
    const sa = await scoreBatch(serving, { prompts, continuations: conts, padId: 0 });
    const sb = await scoreBatch(fast, { prompts, continuations: conts, padId: 0 });
    sb.forEach((r, i) => {
      expect(r.logprobs).toHaveLength(conts[i]!.length);
      r.logprobs.forEach((lp, k) => expect(lp).toBeCloseTo(sa[i]!.logprobs[k]!, 4));
    });
    await fast.release();
  });

  it("stops at stop tokens and caps to the model context", async () => {
    const prompt = [4, 5, 13];
    const want = await naiveGreedy(prompt, 3);
    const rows = await decodeBatch(serving, { prompts: [prompt], maxNewTokens: 10, padId: 0, greedy: true, stopTokens: [want.tokens[1]!] });
    const firstStop = want.tokens.indexOf(want.tokens[1]!);
    expect(rows[0]!.tokens).toEqual(want.tokens.slice(0, firstStop + 1));
    expect(rows[0]!.finishReason).toBe("stop");
    const capped = await decodeBatch(serving, { prompts: [prompt], maxNewTokens: 50, padId: 0, greedy: true, maxLength: 8 });
    expect(capped[0]!.tokens.length).toBe(5);
    const err = await decodeBatch(serving, { prompts: [[]], maxNewTokens: 1, padId: 0 }).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
  });

  it("samples in a worker: same seed → same output, other seed → other output; top-k 1 = greedy", async () => {
    const gen = createTextGenerator({ host: worker, session: remote, tokenizer, maxLength: config.maxPositions });
    const prompts = ["12+3=", "7+7=", "1"];
    const a = await gen.generate(prompts, { maxNewTokens: 12, temperature: 1.5, seed: 42, stopTokens: [] });
    const b = await gen.generate(prompts, { maxNewTokens: 12, temperature: 1.5, seed: 42, stopTokens: [] });
    const c = await gen.generate(prompts, { maxNewTokens: 12, temperature: 1.5, seed: 43, stopTokens: [] });
    expect(b.map((g) => g.tokens)).toEqual(a.map((g) => g.tokens));
    expect(c.map((g) => g.tokens)).not.toEqual(a.map((g) => g.tokens));
    expect(a[0]!.text).toBe(tokenizer.decode(a[0]!.tokens, { skipSpecial: true }));
    for (const g of a) for (const lp of g.logprobs) expect(lp).toBeLessThanOrEqual(0);
    const k1 = await gen.generate(["12+3="], { maxNewTokens: 5, topK: 1, seed: 9, stopTokens: [] });
    const greedy = await naiveGreedy(tokenizer.encode("12+3="), 5);
    expect(k1[0]!.tokens).toEqual(greedy.tokens);
    // Teacher-forced scoring of the sampled tokens reproduces the log-probs reported while sampling.
    const scored = await gen.score(prompts, a.map((g) => g.tokens));
    scored.forEach((row, i) => {
      expect(row.logprobs).toHaveLength(a[i]!.tokens.length);
      row.logprobs.forEach((lp, k) => expect(lp).toBeCloseTo(a[i]!.logprobs[k]!, 4));
      expect(row.total).toBeCloseTo(a[i]!.logprobs.reduce((x, y) => x + y, 0), 3);
    });
    const bad = await gen.generate(["1"], { maxNewTokens: 2, topP: 0 }).catch((e: unknown) => e);
    expect((bad as AutodidactError).code).toBe(Code.InvalidArgument);
  });
});

describe("sampler", () => {
  const logits = Float32Array.of(2, 1, 0, -1, 0.5);
  const softmax = (() => {
    const e = Array.from(logits, (x) => Math.exp(x));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  })();

  it("matches the softmax distribution at temperature 1 and reports unmodified log-probs", () => {
    const sampler = createSampler(5, { temperature: 1 });
    const rng = createRng("freq");
    const counts = new Array(5).fill(0);
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const { id, logprob } = sampler.sample(logits, 0, rng);
      counts[id]++;
      expect(logprob).toBeCloseTo(Math.log(softmax[id]!), 5);
    }
    counts.forEach((c, i) => expect(Math.abs(c / N - softmax[i]!)).toBeLessThan(0.015));
  });

  it("restricts to top-k and to the top-p nucleus; log-probs stay unmodified", () => {
    const rng = createRng("filter");
    const k2 = createSampler(5, { topK: 2, temperature: 3 });
    const p = createSampler(5, { topP: 0.6 });
    const seenK = new Set<number>();
    const seenP = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      seenK.add(k2.sample(logits, 0, rng).id);
      const s = p.sample(logits, 0, rng);
      seenP.add(s.id);
      expect(s.logprob).toBeCloseTo(Math.log(softmax[s.id]!), 5);
    }
    expect([...seenK].sort()).toEqual([0, 1]);
    const nan = createSampler(3, { greedy: true });
    expect(() => nan.sample(Float32Array.of(0, Number.NaN, 1), 0, rng)).toThrow(/non-finite/);
    // softmax ≈ [0.53, 0.20, 0.07, 0.03, 0.12]: the 0.6 nucleus is {0, 1}.
    expect([...seenP].sort()).toEqual([0, 1]);
  });
});
