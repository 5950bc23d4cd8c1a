import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { expectedAdapterShapes, saveLoraAdapter, saveModel } from "../checkpoint/index.js";
import { mergeLora } from "../train/lora.js";
import { serialize } from "../graph/index.js";
import { serializeWithExternalData } from "../graph/external-data.js";
import { buildServingGraph, createTransformerConfig, initParameters } from "../model/index.js";
import { createRng } from "../random.js";
import { createModelWorker } from "../runtime/index.js";
import { createCharTokenizer } from "../tokenizer/index.js";
import { openDecoder, openWeights } from "./index.js";

const dirs: string[] = [];
const worker = createModelWorker();
afterAll(async () => {
  await worker.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "dec-"));
  dirs.push(d);
  return d;
}

describe("openDecoder", () => {
  const tokenizer = createCharTokenizer({ alphabet: "0123456789+=" });
  const config = createTransformerConfig({ vocabSize: 15, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 16, positional: "rotary" });
  const params = initParameters(config, 2);
  const rng = createRng("open");
  for (const t of Object.values(params)) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) + 0.3 * rng.normal();

  it("opens our folder and an optimum-style folder the same way, with the same generations", async () => {
    const ours = await tempDir();
    await saveModel(ours, { config, params, tokenizer });
    const external = await tempDir();
    // Optimum layout: model.onnx at the root, a plain HF config without our section, tokenizer.json.
    await writeFile(join(external, "model.onnx"), serialize(buildServingGraph(config, params)));
    await writeFile(join(external, "config.json"), JSON.stringify({ model_type: "llama", num_hidden_layers: 2, max_position_embeddings: 16 }));
    await writeFile(join(external, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()));

    const a = await openDecoder(worker, ours);
    const b = await openDecoder(worker, external);
    expect(a.folder?.source).toBe("autodidact");
    expect(a.signature.kvLayout).toBe("buffer");
    expect(b.folder?.source).toBe("external");
    expect(b.signature.kvLayout).toBe("hf");
    expect(b.signature).toMatchObject({ numLayers: 2, numKvHeads: 2, headDim: 8 });
    const opts = { maxNewTokens: 8, temperature: 0.9, seed: 5, stopTokens: [] };
    const ga = await a.generator.generate(["12+34=", "9"], opts);
    const gb = await b.generator.generate(["12+34=", "9"], opts);
    expect(gb.map((g) => g.tokens)).toEqual(ga.map((g) => g.tokens));
    expect(ga[0]!.tokens).toHaveLength(8);
    // The context cap comes from max_position_embeddings: 6 prompt tokens + at most 10 new.
    const long = await b.generator.generate(["12+34="], { maxNewTokens: 100, greedy: true, stopTokens: [] });
    expect(long[0]!.tokens).toHaveLength(10);
  });

  it("opens an optimum-style folder whose weights are external data (model.onnx + model.onnx_data)", async () => {
    const ours = await tempDir();
    await saveModel(ours, { config, params, tokenizer });
    const external = await tempDir();
    const { model, data } = serializeWithExternalData(buildServingGraph(config, params), "model.onnx_data");
    expect(model.length).toBeLessThan(serialize(buildServingGraph(config, params)).length - data.length / 2);
    await writeFile(join(external, "model.onnx"), model);
    await writeFile(join(external, "model.onnx_data"), data);
    await writeFile(join(external, "config.json"), JSON.stringify({ model_type: "llama", num_hidden_layers: 2, max_position_embeddings: 16 }));
    await writeFile(join(external, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()));
    const a = await openDecoder(worker, ours);
    const b = await openDecoder(worker, external);
    expect(b.folder?.externalDataDir).toBe(external);
    const opts = { maxNewTokens: 8, temperature: 0.9, seed: 5, stopTokens: [] };
    const ga = await a.generator.generate(["12+34=", "9"], opts);
    const gb = await b.generator.generate(["12+34=", "9"], opts);
    expect(gb.map((g) => g.tokens)).toEqual(ga.map((g) => g.tokens));
  });

  it("merges a PEFT adapter when opening, like serving the merged weights directly", async () => {
    const ours = await tempDir();
    await saveModel(ours, { config, params, tokenizer });
    const adapterDir = await tempDir();
    const rank = 2;
    const targets = ["q_proj", "up_proj"];
    const adapters = Object.fromEntries(
      [...expectedAdapterShapes(config, rank, targets)].map(([name, shape]) => [
        name,
        { dtype: "float32" as const, dims: [...shape], data: new Float32Array(shape[0]! * shape[1]!).map(() => 0.5 * rng.normal()) },
      ]),
    );
    await saveLoraAdapter(adapterDir, { adapters, rank, alpha: 4, targetModules: targets, baseModel: ours });
    const adapted = await openDecoder(worker, ours, { adapter: adapterDir });
    const merged = await openWeights(worker, { config, params: mergeLora(config, params, adapters, { rank, alpha: 4, targetModules: targets }), tokenizer });
    const plain = await openDecoder(worker, ours);
    const opts = { maxNewTokens: 10, greedy: true, stopTokens: [] };
    const prompts = ["12+34=", "5+5=", "777"];
    const ga = await adapted.generator.generate(prompts, opts);
    const gm = await merged.generator.generate(prompts, opts);
    const gp = await plain.generator.generate(prompts, opts);
    expect(ga.map((g) => g.tokens)).toEqual(gm.map((g) => g.tokens));
    expect(ga.map((g) => g.logprobs)).not.toEqual(gp.map((g) => g.logprobs));
    const external = await tempDir();
    await writeFile(join(external, "model.onnx"), serialize(buildServingGraph(config, params)));
    await writeFile(join(external, "config.json"), JSON.stringify({ model_type: "llama" }));
    await writeFile(join(external, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()));
    const e = await openDecoder(worker, external, { adapter: adapterDir }).catch((x: unknown) => x);
    expect((e as AutodidactError).code).toBe(Code.FailedPrecondition);
  });

  it("rejects folders whose config disagrees with the ONNX graph, or that hold no decoder", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "model.onnx"), serialize(buildServingGraph(config, params)));
    await writeFile(join(dir, "config.json"), JSON.stringify({ model_type: "llama", num_hidden_layers: 3 }));
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()));
    const e = await openDecoder(worker, dir).catch((x: unknown) => x);
    expect((e as AutodidactError).code).toBe(Code.InvalidArgument);
    expect((e as Error).message).toContain("3 layers");
    const empty = await tempDir();
    await writeFile(join(empty, "config.json"), "{}");
    const e2 = await openDecoder(worker, empty).catch((x: unknown) => x);
    expect((e2 as AutodidactError).code).toBe(Code.NotFound);
  });
});
