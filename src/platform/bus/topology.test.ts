import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { AutodidactError, Code } from "../errors/index.js";
import { connectBus, type Bus } from "./connection.js";
import { startNatsServer, type NatsServerProcess } from "./nats-server.js";
import { TEST_TOPOLOGY, TestBuckets, TestStreams, workSubject } from "./test-topology.js";
import { ensureTopology, kvStreamName, objectStreamName, subjectToken, type TopologyDeclaration } from "./topology.js";

let server: NatsServerProcess;
let bus: Bus;

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "topology-test" });
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

describe("ensureTopology", () => {
  it("creates every stream and bucket a declaration lists, then only verifies on the second run", async () => {
    const first = await ensureTopology(bus, TEST_TOPOLOGY);
    expect(first.created).toEqual([
      "stream WORK",
      "stream OTHER",
      "stream POISON",
      `kv ${TestBuckets.Kv}`,
      `object store ${TestBuckets.Objects}`,
    ]);
    const second = await ensureTopology(bus, TEST_TOPOLOGY);
    expect(second.created).toEqual([]);
    expect(second.updated).toEqual([]);
    expect(second.unchanged.length).toBe(first.created.length);

    const work = await bus.jsm.streams.info(TestStreams.Work);
    expect(work.config.subjects).toEqual(["work.>"]);
    expect(work.config.storage).toBe(StorageType.File);
    expect(work.config.duplicate_window).toBe(120_000_000_000);
    expect(work.config.num_replicas).toBe(1);
    for (const s of [kvStreamName(TestBuckets.Kv), objectStreamName(TestBuckets.Objects)]) {
      expect((await bus.jsm.streams.info(s)).config.num_replicas, s).toBe(1);
    }
    // Nothing purges KV keys: the bucket refuses rollup headers.
    expect((await bus.jsm.streams.info(kvStreamName(TestBuckets.Kv))).config.allow_rollup_hdrs).toBe(false);
  });

  it("creates streams and buckets with the configured replicas and brings existing ones to it", async () => {
    await ensureTopology(bus, TEST_TOPOLOGY);
    // A single nats-server refuses to create anything with 2 replicas: each kind fails naming them, which
    // shows creation asks for the configured count.
    const fresh: TopologyDeclaration[] = [
      { streams: [{ name: "FRESH", subjects: ["fresh.>"], purpose: "t" }], kvBuckets: [], objectStores: [] },
      { streams: [], kvBuckets: [{ name: "fresh-kv", history: 1, purpose: "t" }], objectStores: [] },
      { streams: [], kvBuckets: [], objectStores: [{ name: "fresh-objects", purpose: "t" }] },
    ];
    for (const [i, declaration] of fresh.entries()) {
      const err = await ensureTopology(bus, declaration, { replicas: 2 }).catch((e: unknown) => e);
      expect(err, `declaration ${i}`).toBeInstanceOf(AutodidactError);
      expect((err as AutodidactError).message).toMatch(/FRESH|fresh-kv \(2 replicas\)|fresh-objects \(2 replicas\)/);
    }
    // Existing buckets (nats.js only binds them, whatever their settings) are updated to the configured
    // count where the server allows it (a standalone 2.9 server stores the setting).
    const report = await ensureTopology(bus, TEST_TOPOLOGY, { replicas: 2 });
    expect(report.updated).toEqual(expect.arrayContaining([`kv ${TestBuckets.Kv} (num_replicas)`, `object store ${TestBuckets.Objects} (num_replicas)`]));
    expect((await bus.jsm.streams.info(kvStreamName(TestBuckets.Kv))).config.num_replicas).toBe(2);
    expect((await bus.jsm.streams.info(objectStreamName(TestBuckets.Objects))).config.num_replicas).toBe(2);
    expect((await ensureTopology(bus, TEST_TOPOLOGY, { replicas: 2 })).updated).toEqual([]);
    // A process configured with fewer replicas never scales them down.
    expect((await ensureTopology(bus, TEST_TOPOLOGY)).updated).toEqual([]);
    expect((await bus.jsm.streams.info(kvStreamName(TestBuckets.Kv))).config.num_replicas).toBe(2);
    for (const s of [kvStreamName(TestBuckets.Kv), objectStreamName(TestBuckets.Objects)]) {
      const info = await bus.jsm.streams.info(s);
      await bus.jsm.streams.update(s, { ...info.config, num_replicas: 1 });
    }
  });

  it("fails naming the bucket and both replica counts when the server refuses the change", async () => {
    await ensureTopology(bus, TEST_TOPOLOGY);
    // The real server, except that it refuses stream updates (as a cluster may for a replica change).
    const streams = new Proxy(bus.jsm.streams, {
      get: (target, prop, receiver) =>
        prop === "update" ? () => Promise.reject(new Error("replicas change refused")) : Reflect.get(target, prop, receiver),
    });
    const refusing = { ...bus, jsm: Object.assign(Object.create(bus.jsm) as typeof bus.jsm, { streams }) };
    for (const only of [
      { streams: [], kvBuckets: TEST_TOPOLOGY.kvBuckets, objectStores: [] },
      { streams: [], kvBuckets: [], objectStores: TEST_TOPOLOGY.objectStores },
    ] satisfies TopologyDeclaration[]) {
      const err = await ensureTopology(refusing, only, { replicas: 3 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AutodidactError);
      expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
      expect((err as AutodidactError).message).toMatch(/(kv test-kv \(stream KV_test-kv\)|object store test-objects \(stream OBJ_test-objects\)) exists and it has 1 replicas, the topology wants 3.*replicas change refused/);
    }
  });

  it("updates a stream whose safe settings drifted", async () => {
    await ensureTopology(bus, TEST_TOPOLOGY);
    const info = await bus.jsm.streams.info(TestStreams.Other);
    await bus.jsm.streams.update(TestStreams.Other, { ...info.config, duplicate_window: 30_000_000_000 });
    const report = await ensureTopology(bus, TEST_TOPOLOGY);
    expect(report.updated).toEqual(["stream OTHER (duplicate_window)"]);
    expect((await bus.jsm.streams.info(TestStreams.Other)).config.duplicate_window).toBe(120_000_000_000);
  });

  it("fails clearly when an existing stream conflicts in a way that cannot be updated", async () => {
    await bus.jsm.streams.delete(TestStreams.Other);
    await bus.jsm.streams.add({
      name: TestStreams.Other,
      subjects: ["other.>"],
      storage: StorageType.Memory,
      retention: RetentionPolicy.Limits,
    });
    const err = await ensureTopology(bus, TEST_TOPOLOGY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
    expect((err as AutodidactError).message).toMatch(/OTHER.*storage/);
    await bus.jsm.streams.delete(TestStreams.Other);
    await ensureTopology(bus, TEST_TOPOLOGY);
  });
});

describe("publish", () => {
  it("stores a duplicate sample id once and reports the duplicate", async () => {
    await ensureTopology(bus, TEST_TOPOLOGY);
    const subject = workSubject("addition");
    const data = new TextEncoder().encode("sample-1");
    const a = await bus.publish(subject, data, { msgId: "sample-1" });
    const b = await bus.publish(subject, data, { msgId: "sample-1" });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect(b.seq).toBe(a.seq);
    const info = await bus.jsm.streams.info(TestStreams.Work);
    expect(info.state.messages).toBe(1);
    const c = await bus.publish(subject, data, { msgId: "sample-2" });
    expect(c.duplicate).toBe(false);
    expect((await bus.jsm.streams.info(TestStreams.Work)).state.messages).toBe(2);
  });

  it("fails with Unavailable when no stream captures the subject", async () => {
    const err = await bus.publish("nowhere.at.all", new Uint8Array([1]), { retryForMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.Unavailable);
    expect((err as AutodidactError).message).toMatch(/nowhere\.at\.all/);
  });

  it("rejects subject tokens that would escape their stream", () => {
    expect(() => workSubject("a.b")).toThrow(AutodidactError);
    expect(() => subjectToken("task", "*")).toThrow(/invalid task/);
  });
});

describe("ensureTopology conflicts", () => {
  it("names the stream and the overlap when another stream captures its subjects", async () => {
    await bus.jsm.streams.delete(TestStreams.Other);
    await bus.jsm.streams.add({ name: "LEGACY", subjects: ["other.>"] });
    try {
      const err = await ensureTopology(bus, TEST_TOPOLOGY).catch((e: unknown) => e);
      expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
      expect((err as AutodidactError).message).toMatch(/OTHER.*overlap/);
    } finally {
      await bus.jsm.streams.delete("LEGACY");
    }
    await ensureTopology(bus, TEST_TOPOLOGY);
  });
});

describe("ensureTopology without JetStream", () => {
  it("fails with Unavailable and a hint to enable JetStream", async () => {
    const { spawn } = await import("node:child_process");
    const { freePort } = await import("./nats-server.js");
    const port = await freePort();
    const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    try {
      let plain: Bus | undefined;
      for (let i = 0; i < 100 && plain === undefined; i++) {
        plain = await connectBus({ servers: `nats://127.0.0.1:${port}`, name: "no-js", timeoutMs: 1_000 }).catch(async () => {
          await new Promise((r) => setTimeout(r, 50));
          return undefined;
        });
      }
      expect(plain).toBeDefined();
      const err = await ensureTopology(plain as Bus, TEST_TOPOLOGY).catch((e: unknown) => e);
      await plain?.close();
      expect(err).toBeInstanceOf(AutodidactError);
      expect((err as AutodidactError).code).toBe(Code.Unavailable);
      expect((err as AutodidactError).message).toMatch(/JetStream enabled/);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
