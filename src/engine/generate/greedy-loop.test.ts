import { afterAll, describe, expect, it } from "vitest";
import { serialize, validate } from "../graph/index.js";
import { buildGreedyDecodingGraph, buildServingGraph, createTransformerConfig, initParameters, type Parameters, type TransformerConfig } from "../model/index.js";
import { createRng } from "../random.js";
import { createModelWorker, createSession, type ModelSession, type SessionHost } from "../runtime/index.js";
import { createCharTokenizer } from "../tokenizer/index.js";
import { decodeBatch, openWeights, type DecodedRow, type DecodeRequest } from "./index.js";

const base = { vocabSize: 12, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 24 } as const;
const configs: Record<string, TransformerConfig> = {
  none: createTransformerConfig({ ...base, positional: "none" }),
  learned: createTransformerConfig({ ...base, positional: "learned" }),
  rotary: createTransformerConfig({ ...base, positional: "rotary", norm: "rmsnorm" }),
};

/** Random weights loud enough that greedy continuations vary between prompts. */
function loudParams(c: TransformerConfig, seed: string): Parameters {
  const p = initParameters(c, seed);
  const rng = createRng(`loop-${seed}`);
  for (const t of Object.values(p)) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) + 0.5 * rng.normal();
  return p;
}

const opened: ModelSession[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.release()));
});

async function sessions(c: TransformerConfig, params: Parameters): Promise<{ step: ModelSession; loop: ModelSession }> {
  const model = buildGreedyDecodingGraph(c, params);
  validate(model.graph);
  const step = await createSession(serialize(buildServingGraph(c, params, { kvLayout: "buffer" })));
  const loop = await createSession(serialize(model));
  opened.push(step, loop);
  return { step, loop };
}

function expectSame(loop: DecodedRow[], old: DecodedRow[]): void {
  expect(loop.map((r) => r.tokens)).toEqual(old.map((r) => r.tokens));
  expect(loop.map((r) => r.finishReason)).toEqual(old.map((r) => r.finishReason));
  loop.forEach((r, b) => {
    expect(r.logprobs).toHaveLength(old[b]!.logprobs.length);
    r.logprobs.forEach((lp, t) => expect(Math.abs(lp - old[b]!.logprobs[t]!)).toBeLessThan(1e-5));
  });
}

/**
 * A stop token that row `early` emits after its first token while row `late` never emits it in
 * `n` steps (so one row stops early and the other runs to max length); null if none exists.
 */
function splittingStop(free: DecodedRow[], early: number, late: number): number | null {
  const seen = new Set(free[late]!.tokens);
  for (const t of free[early]!.tokens.slice(1, -1)) if (!seen.has(t) && free[early]!.tokens.indexOf(t) > 0) return t;
  return null;
}

