// A pack with a subword tokenizer.json that has no BOS token (like Qwen's): the model is sized from the
// tokenizer, and over real gRPC (real nats-server) the generator serves Generate and a model critic and a
// likelihood critic serve Score — where every one of them used to fail with "tokenizer has no bos token".
import { create } from "@bufbuild/protobuf";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../src/platform/bus/index.js";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { SampleSchema, type Sample } from "../src/gen/autodidact/v1/sample_pb.js";
import { startService, type RunningService, type ServiceConfig, type ServiceSpec } from "../src/platform/host/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import type { OptionSpecs } from "../src/platform/config/index.js";
import { createTaskTokenizer, getTaskPack, loadTaskModules } from "../src/domain/tasks/index.js";
import { createTransformerConfig, initParameters, saveModel } from "../src/engine/index.js";
import { criticOptions, criticService } from "../services/critic/index.js";
import { generatorOptions, generatorService } from "../services/generator/index.js";

/** A character-level BPE tokenizer.json with pad and eos but no bos token. */
function boslessTokenizerJson(): Record<string, unknown> {
  const chars = [..."abcdefghijklmnopqrstuvwxyz="];
  const vocab: Record<string, number> = { "<pad>": 0, "</s>": 1 };
  chars.forEach((c, i) => (vocab[c] = i + 2));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<pad>"), special(1, "</s>")],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

describe("a tokenizer without a BOS token", () => {
  let nats: NatsServerProcess;
  let dir: string;
  const running: RunningService[] = [];

  async function start<T extends OptionSpecs>(spec: ServiceSpec<T>, options: T, args: string[]): Promise<RunningService> {
    const packArgs = ["--task-module-dir", dir, "--task-module", join(dir, "rev"), "--task", "rev-bpe"];
    const parsed = defineOptions({ ...serviceOptions, ...options }).parse(["--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn", ...packArgs, ...args], {});
    const s = await startService(spec, parsed.values as unknown as ServiceConfig<T>);
    running.push(s);
    return s;
  }

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), "bosless-"));
    const pack = join(dir, "rev");
    await mkdir(pack);
    const rows = (words: string[], labelled: boolean): string => words.map((w) => JSON.stringify({ prompt: `${w}=`, ...(labelled ? { answer: [...w].reverse().join("") } : {}) })).join("\n");
    await writeFile(join(pack, "anchor.jsonl"), rows(["abc", "dog", "cat", "sun"], true));
    await writeFile(join(pack, "test.jsonl"), rows(["map", "pen"], true));
    await writeFile(join(pack, "pool.jsonl"), rows(["zip", "hat", "cup"], false));
    await writeFile(join(pack, "tokenizer.json"), JSON.stringify(boslessTokenizerJson()));
    await writeFile(
      join(pack, "pack.json"),
      JSON.stringify({ name: "rev-bpe", version: "0.1.0", splits: { anchor: "anchor.jsonl", test: "test.jsonl", pool: "pool.jsonl" }, tokenizer: { file: "tokenizer.json" } }),
    );
    await loadTaskModules({ modules: [pack], dirs: [dir] });
    // The model is sized from the pack's tokenizer; saved with it, so every service reads the same one.
    const tokenizer = createTaskTokenizer(getTaskPack("rev-bpe"));
    expect(tokenizer.bosId).toBeNull();
    const config = createTransformerConfig({ vocabSize: tokenizer.vocabSize, numLayers: 1, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 32, positional: "rotary" });
    await saveModel(join(dir, "model"), { config, params: initParameters(config, 5), tokenizer });
  }, 120_000);

  afterAll(async () => {
    for (const s of running) await s.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves Generate and Score over gRPC", async () => {
    const pack = getTaskPack("rev-bpe");
    expect(pack.tokenizer.kind).toBe("hf");
    expect(pack.tokenizer.special).toEqual({ pad: "<pad>", bos: "", eos: "</s>" });
    const generator = await start(generatorService, generatorOptions, ["--model", join(dir, "model"), "--difficulty", "4", "--batch-size", "2"]);
    const gen = createClient(GeneratorService, generator.server.address);
    const samples: Sample[] = [];
    for await (const s of gen.generate({ count: 3, seed: 9n, temperature: 1 })) samples.push(s);
    gen.close();
    expect(samples).toHaveLength(3);
    for (const s of samples) {
      expect(["zip=", "hat=", "cup="]).toContain(s.prompt);
      expect(s.tokenLogprobs.length).toBeGreaterThan(0);
      expect(s.tokenLogprobs.every(Number.isFinite)).toBe(true);
      expect(s.taskIdentity?.name).toBe("rev-bpe");
    }

    const model = await start(criticService, criticOptions, ["--kind", "model", "--model", join(dir, "model"), "--critic-id", "m"]);
    const likelihood = await start(criticService, criticOptions, ["--kind", "likelihood", "--threshold", "-1000", "--model", join(dir, "model"), "--critic-id", "lk"]);
    for (const service of [model, likelihood]) {
      const critic = createClient(CriticService, service.server.address);
      const verdict = await critic.score({ sample: create(SampleSchema, { ...samples[0]!, id: `v-${service.instanceId}` }) });
      critic.close();
      expect(verdict.criticModelVersion).not.toBe("");
      expect(Number.isFinite(verdict.score)).toBe(true);
      expect(verdict.reason).not.toMatch(/bos|error|fail/i);
    }
  }, 180_000);
});
