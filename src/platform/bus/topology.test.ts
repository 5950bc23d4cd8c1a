import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { AutodidactError, Code } from "../errors/index.js";
import { connectBus, type Bus } from "./connection.js";
import { startNatsServer, type NatsServerProcess } from "./nats-server.js";
import { ensureTopology, KvBuckets, ObjectBuckets, Streams, Subjects } from "./topology.js";

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
  it("creates every stream and bucket, then only verifies on the second run", async () => {
    const first = await ensureTopology(bus);
    expect(first.created).toEqual(
      expect.arrayContaining([
        "stream SAMPLES",
        "stream VERDICTS",
        "stream DECISIONS",
        "stream CHECKPOINTS",
        `kv ${KvBuckets.Consensus}`,
        `kv ${KvBuckets.Registry}`,
        `object store ${ObjectBuckets.Checkpoints}`,
      ]),
    );
    const second = await ensureTopology(bus);
    expect(second.created).toEqual([]);
    expect(second.updated).toEqual([]);
    expect(second.unchanged.length).toBe(first.created.length);

    const samples = await bus.jsm.streams.info(Streams.Samples);
    expect(samples.config.subjects).toEqual(["samples.proposed.>"]);
    expect(samples.config.storage).toBe(StorageType.File);
    expect(samples.config.duplicate_window).toBe(120_000_000_000);
    expect(samples.config.num_replicas).toBe(1);
    const names: string[] = [];
    for await (const s of bus.jsm.streams.names()) names.push(s);
    expect(names).toEqual(expect.arrayContaining(["KV_consensus", "KV_registry", "OBJ_checkpoints"]));
  });

  it("updates a stream whose safe settings drifted", async () => {
    await ensureTopology(bus);
    const info = await bus.jsm.streams.info(Streams.Verdicts);
    await bus.jsm.streams.update(Streams.Verdicts, { ...info.config, duplicate_window: 30_000_000_000 });
    const report = await ensureTopology(bus);
    expect(report.updated).toEqual(["stream VERDICTS (duplicate_window)"]);
    expect((await bus.jsm.streams.info(Streams.Verdicts)).config.duplicate_window).toBe(120_000_000_000);
  });

  it("fails clearly when an existing stream conflicts in a way that cannot be updated", async () => {
    await bus.jsm.streams.delete(Streams.Decisions);
    await bus.jsm.streams.add({
      name: Streams.Decisions,
      subjects: ["decisions.>"],
      storage: StorageType.Memory,
      retention: RetentionPolicy.Limits,
    });
    const err = await ensureTopology(bus).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
    expect((err as AutodidactError).message).toMatch(/DECISIONS.*storage/);
    await bus.jsm.streams.delete(Streams.Decisions);
    await ensureTopology(bus);
  });
});

describe("publish", () => {
  it("stores a duplicate sample id once and reports the duplicate", async () => {
    await ensureTopology(bus);
    const subject = Subjects.proposed("addition");
    const data = new TextEncoder().encode("sample-1");
    const a = await bus.publish(subject, data, { msgId: "sample-1" });
    const b = await bus.publish(subject, data, { msgId: "sample-1" });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect(b.seq).toBe(a.seq);
    const info = await bus.jsm.streams.info(Streams.Samples);
    expect(info.state.messages).toBe(1);
    const c = await bus.publish(subject, data, { msgId: "sample-2" });
    expect(c.duplicate).toBe(false);
    expect((await bus.jsm.streams.info(Streams.Samples)).state.messages).toBe(2);
  });

  it("fails with Unavailable when no stream captures the subject", async () => {
    const err = await bus.publish("nowhere.at.all", new Uint8Array([1]), { retryForMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.Unavailable);
    expect((err as AutodidactError).message).toMatch(/nowhere\.at\.all/);
  });

  it("rejects subject tokens that would escape their stream", () => {
    expect(() => Subjects.proposed("a.b")).toThrow(AutodidactError);
    expect(() => Subjects.verdicts("*")).toThrow(/invalid task/);
  });
});

describe("ensureTopology conflicts", () => {
  it("names the stream and the overlap when another stream captures its subjects", async () => {
    await bus.jsm.streams.delete(Streams.Checkpoints);
    await bus.jsm.streams.add({ name: "LEGACY", subjects: ["checkpoints.>"] });
    try {
      const err = await ensureTopology(bus).catch((e: unknown) => e);
      expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
      expect((err as AutodidactError).message).toMatch(/CHECKPOINTS.*overlap/);
    } finally {
      await bus.jsm.streams.delete("LEGACY");
    }
    await ensureTopology(bus);
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
      const err = await ensureTopology(plain as Bus).catch((e: unknown) => e);
      await plain?.close();
      expect(err).toBeInstanceOf(AutodidactError);
      expect((err as AutodidactError).code).toBe(Code.Unavailable);
      expect((err as AutodidactError).message).toMatch(/JetStream enabled/);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
