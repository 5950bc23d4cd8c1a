// The generator and a critic against the real checkpoint registry: the generator serves the promoted
// checkpoint of its lineage and swaps live on promotion and rollback (samples name "<lineage>@<version>");
// a critic's SwapModel takes a checkpoint version from the registry.
import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import type { OptionSpecs } from "../src/platform/config/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { SampleSchema, type Sample } from "../src/gen/autodidact/v1/sample_pb.js";
import { startServiceWithArgs, type RunningService, type ServiceSpec } from "../src/platform/host/index.js";
import { createRegistry, listCheckpointFiles, type Registry } from "../src/domain/registry/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";
import { criticService } from "../services/critic/index.js";
import { generatorService } from "../services/generator/index.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("serving registry checkpoints", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  let registry: Registry;
  const running: RunningService[] = [];
  const start = async <T extends OptionSpecs>(spec: ServiceSpec<T>, args: string[]): Promise<RunningService> => {
    const s = await startServiceWithArgs(spec, ["--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn", ...args]);
    running.push(s);
    return s;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "registry-serving-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "registry-serving-"));
    registry = createRegistry(bus, { cacheDir: join(dir, "cache-test") });
    for (const seed of [1, 2]) {
      const folder = join(dir, `m${seed}`);
      await saveTinyDecoder(folder, seed);
      const version = await registry.allocateVersion("main");
      await registry.putCheckpoint(
        { lineage: "main", version, parentVersion: version - 1, round: version, status: "candidate", statusReason: "", files: await listCheckpointFiles(folder), manifest: {}, metrics: {}, createdAt: new Date().toISOString() },
        folder,
      );
    }
    await registry.setPromoted("main", 1);
  }, 60_000);

  afterAll(async () => {
    for (const s of running.reverse()) await s.stop();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("the generator serves the promoted checkpoint and follows promotion and rollback live", async () => {
    const g = await start(generatorService, ["--cache-dir", join(dir, "cache-gen"), "--difficulty", "2", "--batch-size", "2"]);
    const client = createClient(GeneratorService, g.server.address);
    try {
      const versions = async (): Promise<string[]> => {
        const out: Sample[] = [];
        for await (const s of client.generate({ count: 2, temperature: 0.5 })) out.push(s);
        return [...new Set(out.map((s) => s.generatorModelVersion))];
      };
      const served = async (): Promise<string | undefined> => (await client.getInfo({})).models[0]?.version;
      expect(await served()).toBe("main@1");
      expect(await versions()).toEqual(["main@1"]);
      await registry.setPromoted("main", 2);
      while ((await served()) !== "main@2") await sleep(50);
      expect(await versions()).toEqual(["main@2"]);
      await registry.setPromoted("main", 1); // rollback
      while ((await served()) !== "main@1") await sleep(50);
      expect(await versions()).toEqual(["main@1"]);
      const info = await client.getInfo({});
      expect(info.models[0]).toMatchObject({ lineage: "main", checkpointVersion: 1n });
    } finally {
      client.close();
    }
  }, 60_000);

  it("a critic swaps to a checkpoint version and refuses one that does not exist", async () => {
    const c = await start(criticService, ["--kind", "likelihood", "--threshold", "-100", "--model", "main@1", "--critic-id", "lk", "--cache-dir", join(dir, "cache-critic")]);
    const client = createClient(CriticService, c.server.address);
    try {
      const sample = create(SampleSchema, { id: "s1", task: "addition", prompt: "21+43=", completion: "64" });
      expect((await client.score({ sample })).criticModelVersion).toBe("main@1");
      const r = await client.swapModel({ source: { case: "checkpointVersion", value: 2n } });
      expect(r).toMatchObject({ oldVersion: "main@1", newVersion: "main@2" });
      expect((await client.score({ sample })).criticModelVersion).toBe("main@2");
      const e = await client.swapModel({ source: { case: "checkpointVersion", value: 9n } }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(AutodidactError);
      expect([Code.NotFound, Code.FailedPrecondition]).toContain((e as AutodidactError).code);
      expect((await client.score({ sample })).criticModelVersion).toBe("main@2");
    } finally {
      client.close();
    }
  }, 60_000);

  it("a critic with --follow-promoted serves the promoted checkpoint and swaps on promotion", async () => {
    await registry.setPromoted("main", 1);
    const c = await start(criticService, ["--kind", "likelihood", "--threshold", "-100", "--follow-promoted", "--critic-id", "fp", "--cache-dir", join(dir, "cache-fp")]);
    const client = createClient(CriticService, c.server.address);
    try {
      const sample = create(SampleSchema, { id: "s2", task: "addition", prompt: "21+43=", completion: "64" });
      expect((await client.score({ sample })).criticModelVersion).toBe("main@1");
      await registry.setPromoted("main", 2);
      while ((await client.getInfo({})).models[0]?.version !== "main@2") await sleep(50);
      expect((await client.score({ sample })).criticModelVersion).toBe("main@2");
    } finally {
      client.close();
    }
  }, 60_000);
});