describe("greedy decoding in one run (ONNX Loop)", () => {
  for (const [name, c] of Object.entries(configs)) {
    it(`${name} positions: same tokens, finish reasons and log-probs as step-by-step decoding, batch 1 and a padded batch`, async () => {
      const params = loudParams(c, name);
      const { step, loop } = await sessions(c, params);
      const prompts = [[1, 2, 3, 4, 5], [7, 3], [0, 9, 4], [11]];
      const n = 12;
      const free = await decodeBatch(step, { prompts, maxNewTokens: n, greedy: true, padId: 0 });
      // Find a pair of rows and a stop token such that one stops early and one hits max length.
      let pick: { stop: number; early: number; late: number } | null = null;
      for (let e = 0; e < prompts.length && !pick; e++) {
        for (let l = 0; l < prompts.length && !pick; l++) {
          if (e === l) continue;
          const s = splittingStop(free, e, l);
          if (s !== null) pick = { stop: s, early: e, late: l };
        }
      }
      expect(pick).not.toBeNull();
      const { stop, early, late } = pick!;
      for (const batch of [[early], [late], prompts.map((_, i) => i)]) {
        const req: DecodeRequest = { prompts: batch.map((i) => prompts[i]!), maxNewTokens: n, stopTokens: [stop, 99], greedy: true, padId: 0 };
        const old = await decodeBatch(step, req);
        const viaLoop = await decodeBatch(step, req, { greedyLoop: loop });
        expectSame(viaLoop, old);
      }
      const all = await decodeBatch(step, { prompts, maxNewTokens: n, stopTokens: [stop], temperature: 0, padId: 0 }, { greedyLoop: loop });
      expect(all[early]!.finishReason).toBe("stop");
      expect(all[early]!.tokens.length).toBeLessThan(n);
      expect(all[late]!.finishReason).toBe("length");
      expect(all[late]!.tokens).toHaveLength(n);
    });
  }

  it("handles one new token, every row stopping at its first token, and the context cap like the step path", async () => {
    const c = configs["learned"]!;
    const { step, loop } = await sessions(c, loudParams(c, "edge"));
    const prompts = [[1, 2, 3], [4], [5, 6]];
    const free = await decodeBatch(step, { prompts, maxNewTokens: 3, greedy: true, padId: 0 });
    const firsts = free.map((r) => r.tokens[0]!);
    const cases: DecodeRequest[] = [
      { prompts, maxNewTokens: 1, greedy: true, padId: 0 },
      { prompts, maxNewTokens: 6, stopTokens: firsts, greedy: true, padId: 0 },
      { prompts, maxNewTokens: 50, greedy: true, padId: 0, maxLength: c.maxPositions },
    ];
    for (const req of cases) expectSame(await decodeBatch(step, req, { greedyLoop: loop }), await decodeBatch(step, req));
    const capped = await decodeBatch(step, cases[2]!, { greedyLoop: loop });
    expect(capped[0]!.tokens).toHaveLength(c.maxPositions - 3);
  });

  it("sampling requests keep the per-token path (same seeded samples with or without the loop graph)", async () => {
    const c = configs["none"]!;
    const { step, loop } = await sessions(c, loudParams(c, "sample"));
    const req: DecodeRequest = { prompts: [[1, 2], [3]], maxNewTokens: 8, temperature: 1.3, seed: 5, padId: 0 };
    const a = await decodeBatch(step, req, { greedyLoop: loop });
    expect(a).toEqual(await decodeBatch(step, req));
    const greedy = await decodeBatch(step, { ...req, temperature: 0 }, { greedyLoop: loop });
    expect(greedy.map((r) => r.tokens)).not.toEqual(a.map((r) => r.tokens));
  });

  it("openWeights generators decode greedy requests through the loop graph in the worker, with the step path's results", async () => {
    const tokenizer = createCharTokenizer({ alphabet: "0123456789+=" });
    const c = createTransformerConfig({ ...base, vocabSize: tokenizer.vocabSize, positional: "learned" });
    const params = loudParams(c, "worker");
    const worker = createModelWorker();
    try {
      const dec = await openWeights(worker, { config: c, params, tokenizer });
      const out = await dec.generator.generate(["12+", "7="], { maxNewTokens: 10, greedy: true });
      const { step } = await sessions(c, params);
      const old = await decodeBatch(step, {
        prompts: out.map((g) => [...g.promptIds]),
        maxNewTokens: 10,
        stopTokens: tokenizer.eosId !== null ? [tokenizer.eosId] : [],
        greedy: true,
        padId: tokenizer.padId ?? tokenizer.eosId ?? 0,
        maxLength: c.maxPositions,
      });
      expectSame(out.map((g) => ({ tokens: [...g.tokens], logprobs: [...g.logprobs], finishReason: g.finishReason })), old);
      await dec.session.release();
      // Both sessions are gone from the worker after the one release.
      await expect(dec.generator.generate(["1"], { maxNewTokens: 2, greedy: true })).rejects.toThrow(/no session/);
    } finally {
      await worker.close();
    }
  });

  it("loads the loop graph only on the first greedy request: sampling-only generators never load it", async () => {
    const tokenizer = createCharTokenizer({ alphabet: "0123456789+=" });
    const c = createTransformerConfig({ ...base, vocabSize: tokenizer.vocabSize, positional: "none" });
    const worker = createModelWorker();
    const loads: number[] = [];
    // The real worker, counting the models loaded into it (inputs per model tell the two graphs apart).
    const host: SessionHost = {
      load: async (m, o, id) => {
        const s = await worker.load(m, o, id);
        loads.push(s.inputs.length);
        return s;
      },
      call: (m, fn, args, t) => worker.call(m, fn, args, t),
      close: () => worker.close(),
    };
    try {
      const dec = await openWeights(host, { config: c, params: loudParams(c, "lazy"), tokenizer });
      expect(loads).toHaveLength(1);
      await dec.generator.generate(["12+"], { maxNewTokens: 4, temperature: 1, seed: 1 });
      expect(loads).toHaveLength(1);
      // Two greedy requests at once share one load; later ones reuse it.
      const [a, b] = await Promise.all([
        dec.generator.generate(["12+"], { maxNewTokens: 6, greedy: true }),
        dec.generator.generate(["7="], { maxNewTokens: 6, temperature: 0 }),
      ]);
      expect(loads).toHaveLength(2);
      expect(loads[1]).not.toBe(loads[0]);
      const again = await dec.generator.generate(["12+"], { maxNewTokens: 6, greedy: true });
      expect(loads).toHaveLength(2);
      expect(again[0]!.tokens).toEqual(a![0]!.tokens);
      expect(b![0]!.tokens.length).toBeGreaterThan(0);
      await dec.session.release();
      await expect(dec.generator.generate(["1"], { maxNewTokens: 2, greedy: true })).rejects.toThrow(/no session/);
      expect(loads).toHaveLength(2);
    } finally {
      await worker.close();
    }
  });
});
