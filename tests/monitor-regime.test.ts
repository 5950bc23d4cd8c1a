// The honest information regime on the monitor's side, over real NATS and gRPC: evaluations per
// held-out split (validation only where the gating policy allows it, test for results), the frontier
// from the test split, and the label-free check that decides beyond the validation range.
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { create } from "@bufbuild/protobuf";
import { DifficultyRangeSchema } from "../src/gen/autodidact/v1/common_pb.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import type { RunningService } from "../src/platform/host/index.js";
import { createRegistry, type Registry } from "../src/domain/registry/index.js";
import { createClient, type RpcClient } from "../src/platform/rpc/index.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";
import { registerCandidate, startMonitor, tmpdir } from "./monitor-support.js";

const range = (min: number, max: number) => create(DifficultyRangeSchema, { min, max });

describe("monitor: evaluation per split and the gate under a labels regime", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let registry: Registry;
  let service: RunningService;
  let client: RpcClient<typeof MonitorService>;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "monitor-regime-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "monitor-regime-"));
    registry = createRegistry(bus, { cacheDir: join(work, "test-cache") });
    service = await startMonitor(nats.url, work, ["--eval-max-difficulty", "3", "--dashboard-port", "-1", "--no-consume-candidates", "--no-round-stats"]);
    client = createClient(MonitorService, service.server.address);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await service?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("evaluates validation only inside the policy's range, test over its range, and reports the test frontier", async () => {
    const p0 = await client.getPolicy({});
    // What a run with validation labels for 1-digit problems only sets (the conductor writes it in).
    await client.setPolicy({
      policy: { ...p0, validation: range(1, 1), test: range(1, 3), validationSize: 5, testSize: 4, note: "regime" },
    });
    const peer = await registerCandidate(registry, work, { lineage: "peer", seed: 11, parentVersion: 0, round: 0 });
    const res = await client.promote({ lineage: "peer", version: BigInt(peer.version), force: true, reason: "base" });
    expect(res.promoted).toBe(true);
    const e = (await client.getEvaluation({ lineage: "peer", version: BigInt(peer.version) })).evaluation!;
    // The results: the test split at 1..3, 4 problems each (top level and splits["test"]).
    const test = e.splits.find((s) => s.split === "test")!;
    expect(test.perDifficulty.map((d) => [d.difficulty, Number(d.count)])).toEqual([[1, 4], [2, 4], [3, 4]]);
    expect(e.perDifficulty).toEqual(test.perDifficulty);
    expect(e.accuracy).toBe(test.accuracy);
    // The gate's numbers: validation, difficulty 1 only.
    const validation = e.splits.find((s) => s.split === "validation")!;
    expect(validation.perDifficulty.map((d) => [d.difficulty, Number(d.count)])).toEqual([[1, 5]]);
    expect(e.evalSetDigest).toBe(validation.evalSetDigest);
    expect(test.evalSetDigest).not.toBe(validation.evalSetDigest);
    expect(e.frontierThreshold).toBe(0.95);
    // A random decoder masters no length: the frontier starts at 1-digit and is 0.
    expect(e.frontier).toBe(test.frontier);
    expect(e.frontier).toBe(0);
  }, 90_000);

  it("beyond the validation range the gate decides on label-free peer agreement: a candidate that drifts from its peers is rejected", async () => {
    const p = await client.getPolicy({});
    await client.setPolicy({ policy: { ...p, labelFreeProbeSize: 6, maxAgreementRegression: 0.05, peerLineages: ["main", "peer"] } });
    // The incumbent has the peer's weights (agrees with it on everything); the candidate is another
    // random model, trained (says its manifest) on 2- and 3-digit samples: beyond validation 1..1.
    const incumbent = await registerCandidate(registry, work, { lineage: "main", seed: 11, parentVersion: 0, round: 1 });
    expect((await client.promote({ lineage: "main", version: BigInt(incumbent.version), force: true })).promoted).toBe(true);
    const candidate = await registerCandidate(registry, work, {
      lineage: "main",
      seed: 12,
      parentVersion: incumbent.version,
      round: 2,
      manifest: { mix: { syntheticCount: 30, realCount: 10, syntheticByDifficulty: { 2: 20, 3: 10 } } },
    });
    const out = await client.promote({ lineage: "main", version: BigInt(candidate.version) });
    const lf = out.evaluation!.labelFree;
    expect(lf.map((f) => [f.difficulty, f.count, f.signal])).toEqual([[2, 6, "peer_agreement"], [3, 6, "peer_agreement"]]);
    for (const f of lf) expect(f.incumbent).toBe(1);
    expect(out.promoted).toBe(false);
    expect(out.gate!.reasons.join("\n")).toMatch(/difficulty 2 \(label-free\): peer agreement/);
    // The stored evaluation keeps what the gate compared; the conductor reads only the reasons.
    const stored = await client.getEvaluation({ lineage: "main", version: BigInt(candidate.version) });
    expect(stored.evaluation!.labelFree).toHaveLength(2);
    expect(stored.gate!.passed).toBe(false);
    // The same candidate against the same check with the peers' answers its own: passes this check.
    const twin = await registerCandidate(registry, work, {
      lineage: "main",
      seed: 11,
      parentVersion: incumbent.version,
      round: 3,
      manifest: { mix: { syntheticCount: 30, realCount: 10, syntheticByDifficulty: { 2: 20, 3: 10 } } },
    });
    const ok = await client.promote({ lineage: "main", version: BigInt(twin.version) });
    expect(ok.gate!.reasons.filter((r) => /label-free/.test(r))).toEqual([]);
  }, 120_000);

  it("with no validation labels at all, the gate reads none: the evaluation has a test split only", async () => {
    const p = await client.getPolicy({});
    await client.setPolicy({ policy: { ...p, validation: range(1, 0), labelFreeProbeSize: 0 } });
    const v = await registerCandidate(registry, work, { lineage: "solo", seed: 21, parentVersion: 0, round: 0 });
    const e = await client.evaluate({ lineage: "solo", version: BigInt(v.version) });
    expect(e.splits.map((s) => s.split)).toEqual(["test"]);
    expect(e.perDifficulty.map((d) => d.difficulty)).toEqual([1, 2, 3]);
    expect(e.splits[0]!.perDifficulty.map((d) => d.difficulty)).toEqual([1, 2, 3]);
  }, 60_000);
});
