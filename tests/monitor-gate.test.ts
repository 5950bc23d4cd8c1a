import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { openPolicyStore } from "../src/domain/consensus/index.js";
import { createModelWorker, type ModelWorker } from "../src/engine/index.js";
import { Code } from "../src/platform/errors/index.js";
import { CheckpointRefSchema, CheckpointStatus } from "../src/gen/autodidact/v1/checkpoint_pb.js";
import { ConsensusKind, DecisionSchema } from "../src/gen/autodidact/v1/consensus_pb.js";
import { getTaskPack } from "../src/domain/tasks/index.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import type { RunningService } from "../src/platform/host/index.js";
import { createRegistry, listCheckpointFiles, type CheckpointRecord, type Registry } from "../src/domain/registry/index.js";
import { createClient, type RpcClient } from "../src/platform/rpc/index.js";
import { createMonitor } from "../services/monitor/index.js";
import { announceCandidate, registerCandidate, startMonitor, tmpdir, waitFor } from "./monitor-support.js";
import { ensureMeshTopology, Subjects } from "../src/domain/topology/index.js";

const L = "main";

describe("monitor: gated promotion, rollback, history and lineage", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let registry: Registry;
  let service: RunningService;
  let client: RpcClient<typeof MonitorService>;
  const watched: number[] = [];
  let unwatch: () => void = () => {};
  const events: { subject: string; version: number; status: CheckpointStatus }[] = [];
  let v1: CheckpointRecord;
  let v2: CheckpointRecord;
  let v3: CheckpointRecord;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "monitor-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "monitor-test-"));
    registry = createRegistry(bus, { cacheDir: join(work, "test-cache") });
    // What a generator or critic does: follow the promoted pointer (the promotion signal); and what an
    // auditor does: read the monitor's audit records.
    unwatch = registry.watchPromoted(L, (v) => watched.push(v));
    const sub = bus.nc.subscribe(Subjects.allPromotionAudits);
    void (async () => {
      for await (const m of sub) {
        const ref = fromBinary(CheckpointRefSchema, m.data);
        events.push({ subject: m.subject, version: Number(ref.version), status: ref.status });
      }
    })();
    service = await startMonitor(nats.url, work, ["--eval-max-difficulty", "3", "--dashboard-port", "-1"]);
    client = createClient(MonitorService, service.server.address);
  }, 60_000);

  afterAll(async () => {
    unwatch();
    client?.close();
    await service?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const status = async (v: number, not = "candidate"): Promise<CheckpointRecord> =>
    waitFor(async () => {
      const r = await registry.getCheckpoint(L, v);
      return r && r.status !== not ? r : undefined;
    }, 60_000, `v${v} leaving ${not}`);

  it("promotes the first candidate (no incumbent) from checkpoints.candidate and subscribers see it", async () => {
    v1 = await registerCandidate(registry, work, { lineage: L, seed: 1, parentVersion: 0, round: 0 });
    await announceCandidate(bus, v1);
    const r = await status(v1.version);
    expect(r.status).toBe("promoted");
    expect(r.statusReason).toMatch(/passed gate/);
    // The monitor moves the pointer before it writes the status: a "promoted" record is the one served.
    expect((await registry.getPromoted(L))?.version).toBe(v1.version);
    await waitFor(async () => (watched.includes(v1.version) ? true : undefined), 10_000, "watchPromoted");
    await waitFor(async () => (events.some((e) => e.subject === Subjects.promotionAudit("promoted") && e.version === v1.version && e.status === CheckpointStatus.PROMOTED) ? true : undefined), 10_000, "promoted event");
  }, 90_000);

  it("rejects a collapsed candidate worse than the incumbent, keeps its reason, and the promoted pointer stays", async () => {
    v2 = await registerCandidate(registry, work, { lineage: L, seed: 5, parentVersion: v1.version, round: 1, collapsed: true });
    await announceCandidate(bus, v2);
    const r = await status(v2.version);
    expect(r.status).toBe("rejected");
    expect(r.statusReason).toMatch(/overconfident wrong rate/);
    expect(r.statusReason).toMatch(/distinct-2 ratio/);
    expect(r.statusReason).toMatch(new RegExp(`vs v${v1.version}`));
    expect((await registry.getPromoted(L))?.version).toBe(v1.version);
    expect(events.some((e) => e.version === v2.version)).toBe(false);
    // The stored evaluation carries the gate it failed, through the RPC (no client reads the monitor's keys).
    const stored = await client.getEvaluation({ lineage: L, version: BigInt(v2.version) });
    expect(stored.gate?.passed).toBe(false);
    expect(stored.gate?.reasons.join("; ")).toMatch(/overconfident wrong rate/);
    expect(Number(stored.evaluation?.version)).toBe(v2.version);
    const ev = await client.evaluate({ lineage: L, version: BigInt(v2.version) });
    expect(ev.overconfidentWrongRate).toBeGreaterThan(0.5);
    expect(ev.alarms.map((a) => a.kind)).toContain("overconfidence");
    expect(ev.perDifficulty.map((d) => d.difficulty)).toEqual([1, 2, 3]);
    // Evaluate's reply is what it stored: GetEvaluation gives it back (a fresh evaluation has no gate yet).
    const again = await client.getEvaluation({ lineage: L, version: BigInt(v2.version) });
    expect(again.evaluation?.evalSetDigest).toBe(ev.evalSetDigest);
    expect(again.evaluation?.accuracy).toBe(ev.accuracy);
    expect(again.gate).toBeUndefined();
    await expect(client.getEvaluation({ lineage: L, version: 99n })).rejects.toMatchObject({ code: Code.NotFound });
  }, 90_000);

  it("promotes a healthy candidate, then Rollback restores the earlier version everywhere", async () => {
    v3 = await registerCandidate(registry, work, { lineage: L, seed: 2, parentVersion: v1.version, round: 2 });
    const res = await client.promote({ lineage: L, version: BigInt(v3.version), reason: "operator" });
    expect(res.promoted).toBe(true);
    expect(res.gate?.passed).toBe(true);
    expect(Number(res.previousVersion)).toBe(v1.version);
    expect(res.evaluation?.evalSetDigest).toMatch(/^[0-9a-f]{64}$/);
    await waitFor(async () => (watched.at(-1) === v3.version ? true : undefined), 10_000, "watch v3");

    const rb = await client.rollback({ lineage: L, toVersion: 0n, reason: "operator says so" });
    expect(Number(rb.previous?.version)).toBe(v3.version);
    expect(rb.previous?.status).toBe(CheckpointStatus.ROLLED_BACK);
    expect(Number(rb.current?.version)).toBe(v1.version);
    expect((await registry.getPromoted(L))?.version).toBe(v1.version);
    expect((await registry.getCheckpoint(L, v3.version))?.status).toBe("rolled_back");
    await waitFor(async () => (watched.at(-1) === v1.version ? true : undefined), 10_000, "watch back to v1");
    await waitFor(async () => (events.some((e) => e.subject === Subjects.promotionAudit("rolled_back") && e.version === v1.version) ? true : undefined), 10_000, "rolled_back event");
    await expect(client.rollback({ lineage: L, toVersion: BigInt(v1.version), reason: "" })).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await expect(client.rollback({ lineage: L, toVersion: 99n, reason: "" })).rejects.toMatchObject({ code: Code.NotFound });
  }, 90_000);

  it("History lists every checkpoint with its status; Lineage lists rounds and sample-id digests root first", async () => {
    const h = await client.history({ lineage: L });
    expect(h.checkpoints.map((c) => [Number(c.version), c.status])).toEqual([
      [v3.version, CheckpointStatus.ROLLED_BACK],
      [v2.version, CheckpointStatus.REJECTED],
      [v1.version, CheckpointStatus.PROMOTED],
    ]);
    expect(Number(h.promotedVersion)).toBe(v1.version);
    expect(h.checkpoints[1]?.metrics.eval_accuracy).toBeTypeOf("number");
    const lin = await client.lineage({ lineage: L, version: BigInt(v3.version) });
    expect(lin.chain.map((c) => Number(c.version))).toEqual([v1.version, v3.version]);
    expect(lin.entries.map((e) => [Number(e.version), e.rounds, e.sampleIdsDigest, Number(e.sampleCount)])).toEqual([
      [v1.version, [0], `digest-of-round-0-v${v1.version}`, 100],
      [v3.version, [2], `digest-of-round-2-v${v3.version}`, 102],
    ]);
    await expect(client.lineage({ lineage: L, version: 42n })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("GetRoundStats serves a round's verifier-judged decision statistics (zeros for a round it never saw)", async () => {
    const ex = getTaskPack("addition").createAnchorSource({ seed: "gate-stats", minDifficulty: 1, maxDifficulty: 2 }).take(2);
    for (const [i, e] of ex.entries()) {
      const d = create(DecisionSchema, {
        sampleId: `rs-${i}`,
        task: "addition",
        accepted: i === 0,
        sample: { id: `rs-${i}`, task: "addition", prompt: e.prompt, completion: i === 0 ? e.answer : `${e.answer}9`, round: 41 },
        votes: [{ sampleId: `rs-${i}`, criticId: "c", approve: i === 0 }],
      });
      await bus.publish(Subjects.decisions("addition"), toBinary(DecisionSchema, d), { msgId: `rs-${i}` });
    }
    const stats = await waitFor(async () => {
      const r = await client.getRoundStats({ task: "addition", round: 41 });
      return r.proposed === 2n ? r : undefined;
    }, 20_000, "round 41 statistics");
    expect(stats).toMatchObject({ task: "addition", round: 41, proposed: 2n, accepted: 1n, correctProposed: 1n, correctAccepted: 1n, votes: 2n, agreeingVotes: 2n });
    expect(await client.getRoundStats({ task: "addition", round: 42 })).toMatchObject({ proposed: 0n, accepted: 0n });
    await expect(client.getRoundStats({ task: "", round: 1 })).rejects.toMatchObject({ code: Code.InvalidArgument });
  }, 60_000);

  it("gating and consensus policies are versioned with compare-and-set, and consensus workers read the same key", async () => {
    const p0 = await client.getPolicy({});
    const p1 = await client.setPolicy({ policy: { ...p0, minAccuracyDelta: 0.05, note: "stricter" }, expectedVersion: 0n });
    expect(Number(p1.version)).toBe(Number(p0.version) + 1);
    expect((await client.getPolicy({})).minAccuracyDelta).toBeCloseTo(0.05);
    await expect(client.setPolicy({ policy: { ...p1, minAccuracyDelta: 0 }, expectedVersion: 99n })).rejects.toMatchObject({ code: Code.Aborted });
    await expect(client.setPolicy({ policy: { ...p1, maxDifficultyRegression: -1 } })).rejects.toMatchObject({ code: Code.InvalidArgument });

    await expect(client.getConsensusPolicy({ name: "" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(client.setConsensusPolicy({ policy: { name: "default", kind: ConsensusKind.K_OF_N, k: 2 } })).rejects.toMatchObject({ code: Code.InvalidArgument });
    const c1 = await client.setConsensusPolicy({ policy: { name: "default", kind: ConsensusKind.K_OF_N, k: 2, critics: ["rules", "novelty", "likelihood"], timeoutMs: 30_000n } });
    expect(Number(c1.version)).toBe(1);
    const c2 = await client.setConsensusPolicy({ policy: { name: "default", kind: ConsensusKind.K_OF_N, k: 3, critics: ["rules", "novelty", "likelihood"], timeoutMs: 30_000n }, expectedVersion: 1n });
    expect(Number(c2.version)).toBe(2);
    const stored = await (await openPolicyStore(bus)).get("default");
    expect(stored?.version).toBe(2);
    expect(stored?.kind).toBe("k_of_n");
    expect(stored?.k).toBe(3);
    await expect(client.setConsensusPolicy({ policy: { name: "default", kind: ConsensusKind.K_OF_N, k: 2, critics: ["rules", "novelty", "likelihood"], timeoutMs: 30_000n }, expectedVersion: 1n })).rejects.toMatchObject({ code: Code.Aborted });
    // The stricter gate now rejects a candidate that only ties the incumbent.
    const v4 = await registerCandidate(registry, work, { lineage: L, seed: 1, parentVersion: v1.version, round: 3 });
    const res = await client.promote({ lineage: L, version: BigInt(v4.version) });
    expect(res.promoted).toBe(false);
    expect(res.gate?.reasons.join("\n")).toMatch(/delta 0\.000 < 0\.05/);
    expect((await registry.getCheckpoint(L, v4.version))?.status).toBe("rejected");
    await client.setPolicy({ policy: { ...p1, minAccuracyDelta: -0.02 } });
  }, 60_000);

  it("rolls back automatically when the promoted checkpoint's live evaluation regresses past the policy", async () => {
    // An operator forces the collapsed candidate through; the live check catches it.
    const forced = await client.promote({ lineage: L, version: BigInt(v2.version), force: true, reason: "experiment" });
    expect(forced.promoted).toBe(true);
    expect(forced.checkpoint?.statusReason).toMatch(/forced past failed gate/);
    expect((await registry.getPromoted(L))?.version).toBe(v2.version);
    let worker: ModelWorker | undefined;
    try {
      worker = createModelWorker();
      const live = await createMonitor({ bus, registry, host: worker, defaultTask: "addition", limitPerDifficulty: 6, difficulties: [1, 2, 3] });
      const out = await live.checkPromoted(L);
      expect(out.rolledBack).toBe(true);
      expect(out.reasons.join("\n")).toMatch(/overconfident/);
    } finally {
      await worker?.close();
    }
    expect((await registry.getPromoted(L))?.version).toBe(v1.version);
    expect((await registry.getCheckpoint(L, v2.version))?.status).toBe("rolled_back");
    expect((await registry.getCheckpoint(L, v2.version))?.statusReason).toMatch(/automatic/);
  }, 90_000);

  it("rejects a candidate whose files are not a loadable model, with the reason, and keeps serving", async () => {
    const dir = join(work, "not-a-model");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "config.json"), JSON.stringify({ model_type: "nonsense" }));
    await writeFile(join(dir, "model.safetensors"), "not safetensors");
    const version = await registry.allocateVersion("broken");
    const record: CheckpointRecord = { lineage: "broken", version, parentVersion: 0, round: 0, status: "candidate", statusReason: "", files: await listCheckpointFiles(dir), manifest: {}, metrics: {}, createdAt: new Date().toISOString() };
    await registry.putCheckpoint(record, dir);
    await announceCandidate(bus, record);
    const r = await waitFor(async () => {
      const x = await registry.getCheckpoint("broken", version);
      return x && x.status !== "candidate" ? x : undefined;
    }, 60_000, "broken candidate judged");
    expect(r.status).toBe("rejected");
    expect(r.statusReason).toMatch(/could not be evaluated/);
    expect(await registry.getPromoted("broken")).toBeUndefined();
    expect(Number((await client.history({ lineage: L })).promotedVersion)).toBe(v1.version);
  }, 90_000);

  it("two forced promotions of a lineage's first checkpoint at once both succeed (a base import repeated after a crash)", async () => {
    const base = await registerCandidate(registry, work, { lineage: "imported", seed: 7, parentVersion: 0, round: 0 });
    const promote = () => client.promote({ lineage: "imported", version: BigInt(base.version), force: true, reason: "base import" });
    const [a, b] = await Promise.all([promote(), promote()]);
    expect([a.promoted, b.promoted]).toEqual([true, true]);
    expect((await registry.getPromoted("imported"))?.version).toBe(base.version);
  }, 60_000);
});
