// The generator on a real nats-server: Generate streams samples from the served model (version,
// log-probs, lineage, seed), publishes them with the sample id as message id and trace context, and the
// proposing loop backs off while a critic durable lags, resuming once it drains.
import { fromBinary } from "@bufbuild/protobuf";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, ensureConsumer, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { SampleSchema, type Sample } from "../src/gen/autodidact/v1/sample_pb.js";
import { startService, type RunningService, type ServiceConfig } from "../src/platform/host/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { getTaskPack } from "../src/domain/tasks/index.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";
import { generatorOptions, generatorService } from "../services/generator/index.js";
import { ensureMeshTopology, Streams } from "../src/domain/topology/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("generator", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  const running: RunningService[] = [];

  const start = async (args: string[]): Promise<RunningService> => {
    const parsed = defineOptions({ ...serviceOptions, ...generatorOptions }).parse(
      ["--nats-url", nats.url, "--model", join(dir, "m"), "--grpc-host", "127.0.0.1", "--log-level", "warn", ...args],
      {},
    );
    const s = await startService(generatorService, parsed.values as unknown as ServiceConfig<typeof generatorOptions>);
    running.push(s);
    return s;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "generator-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "generator-"));
    await saveTinyDecoder(join(dir, "m"), 3);
  }, 60_000);

  afterAll(async () => {
    for (const s of running) await s.stop();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("streams samples on demand with model version, log-probs and lineage, reproducibly for a seed, and publishes them", async () => {
    const g = await start(["--difficulty", "2", "--batch-size", "3"]);
    const client = createClient(GeneratorService, g.server.address);
    try {
      const collect = async (publish: boolean, seed: bigint): Promise<Sample[]> => {
        const out: Sample[] = [];
        for await (const s of client.generate({ count: 7, seed, temperature: 0.8, publish, round: 2 })) out.push(s);
        return out;
      };
      const a = await collect(false, 42n);
      const b = await collect(true, 42n);
      expect(a).toHaveLength(7);
      expect(b.map((s) => [s.prompt, s.completion])).toEqual(a.map((s) => [s.prompt, s.completion]));
      const task = getTaskPack("addition");
      for (const s of b) {
        expect(s.generatorModelVersion).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(s.tokenLogprobs.length).toBeGreaterThan(0);
        expect(s.tokenLogprobs.every((x) => x <= 0)).toBe(true);
        expect(s.difficulty).toBe(2);
        expect(s.round).toBe(2);
        expect(s.lineage?.promptId).toBe(task.promptId(s.prompt));
        expect(s.lineage?.generatorLineage).toBe("main");
        expect(s.sampling?.temperature).toBeCloseTo(0.8);
      }
      // Published with msgId = sample id and a traceparent header.
      const seen = new Map<string, { msgId: string | undefined; traceparent: string | undefined }>();
      const c = await consume(bus, { stream: Streams.Samples, durable: "gen-check" }, async (m) => {
        const s = fromBinary(SampleSchema, m.data);
        seen.set(s.id, { msgId: m.msgId, traceparent: m.headers?.get("traceparent") });
      });
      while (seen.size < 7) await sleep(50);
      await c.stop();
      for (const s of b) {
        expect(seen.get(s.id)?.msgId).toBe(s.id);
        expect(seen.get(s.id)?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      }
      const tooMany = await (async () => {
        for await (const _ of client.generate({ count: 100_000 })) void _;
      })().catch((e: unknown) => e);
      expect((tooMany as AutodidactError).code).toBe(Code.InvalidArgument);
    } finally {
      client.close();
    }
  }, 60_000);

  it("the proposing loop pauses while a critic durable lags and resumes when it drains", async () => {
    const before = (await bus.jsm.streams.info(Streams.Samples)).state.messages;
    await ensureConsumer(bus, { stream: Streams.Samples, durable: "critic-slow", deliverPolicy: "new" });
    await start(["--propose", "--batch-size", "4", "--max-in-flight", "1", "--max-lag", "8"]);
    const count = async (): Promise<number> => (await bus.jsm.streams.info(Streams.Samples)).state.messages - before;
    // Wait until the loop is blocked: the count stops growing.
    let last = -1;
    for (let stable = 0; stable < 5; ) {
      await sleep(300);
      const now = await count();
      stable = now === last && now >= 8 ? stable + 1 : 0;
      last = now;
    }
    // Bounded by the lag limit plus the batch in flight when it was reached.
    expect(last).toBeGreaterThanOrEqual(8);
    expect(last).toBeLessThanOrEqual(8 + 4);
    // Drain the slow critic: proposing resumes.
    const drained = await consume(bus, { stream: Streams.Samples, durable: "critic-slow" }, async () => undefined, { maxInFlight: 64 });
    while ((await count()) <= last + 8) await sleep(100);
    await drained.stop();
    expect(await count()).toBeGreaterThan(last + 8);
  }, 60_000);
});
