// Generate with an id prefix on a real nats-server: ids are `<prefix>-<index>` over the whole request
// (across batches), a repeated request proposes the same samples under the same ids (the stream drops
// the repeats), and a bad prefix or a prefix without a fixed seed is refused before anything runs.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { Code } from "../../src/platform/errors/index.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import type { Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import { startServiceWithArgs, type RunningService } from "../../src/platform/host/index.js";
import { createClient } from "../../src/platform/rpc/index.js";
import { saveTinyDecoder } from "../../src/domain/serving/test-models.js";
import { ensureMeshTopology, Streams } from "../../src/domain/topology/index.js";
import { generatorService } from "./index.js";

describe("Generate with id_prefix", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  let g: RunningService;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "generator-id-prefix-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "generator-ids-"));
    await saveTinyDecoder(join(dir, "m"), 5);
    g = await startServiceWithArgs(generatorService, ["--nats-url", nats.url, "--model", join(dir, "m"), "--grpc-host", "127.0.0.1", "--log-level", "warn", "--batch-size", "3"]);
  }, 60_000);

  afterAll(async () => {
    await g?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("names samples <prefix>-<index> across batches; a repeat proposes the same samples and the stream keeps one of each", async () => {
    const client = createClient(GeneratorService, g.server.address);
    try {
      const run = async (): Promise<Sample[]> => {
        const out: Sample[] = [];
        for await (const s of client.generate({ count: 7, seed: 11n, difficulty: 2, publish: true, round: 3, idPrefix: "run-a-r3" })) out.push(s);
        return out;
      };
      const first = await run();
      expect(first.map((s) => s.id)).toEqual(Array.from({ length: 7 }, (_, i) => `run-a-r3-${i}`));
      const before = (await bus.jsm.streams.info(Streams.Samples)).state.messages;
      const again = await run();
      expect(again.map((s) => [s.id, s.prompt, s.completion])).toEqual(first.map((s) => [s.id, s.prompt, s.completion]));
      expect((await bus.jsm.streams.info(Streams.Samples)).state.messages).toBe(before);
      expect(before).toBe(7);
    } finally {
      client.close();
    }
  });

  it("refuses a prefix that is not KV-safe, and a prefix without a fixed seed", async () => {
    const client = createClient(GeneratorService, g.server.address);
    const drain = async (req: Parameters<typeof client.generate>[0]): Promise<void> => {
      for await (const _ of client.generate(req)) void _;
    };
    try {
      await expect(drain({ count: 2, seed: 1n, idPrefix: "a.b" })).rejects.toMatchObject({ code: Code.InvalidArgument });
      await expect(drain({ count: 2, seed: 1n, idPrefix: "x".repeat(161) })).rejects.toMatchObject({ code: Code.InvalidArgument });
      await expect(drain({ count: 2, idPrefix: "run-a" })).rejects.toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/fixed seed/) });
    } finally {
      client.close();
    }
  });
});
