import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelWorker } from "../../engine/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { saveTinyAdapter, saveTinyDecoder } from "./test-models.js";
import { createModelHolder } from "./model-holder.js";
import { loadDecoderModel, validateDecoderModel } from "./decoder-model.js";
import type { OpenDecoder } from "../../engine/index.js";

describe("loadDecoderModel", () => {
  const worker = createModelWorker({ name: "decoder-model-test" });
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "decoder-model-"));
    await saveTinyDecoder(join(dir, "base"), 1);
    await saveTinyAdapter(join(dir, "adapter"), join(dir, "base"), 1);
    await saveTinyAdapter(join(dir, "orphan"), join(dir, "missing-base"), 2);
    await saveTinyAdapter(join(dir, "from-registry"), "main@4", 3);
  });
  afterAll(async () => {
    await worker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves a LoRA adapter merged into its base, named by the adapter weights' digest", async () => {
    const holder = createModelHolder<OpenDecoder>({ name: "t", validate: validateDecoderModel });
    const prompt = ["12+34="];
    const opts = { maxNewTokens: 6, greedy: true, stopTokens: [] as number[], addBos: true };
    await holder.swap(() => loadDecoderModel(worker, join(dir, "base")));
    const baseVersion = holder.version;
    const baseTokens = await holder.use(async (m) => (await m.generator.generate(prompt, opts))[0]!.tokens);
    await holder.swap(() => loadDecoderModel(worker, join(dir, "adapter")));
    expect(holder.version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(holder.version).not.toBe(baseVersion);
    const merged = await holder.use(async (m) => (await m.generator.generate(prompt, opts))[0]!.tokens);
    const logprobs = await holder.use(async (m) => (await m.generator.score(prompt, ["46"]))[0]!.total);
    const baseLogprobs = await (async () => {
      const b = await loadDecoderModel(worker, join(dir, "base"));
      try {
        return (await b.model.generator.score(prompt, ["46"]))[0]!.total;
      } finally {
        await b.release();
      }
    })();
    expect(merged).toHaveLength(baseTokens.length);
    expect(logprobs).not.toBeCloseTo(baseLogprobs, 6); // the adapter changed the model
    await holder.close();
  });

  it("refuses an adapter whose base is missing, or names a checkpoint without a registry", async () => {
    const e1 = await loadDecoderModel(worker, join(dir, "orphan")).catch((e: unknown) => e);
    expect((e1 as AutodidactError).code).toBe(Code.NotFound);
    const e2 = await loadDecoderModel(worker, join(dir, "from-registry")).catch((e: unknown) => e);
    expect((e2 as AutodidactError).code).toBe(Code.FailedPrecondition);
    const fetched: string[] = [];
    const model = await loadDecoderModel(worker, join(dir, "from-registry"), "main@5", {
      fetcher: { materialize: async (lineage, version) => (fetched.push(`${lineage}@${version}`), join(dir, "base")) },
    });
    expect(fetched).toEqual(["main@4"]);
    expect(model.version).toBe("main@5");
    await model.release();
  });
});
