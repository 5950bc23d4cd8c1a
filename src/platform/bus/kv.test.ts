import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { connectBus, type Bus } from "./connection.js";
import { isKvConflict, openKv, type KvStore } from "./kv.js";
import { startNatsServer, type NatsServerProcess } from "./nats-server.js";
import { openObjectStore, sha256Hex } from "./objects.js";
import { TEST_TOPOLOGY, TestBuckets } from "./test-topology.js";
import { ensureTopology } from "./topology.js";

let server: NatsServerProcess;
let bus: Bus;
let kv: KvStore;

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "kv-test" });
  await ensureTopology(bus, TEST_TOPOLOGY);
  kv = await openKv(bus, TestBuckets.Kv);
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

describe("KV", () => {
  it("lets exactly one of two concurrent updates at the same revision win", async () => {
    const rev = await kv.createJson("sample.cas", { votes: [] });
    const results = await Promise.allSettled([
      kv.updateJson("sample.cas", { votes: ["critic-a"] }, rev),
      kv.updateJson("sample.cas", { votes: ["critic-b"] }, rev),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const err = lost[0]?.reason as AutodidactError;
    expect(err).toBeInstanceOf(AutodidactError);
    expect(err.code).toBe(Code.Aborted);
    expect(isKvConflict(err)).toBe(true);
    expect(err.message).toMatch(/sample\.cas changed since revision/);
    const stored = await kv.getJson<{ votes: string[] }>("sample.cas");
    const winner = results.findIndex((r) => r.status === "fulfilled");
    expect(stored?.value.votes).toEqual([winner === 0 ? "critic-a" : "critic-b"]);
  });

  it("create refuses an existing key with AlreadyExists", async () => {
    await kv.createJson("sample.once", { n: 1 });
    const err = await kv.createJson("sample.once", { n: 2 }).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.AlreadyExists);
    expect((await kv.getJson<{ n: number }>("sample.once"))?.value.n).toBe(1);
  });

  it("modify applies every concurrent read-modify-write exactly once", async () => {
    const voters = Array.from({ length: 8 }, (_, i) => `critic-${i}`);
    await Promise.all(
      voters.map((v) =>
        kv.modify<{ votes: string[] }>("sample.votes", (cur) => ({ votes: [...(cur?.votes ?? []), v] })),
      ),
    );
    const stored = await kv.getJson<{ votes: string[] }>("sample.votes");
    expect([...(stored?.value.votes ?? [])].sort()).toEqual([...voters].sort());
  });

  it("returns null for absent or deleted keys and rejects invalid keys", async () => {
    expect(await kv.get("never.written")).toBeNull();
    await kv.putJson("to.delete", 1);
    await kv.delete("to.delete");
    expect(await kv.get("to.delete")).toBeNull();
    const err = await kv.get("bad key with spaces").catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
  });
});

describe("object store", () => {
  it("round-trips a multi-chunk object and verifies its sha256", async () => {
    const os = await openObjectStore(bus, TestBuckets.Objects);
    const data = new Uint8Array(300_000).map((_, i) => (i * 31 + 7) % 251);
    const put = await os.put("ckpt/round-1/model.safetensors", data, { metadata: { lineage: "main" } });
    expect(put.sha256).toBe(sha256Hex(data));
    expect(put.size).toBe(data.byteLength);
    expect(put.chunks).toBeGreaterThan(1);
    const got = await os.get("ckpt/round-1/model.safetensors", { expectSha256: put.sha256 });
    expect(Buffer.from(got.data).equals(Buffer.from(data))).toBe(true);
    expect(got.info.metadata["lineage"]).toBe("main");
  });

  it("fails with DataLoss when the content is not what the caller recorded, NotFound when absent", async () => {
    const os = await openObjectStore(bus, TestBuckets.Objects);
    await os.put("ckpt/x", new TextEncoder().encode("weights"));
    const wrong = sha256Hex(new TextEncoder().encode("other weights"));
    const err = await os.get("ckpt/x", { expectSha256: wrong }).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.DataLoss);
    const missing = await os.get("ckpt/missing").catch((e: unknown) => e);
    expect((missing as AutodidactError).code).toBe(Code.NotFound);
  });
});
