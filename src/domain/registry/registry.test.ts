import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, openKv, openObjectStore, startNatsServer, type Bus, type NatsServerProcess } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createRegistry, listCheckpointFiles, openMonitorRecords, safeCheckpointPath, type CheckpointRecord, type Registry } from "./index.js";
import { ensureMeshTopology, KvBuckets, ObjectBuckets } from "../topology/index.js";

describe("checkpoint registry", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let registry: Registry;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "registry-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "registry-test-"));
    registry = createRegistry(bus, { cacheDir: join(work, "cache") });
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function makeFolder(name: string, content: string): Promise<string> {
    const dir = join(work, name);
    await mkdir(join(dir, "onnx"), { recursive: true });
    await writeFile(join(dir, "config.json"), JSON.stringify({ name }));
    await writeFile(join(dir, "onnx", "model.onnx"), content);
    return dir;
  }

  async function register(lineage: string, dir: string, parentVersion = 0): Promise<CheckpointRecord> {
    const version = await registry.allocateVersion(lineage);
    const record: CheckpointRecord = {
      lineage,
      version,
      parentVersion,
      round: version,
      status: "candidate",
      statusReason: "",
      files: await listCheckpointFiles(dir),
      manifest: { note: "test" },
      metrics: {},
      createdAt: new Date().toISOString(),
    };
    await registry.putCheckpoint(record, dir);
    return record;
  }

  it("allocates contiguous versions even when allocations race", async () => {
    const versions = await Promise.all(Array.from({ length: 8 }, () => registry.allocateVersion("race")));
    expect([...versions].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await registry.lastAllocatedVersion("race")).toBe(8);
    expect(await registry.lastAllocatedVersion("never")).toBe(0);
  });

  it("gives an owner that allocates again (after a crash) the same version, unless another allocation came in between", async () => {
    const first = await registry.allocateVersion("owned", "round-1");
    expect(await registry.allocateVersion("owned", "round-1")).toBe(first);
    expect(await registry.allocateVersion("owned", "round-2")).toBe(first + 1);
    expect(await registry.allocateVersion("owned")).toBe(first + 2);
    expect(await registry.allocateVersion("owned", "round-2")).toBe(first + 3);
  });

  it("stores a checkpoint and materializes a verified copy, refetching a tampered cache", async () => {
    const dir = await makeFolder("a", "weights-a");
    const record = await register("main", dir);
    expect(record.files.map((f) => f.name)).toEqual(["config.json", "onnx/model.onnx"]);
    const local = await registry.materialize("main", record.version);
    expect(await readFile(join(local, "onnx", "model.onnx"), "utf8")).toBe("weights-a");
    await writeFile(join(local, "onnx", "model.onnx"), "tampered");
    const again = await registry.materialize("main", record.version);
    expect(await readFile(join(again, "onnx", "model.onnx"), "utf8")).toBe("weights-a");
    await expect(registry.putCheckpoint(record, dir)).rejects.toMatchObject({ code: Code.AlreadyExists });
    expect((await registry.listCheckpoints("main")).map((r) => r.version)).toEqual([record.version]);
  });

  it("refuses a stored file whose digest does not match its record", async () => {
    const dir = await makeFolder("b", "weights-b");
    const record = await register("tampered", dir);
    const store = await openObjectStore(bus, ObjectBuckets.Checkpoints);
    await store.put(`tampered/${record.version}/onnx/model.onnx`, new TextEncoder().encode("evil"));
    const err = await registry.materialize("tampered", record.version).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.DataLoss);
  });

  it("refuses an over-long lineage with InvalidArgument before it reaches a NATS subject, and stays connected", async () => {
    const long = "A".repeat(7_000);
    await expect(registry.listCheckpoints(long)).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(registry.getPromoted(long)).rejects.toMatchObject({ code: Code.InvalidArgument });
    const err = await registry.allocateVersion(long).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
    expect((err as AutodidactError).rawMessage.length).toBeLessThan(300);
    expect(bus.nc.isClosed()).toBe(false);
    expect(await registry.listCheckpoints("A".repeat(128))).toEqual([]);
  });

  it("refuses file names that escape the checkpoint folder", async () => {
    for (const name of ["../x", "/etc/passwd", "a/../../x", ""]) {
      expect(() => safeCheckpointPath("/tmp/ckpt", name)).toThrow(/escapes its folder/);
    }
    expect(safeCheckpointPath("/tmp/ckpt", "onnx/model.onnx")).toBe("/tmp/ckpt/onnx/model.onnx");
    const dir = await makeFolder("c", "weights-c");
    const version = await registry.allocateVersion("evil");
    const forged: CheckpointRecord = {
      lineage: "evil", version, parentVersion: 0, round: 0, status: "candidate", statusReason: "",
      files: [{ name: "../c/config.json", sha256: "0", size: 1 }], manifest: {}, metrics: {}, createdAt: "",
    };
    await expect(registry.putCheckpoint(forged, dir)).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("refuses to materialize a forged record whose file name escapes the cache folder, writing nothing outside it", async () => {
    const dir = await makeFolder("d", "weights-d");
    const record = await register("forged", dir);
    // A record rewritten in the registry bucket by someone who bypassed putCheckpoint.
    const forged: CheckpointRecord = { ...record, files: [...record.files, { name: "../../../escaped.txt", sha256: "0".repeat(64), size: 1 }] };
    await (await openKv(bus, KvBuckets.Registry)).putJson(`checkpoint.forged.${record.version}`, forged);
    const err = await registry.materialize("forged", record.version).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
    expect((err as AutodidactError).rawMessage).toContain("escapes its folder");
    for (const outside of [join(work, "escaped.txt"), join(work, "cache", "escaped.txt"), join(tmpdir(), "escaped.txt")]) {
      await expect(access(outside)).rejects.toMatchObject({ code: "ENOENT" });
    }
  });

  it("moves the promoted pointer with compare-and-set and tells watchers", async () => {
    const v1 = await register("promo", await makeFolder("p1", "w1"));
    const v2 = await register("promo", await makeFolder("p2", "w2"), v1.version);
    const seen: number[] = [];
    const stop = registry.watchPromoted("promo", (v) => seen.push(v));
    await new Promise((r) => setTimeout(r, 200));
    expect(await registry.getPromoted("promo")).toBeUndefined();
    await registry.setPromoted("promo", v1.version, 0);
    const first = await registry.getPromoted("promo");
    expect(first?.version).toBe(v1.version);
    await registry.setPromoted("promo", v2.version, first!.revision);
    await expect(registry.setPromoted("promo", v1.version, first!.revision)).rejects.toMatchObject({ code: Code.Aborted });
    await expect(registry.setPromoted("promo", 99)).rejects.toMatchObject({ code: Code.NotFound });
    for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    stop();
    expect(seen).toEqual([v1.version, v2.version]);
    const updated = await registry.setStatus("promo", v2.version, "promoted", "better on anchors");
    expect(updated).toMatchObject({ status: "promoted", statusReason: "better on anchors" });
  });

  it("keeps the monitor's evaluations, gating policy and round statistics, with compare-and-set where it matters", async () => {
    const records = openMonitorRecords<{ lineage: string; version: number; accuracy: number }, { version: number; note: string }>(bus);
    expect(await records.getEvaluation("main", 1)).toBeUndefined();
    await records.putEvaluation({ lineage: "main", version: 1, accuracy: 0.5 });
    await records.putEvaluation({ lineage: "main", version: 1, accuracy: 0.75 });
    expect(await records.getEvaluation("main", 1)).toEqual({ lineage: "main", version: 1, accuracy: 0.75 });
    await expect(records.getEvaluation("a.b", 1)).rejects.toMatchObject({ code: Code.InvalidArgument });

    expect(await records.getGatePolicy()).toBeUndefined();
    const rev = await records.putGatePolicy({ version: 1, note: "first" }, 0);
    await expect(records.putGatePolicy({ version: 1, note: "again" }, 0)).rejects.toMatchObject({ code: Code.AlreadyExists });
    await records.putGatePolicy({ version: 2, note: "second" }, rev);
    await expect(records.putGatePolicy({ version: 3, note: "stale" }, rev)).rejects.toMatchObject({ code: Code.Aborted });
    expect((await records.getGatePolicy())?.policy).toEqual({ version: 2, note: "second" });

    await Promise.all(Array.from({ length: 5 }, () => records.updateRoundStats("addition", 3, (s) => void s.proposed++)));
    await records.updateRoundStats("addition", 4, (s) => void (s.accepted = 2));
    expect(await records.getRoundStats("addition", 3)).toMatchObject({ task: "addition", round: 3, proposed: 5, accepted: 0 });
    expect([...(await records.listRoundStats("addition")).keys()].sort()).toEqual([3, 4]);
    expect(await records.getRoundStats("addition", 9)).toBeUndefined();
    await expect(records.updateRoundStats("addition", -1, () => undefined)).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});
