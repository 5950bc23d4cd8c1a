// SwapModel on an in-process critic: under continuous Score load no request fails or is lost and the
// verdicts' model version changes exactly once; a corrupt or wrong-signature model is refused with a
// clear status and the old model keeps answering.
import { create } from "@bufbuild/protobuf";
import { copyFile, cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../src/platform/bus/index.js";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { startService, type RunningService, type ServiceConfig } from "../src/platform/host/index.js";
import { createClient, type RpcClient } from "../src/platform/rpc/index.js";
import { criticOptions, criticService } from "../services/critic/index.js";
import { saveTinyClassifier, saveTinyDecoder } from "../src/domain/serving/test-models.js";

describe("critic SwapModel", () => {
  let nats: NatsServerProcess;
  let dir: string;
  let service: RunningService;
  let client: RpcClient<typeof CriticService>;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), "critic-swap-"));
    await saveTinyDecoder(join(dir, "a"), 1);
    await saveTinyDecoder(join(dir, "b"), 2);
    const parsed = defineOptions({ ...serviceOptions, ...criticOptions }).parse(
      ["--nats-url", nats.url, "--kind", "likelihood", "--threshold", "-100", "--model", join(dir, "a"), "--critic-id", "lk", "--grpc-host", "127.0.0.1", "--log-level", "warn"],
      {},
    );
    service = await startService(criticService, parsed.values as unknown as ServiceConfig<typeof criticOptions>);
    client = createClient(CriticService, service.server.address);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await service?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const sample = (i: number) => create(SampleSchema, { id: `s-${i}`, task: "addition", prompt: "21+43=", completion: "64" });

  it("swaps under continuous scoring load with zero failed requests and exactly one version change", async () => {
    const before = (await client.score({ sample: sample(0) })).criticModelVersion;
    expect(before).toMatch(/^sha256:/);
    let stop = false;
    let failures = 0;
    let n = 1;
    const loop = async (): Promise<string[]> => {
      const versions: string[] = [];
      while (!stop) {
        try {
          const v = await client.score({ sample: sample(n++) });
          versions.push(v.criticModelVersion);
        } catch {
          failures++;
        }
      }
      return versions;
    };
    const loops = [loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 300));
    const swap = await client.swapModel({ source: { case: "path", value: join(dir, "b") } });
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    const results = await Promise.all(loops);
    expect(failures).toBe(0);
    expect(swap.oldVersion).toBe(before);
    expect(swap.newVersion).not.toBe(before);
    for (const versions of results) {
      expect(versions.length).toBeGreaterThan(0);
      const changes = versions.filter((v, i) => i > 0 && v !== versions[i - 1]).length;
      expect(changes).toBe(1);
      expect(versions[0]).toBe(before);
      expect(versions.at(-1)).toBe(swap.newVersion);
    }
    const info = await client.getInfo({});
    expect(info.models[0]?.version).toBe(swap.newVersion);
  }, 60_000);

  it("refuses a corrupt model and a wrong-signature model; the old model keeps answering", async () => {
    const serving = (await client.score({ sample: sample(1) })).criticModelVersion;
    // Corrupt: flip bytes of the weights (the manifest digest no longer matches).
    await cp(join(dir, "a"), join(dir, "corrupt"), { recursive: true });
    await writeFile(join(dir, "corrupt", "model.safetensors"), new Uint8Array(64).fill(7));
    const e1 = await client.swapModel({ source: { case: "path", value: join(dir, "corrupt") } }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(AutodidactError);
    expect([Code.FailedPrecondition, Code.InvalidArgument]).toContain((e1 as AutodidactError).code);
    expect((e1 as Error).message).toContain("differs from the manifest");
    // Wrong signature: a classifier is not a decoder.
    await saveTinyClassifier(join(dir, "cls.onnx"), [[0, 1], [1, 0]]);
    await rm(join(dir, "wrong"), { recursive: true, force: true });
    await cp(join(dir, "a"), join(dir, "wrong"), { recursive: true });
    await rm(join(dir, "wrong", "manifest.json"));
    await writeFile(join(dir, "wrong", "config.json"), JSON.stringify({ model_type: "llama", num_hidden_layers: 1 }));
    await copyFile(join(dir, "cls.onnx"), join(dir, "wrong", "model.onnx"));
    await rm(join(dir, "wrong", "onnx"), { recursive: true, force: true });
    // Only an ONNX export: with safetensors beside a Hugging Face config the folder would be imported as a checkpoint.
    await rm(join(dir, "wrong", "model.safetensors"), { force: true });
    const e2 = await client.swapModel({ source: { case: "path", value: join(dir, "wrong") } }).catch((e: unknown) => e);
    expect([Code.FailedPrecondition, Code.InvalidArgument]).toContain((e2 as AutodidactError).code);
    expect((e2 as Error).message).toContain("past_key_values");
    // A digest that does not match is refused too.
    const e3 = await client.swapModel({ source: { case: "path", value: join(dir, "a") }, expectedDigest: "sha256:" + "0".repeat(64) }).catch((e: unknown) => e);
    expect((e3 as AutodidactError).code).toBe(Code.FailedPrecondition);
    const after = await client.score({ sample: sample(2) });
    expect(after.criticModelVersion).toBe(serving);
    expect(after.approve).toBe(true);
  }, 60_000);

  it("answers INVALID_ARGUMENT for a Score without a usable sample", async () => {
    const e = await client.score({ sample: { id: "bad id!", task: "addition", prompt: "1+1=" } }).catch((x: unknown) => x);
    expect((e as AutodidactError).code).toBe(Code.InvalidArgument);
    const e2 = await client.score({}).catch((x: unknown) => x);
    expect((e2 as AutodidactError).code).toBe(Code.InvalidArgument);
  });
});
