// The trainer on a real nats-server: intake of decisions.addition (only accepted samples, deduplicated,
// durable), rounds mixing exactly those samples with anchor data at the configured ratio in every batch
// (manifest + mix log), replace vs accumulate, NaN abort without candidate, FetchCheckpoint over gRPC.
import { createHash } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, consumerLag, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { loadLoraAdapter, loadModel } from "../src/engine/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { CheckpointRefSchema, type CheckpointRef } from "../src/gen/autodidact/v1/checkpoint_pb.js";
import { RoundEventSchema, TrainerService, type RoundEvent } from "../src/gen/autodidact/v1/trainer_pb.js";
import { AdaptationMode, DataMix } from "../src/gen/autodidact/v1/training_pb.js";
import { startService, type RunningService, type ServiceConfig } from "../src/platform/host/index.js";
import { checkpointDigest, createRegistry, type Registry } from "../src/domain/registry/index.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import { startMonitor } from "./monitor-support.js";
import { createClient } from "../src/platform/rpc/index.js";
import { receiveCheckpoint, trainerOptions, trainerService } from "../services/trainer/index.js";
import { mixLogPath, parseMixLog, problems, publishDecision, registerBase, registerPoisonedBase, waitFor } from "./trainer-support.js";
import { ensureMeshTopology, Streams, Subjects } from "../src/domain/topology/index.js";

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

describe("trainer rounds", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  let dataDir: string;
  let registry: Registry;
  let trainer: RunningService;
  let client: ReturnType<typeof createClient<typeof TrainerService>>;
  const candidates: { ref: CheckpointRef; msgId: string | undefined }[] = [];
  const roundEvents: RoundEvent[] = [];
  const accepted = problems("acc", 10);
  const rejected = problems("rej", 4);
  const later = problems("later", 6);

  const round = async (req: Parameters<typeof client.startRound>[0]): Promise<{ events: RoundEvent[]; error?: AutodidactError }> => {
    const events: RoundEvent[] = [];
    try {
      for await (const e of client.startRound(req)) events.push(e);
      return { events };
    } catch (err) {
      return { events, error: err as AutodidactError };
    }
  };
  const report = (events: RoundEvent[]) => {
    const last = events[events.length - 1];
    if (last?.event.case !== "report") throw new Error(`round did not end with a report: ${JSON.stringify(last?.event.case)}`);
    return last.event.value;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "trainer-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "trainer-"));
    dataDir = join(dir, "data");
    registry = createRegistry(bus, { cacheDir: join(dir, "test-cache") });
    expect(await registerBase(registry, "main", join(dir, "base"), 1)).toBe(1);
    await consume(bus, { stream: Streams.Checkpoints, durable: "test-candidates", filterSubject: Subjects.checkpoints("candidate") }, async (m) => {
      candidates.push({ ref: fromBinary(CheckpointRefSchema, m.data), msgId: m.msgId });
    });
    await consume(bus, { stream: Streams.Checkpoints, durable: "test-rounds", filterSubject: Subjects.checkpoints("round") }, async (m) => {
      roundEvents.push(fromBinary(RoundEventSchema, m.data));
    });
    const parsed = defineOptions({ ...serviceOptions, ...trainerOptions }).parse(
      ["--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn", "--data-dir", dataDir, "--batch-size", "8", "--anchor-ratio", "0.25", "--max-reuse", "1", "--lr", "0.01"],
      {},
    );
    trainer = await startService(trainerService, parsed.values as unknown as ServiceConfig<typeof trainerOptions>);
    client = createClient(TrainerService, trainer.server.address);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await trainer?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("trains on exactly the accepted samples plus anchor data at the configured ratio in every batch; rejected ones never enter", async () => {
    for (const [i, s] of accepted.entries()) {
      await publishDecision(bus, s, true);
      if (i < rejected.length) await publishDecision(bus, rejected[i]!, false);
    }
    // A second accepted decision for an already accepted sample (another message id) is deduplicated.
    await publishDecision(bus, { ...accepted[0]!, id: accepted[0]!.id }, true);
    await bus.publish(Subjects.decisions("addition"), new TextEncoder().encode("not a decision"), { msgId: "garbage-1" });
    await waitFor(async () => (await consumerLag(bus, Streams.Decisions, "trainer")).total === 0, 20_000, "intake to drain");
    const lines = (await readFile(join(dataDir, "training-set.jsonl"), "utf8")).split("\n").filter((l) => l.trim() !== "");
    const stored = lines.map((l) => JSON.parse(l) as { sampleId: string; votes: { criticId: string; approve: boolean }[] });
    expect(stored.map((s) => s.sampleId).sort()).toEqual(accepted.map((s) => s.id).sort());
    expect(stored[0]!.votes.map((v) => v.criticId)).toEqual(["critic-a", "critic-b"]);

    const { events, error } = await round({ task: "addition", training: { steps: 0n } });
    expect(error).toBeUndefined();
    const phases = new Set(events.flatMap((e) => (e.event.case === "progress" ? [e.event.value.phase] : [])));
    expect([...phases]).toEqual(expect.arrayContaining(["collect", "mix", "train", "checkpoint", "publish"]));
    const trainLosses = events.flatMap((e) => (e.event.case === "progress" && e.event.value.phase === "train" ? [e.event.value.loss] : []));
    expect(trainLosses.length).toBeGreaterThan(0);
    expect(trainLosses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
    const rep = report(events);
    expect(rep.round).toBe(1);
    expect(rep.candidateVersion).toBe(2n);
    expect(rep.baseVersion).toBe(1n);

    const record = (await registry.getCheckpoint("main", 2))!;
    expect(record.status).toBe("candidate");
    expect(record.parentVersion).toBe(1);
    const m = record.manifest as {
      mix: { syntheticCount: number; realCount: number; realRatio: number; anchorRatio: number };
      sampleIdsDigest: string;
      sampleCount: number;
      lossCurve: { loss: number }[];
      hyperparameters: Record<string, string>;
      files: { name: string; sha256: string }[];
      round: number;
      version: number;
      parentVersion: number;
    };
    expect([m.version, m.parentVersion, m.round]).toEqual([2, 1, 1]);
    expect(m.sampleIdsDigest).toBe(sha256(accepted.map((s) => s.id).sort().join("\n")));
    expect(m.sampleCount).toBe(accepted.length);
    expect(m.hyperparameters.mode).toBe("lora");
    expect(m.lossCurve.map((p) => p.loss)).toEqual(trainLosses);
    expect(m.files.map((f) => f.name)).toEqual(expect.arrayContaining(["model.safetensors", "config.json", "adapter/adapter_model.safetensors", "mix-log.jsonl"]));
    // The mix log: every batch holds ≥ 25 % anchor data; synthetic ids are exactly the accepted ones.
    const logText = await readFile(mixLogPath(dataDir, 1, "main"), "utf8");
    const batches = parseMixLog(logText);
    expect(batches.length).toBe(m.lossCurve.length);
    for (const b of batches) {
      expect(b.sampleIds.length + b.anchorIds.length).toBe(8);
      expect(b.anchorIds.length / 8).toBeGreaterThanOrEqual(0.25);
    }
    const used = batches.flatMap((b) => b.sampleIds);
    expect(new Set(used)).toEqual(new Set(accepted.map((s) => s.id)));
    for (const r of rejected) expect(used).not.toContain(r.id);
    expect(m.mix.syntheticCount).toBe(used.length);
    expect(m.mix.realCount).toBe(batches.reduce((n, b) => n + b.anchorIds.length, 0));
    expect(m.mix.realRatio).toBeGreaterThanOrEqual(0.25);
    // The copy inside the checkpoint is the same log, and its digest is in the record.
    const copy = record.files.find((f) => f.name === "mix-log.jsonl")!;
    expect(copy.sha256).toBe(sha256(logText));

    await waitFor(() => candidates.length >= 1, 10_000, "candidate event");
    expect(candidates[0]!.msgId).toBe("main@2");
    expect(candidates[0]!.ref.version).toBe(2n);
    expect(candidates[0]!.ref.parentVersion).toBe(1n);
    expect(candidates[0]!.ref.round).toBe(1);
  }, 120_000);

  it("the trainer's candidate CheckpointRef and the monitor's for the same checkpoint are the same (digest and uri)", async () => {
    await waitFor(() => candidates.length >= 1, 10_000, "candidate event");
    const fromTrainer = candidates.find((c) => c.ref.version === 2n)!.ref;
    const monitorWork = await mkdtemp(join(tmpdir(), "trainer-monitor-"));
    const monitor = await startMonitor(nats.url, monitorWork, ["--no-consume-candidates", "--no-round-stats", "--dashboard-port", "-1"]);
    const monitorClient = createClient(MonitorService, monitor.server.address);
    try {
      const fromMonitor = (await monitorClient.history({ lineage: "main" })).checkpoints.find((c) => c.version === 2n)!;
      const chain = (await monitorClient.lineage({ lineage: "main", version: 2n })).chain.at(-1)!;
      for (const ref of [fromMonitor, chain]) {
        expect(ref.digest).toBe(fromTrainer.digest);
        expect(ref.uri).toBe(fromTrainer.uri);
        expect(ref.task).toBe(fromTrainer.task);
      }
      // One definition: SHA-256 of the record's canonical { files, manifest }; the uri is the files' object prefix.
      const record = (await registry.getCheckpoint("main", 2))!;
      expect(fromTrainer.digest).toBe(checkpointDigest(record));
      expect(fromTrainer.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(fromTrainer.uri).toBe("nats-obj://checkpoints/main/2/");
      expect(fromTrainer.task).toBe("addition");
      // The round's report names the same checkpoint the same way.
      const reportOf2 = () => roundEvents.flatMap((e) => (e.event.case === "report" && e.event.value.candidateVersion === 2n ? [e.event.value] : []))[0];
      await waitFor(() => reportOf2() !== undefined, 10_000, "round report");
      const rep = reportOf2();
      expect(rep?.candidate?.digest).toBe(fromTrainer.digest);
      expect(rep?.candidate?.uri).toBe(fromTrainer.uri);
    } finally {
      monitorClient.close();
      await monitor.stop();
      await rm(monitorWork, { recursive: true, force: true });
    }
  }, 60_000);

  it("replace trains on the newest accepted samples only; accumulate on all of them; a typed TrainingConfig is trained with and recorded", async () => {
    for (const s of later) await publishDecision(bus, s, true);
    await publishDecision(bus, problems("rej2", 1)[0]!, false);
    await waitFor(async () => (await consumerLag(bus, Streams.Decisions, "trainer")).total === 0, 20_000, "intake to drain");

    const training = { mix: DataMix.REPLACE, steps: 8n, maxReuse: 100, learningRate: 0.02, warmupSteps: 2, decayShare: 0.5, weightDecay: 0.01, maxGradNorm: 1, seed: "typed" };
    const replaced = await round({ task: "addition", training });
    expect(replaced.error).toBeUndefined();
    expect(report(replaced.events).round).toBe(2);
    const rIds = new Set(parseMixLog(await readFile(mixLogPath(dataDir, 2, "main"), "utf8")).flatMap((b) => b.sampleIds));
    expect(rIds).toEqual(new Set(later.map((s) => s.id)));
    // Every set field took effect (unset ones are the flags: batch 8, anchor ratio 0.25, LoRA 4/8) ...
    const typed = (await registry.getCheckpoint("main", 3))!.manifest as { hyperparameters: Record<string, string>; lossCurve: { learningRate: number }[] };
    expect(typed.hyperparameters).toMatchObject({
      mix: "replace",
      steps: "8",
      max_reuse: "100",
      lr: "0.02",
      warmup_steps: "2",
      decay_share: "0.5",
      weight_decay: "0.01",
      max_grad_norm: "1",
      seed: "typed:addition:round-2:main",
      batch_size: "8",
      anchor_ratio: "0.25",
      mode: "lora",
      lora_rank: "4",
      lora_alpha: "8",
    });
    // ... including the schedule: 2 warmup steps, then the peak, then the linear decay over the last half to 1 %.
    const lrs = typed.lossCurve.map((c) => c.learningRate);
    const expected = [0.01, 0.02, 0.02, 0.02, 0.02 - 0.0198 / 4, 0.02 - 0.0198 / 2, 0.02 - (0.0198 * 3) / 4, 0.0002];
    expect(lrs.length).toBe(expected.length);
    lrs.forEach((lr, i) => expect(lr).toBeCloseTo(expected[i]!, 8));

    const accumulated = await round({ task: "addition" });
    expect(accumulated.error).toBeUndefined();
    const aBatches = parseMixLog(await readFile(mixLogPath(dataDir, 3, "main"), "utf8"));
    expect(new Set(aBatches.flatMap((b) => b.sampleIds))).toEqual(new Set([...accepted, ...later].map((s) => s.id)));
    for (const b of aBatches) expect(b.anchorIds.length).toBeGreaterThanOrEqual(2);
    const rec = (await registry.getCheckpoint("main", 4))!;
    expect((rec.manifest as { mix: { mode: string } }).mix.mode).toBe("accumulate");
    expect((await registry.getCheckpoint("main", 3))!.manifest).toMatchObject({ mix: { mode: "replace" } });
  }, 120_000);

  it("a NaN loss (poisoned base) aborts the round with a clear event and no candidate", async () => {
    expect(await registerPoisonedBase(registry, "poisoned", join(dir, "poisoned"))).toBe(1);
    const before = (await registry.listCheckpoints()).length;
    const candidatesBefore = candidates.length;
    const { events, error } = await round({ task: "addition", lineage: "poisoned", training: { steps: 6n } });
    expect(error).toBeInstanceOf(AutodidactError);
    expect(error!.code).toBe(Code.Aborted);
    const last = events[events.length - 1]!;
    expect(last.event.case).toBe("progress");
    if (last.event.case === "progress") {
      expect(last.event.value.phase).toBe("aborted");
      expect(last.event.value.message).toMatch(/round 4 aborted on poisoned: .*loss is NaN/);
    }
    await waitFor(() => roundEvents.some((e) => e.event.case === "progress" && e.event.value.phase === "aborted"), 10_000, "aborted round event");
    expect((await registry.listCheckpoints()).length).toBe(before);
    expect(await registry.getCheckpoint("poisoned", 2)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(candidates.length).toBe(candidatesBefore);
    // The service keeps serving: bad input gets a clear status naming the field, and the next round works.
    const bad = await round({ task: "addition", training: { batchSize: 1 } });
    expect(bad.error?.code).toBe(Code.InvalidArgument);
    expect(bad.error?.message).toMatch(/training\.batch_size must be an integer in \[2, 4096\], got 1/);
    const badEnum = await round({ task: "addition", training: { mode: 7 as AdaptationMode } });
    expect(badEnum.error?.code).toBe(Code.InvalidArgument);
    expect(badEnum.error?.message).toMatch(/training\.mode 7 is not an AdaptationMode/);
    const next = await round({ task: "addition", training: { steps: 2n } });
    expect(next.error).toBeUndefined();
    expect(report(next.events).candidateVersion).toBe(5n);
  }, 120_000);

  it("an exploding gradient aborts the round without a candidate; full fine-tuning is an option", async () => {
    const before = (await registry.listCheckpoints("main")).length;
    const exploding = await round({ task: "addition", training: { steps: 3n, abortGradNorm: 1e-9 } });
    expect(exploding.error?.code).toBe(Code.Aborted);
    expect(exploding.error?.message).toMatch(/gradient norm .* exceeds 1e-9/);
    expect((await registry.listCheckpoints("main")).length).toBe(before);

    // A crash after the registry allocated this round's version but before the journal recorded it:
    // the round's allocation comes back (no gap in the lineage's versions).
    const nextRound = 1 + Math.max(...(await registry.listCheckpoints()).map((r) => r.round), 6);
    expect(await registry.allocateVersion("main", `trainer:addition:round-${nextRound}`)).toBe(before + 1);
    const full = await round({ task: "addition", round: nextRound, training: { steps: 2n, mode: AdaptationMode.FULL } });
    expect(full.error).toBeUndefined();
    const rep = report(full.events);
    const rec = (await registry.getCheckpoint("main", Number(rep.candidateVersion)))!;
    expect(rec.version).toBe(before + 1);
    expect(rec.parentVersion).toBe(1);
    expect(rec.manifest).toMatchObject({ adaptation: "full", hyperparameters: { mode: "full" } });
    expect(rec.files.some((f) => f.name.startsWith("adapter/"))).toBe(false);
    const base = await loadModel(await registry.materialize("main", 1));
    const tuned = await loadModel(await registry.materialize("main", rec.version));
    const changed = Object.keys(base.params).filter((k) => base.params[k]!.data.some((v, i) => v !== tuned.params[k]!.data[i]));
    expect(changed.length).toBeGreaterThan(Object.keys(base.params).length / 2); // full: (nearly) every tensor moves
  }, 120_000);

  it("FetchCheckpoint streams a checkpoint in chunks that reassemble to the registry digests and load in the engine", async () => {
    const record = (await registry.getCheckpoint("main", 2))!;
    const out = join(dir, "fetched");
    const files = await receiveCheckpoint(client.fetchCheckpoint({ version: 2n, lineage: "main", chunkBytes: 4096 }), out);
    expect(files.map((f) => [f.name, f.sha256]).sort()).toEqual(record.files.map((f) => [f.name, f.sha256]).sort());
    const model = await loadModel(out);
    expect(model.metadata.version).toBe("2");
    expect(model.config.numLayers).toBe(1);
    // LoRA on the promoted parent: the merged model differs from main@1 exactly in the adapted projections.
    const base = await loadModel(await registry.materialize("main", 1));
    const changed = Object.keys(base.params).filter((k) => base.params[k]!.data.some((v, i) => v !== model.params[k]!.data[i]));
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((k) => /q_proj|v_proj/.test(k))).toBe(true);
    const adapter = await loadLoraAdapter(join(out, "adapter"));
    expect(Object.keys(adapter.adapters ?? adapter).length).toBeGreaterThan(0);
    // Chunking: a file larger than the chunk arrives in several chunks, with the digest only on the last.
    const chunks = [];
    for await (const c of client.fetchCheckpoint({ version: 2n, files: ["model.safetensors"], chunkBytes: 1024 })) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.slice(0, -1).every((c) => c.sha256 === "" && !c.last)).toBe(true);
    expect(chunks[chunks.length - 1]!.sha256).toBe(record.files.find((f) => f.name === "model.safetensors")!.sha256);
    const missing = await receiveCheckpoint(client.fetchCheckpoint({ version: 99n }), join(dir, "nope")).catch((e: unknown) => e);
    expect((missing as AutodidactError).code).toBe(Code.NotFound);
  }, 60_000);

  it("hardest_share fills that share of every batch's synthetic slots with the hardest accepted length while it lasts", async () => {
    const long = Array.from({ length: 6 }, (_, i) => {
      const a = 101 + 37 * i;
      const b = 205 + 53 * i;
      return { id: `long-${i}`, prompt: `${a}+${b}=`, completion: String(a + b).split("").reverse().join(""), difficulty: 3 };
    });
    for (const s of long) await publishDecision(bus, s, true);
    await waitFor(async () => (await consumerLag(bus, Streams.Decisions, "trainer")).total === 0, 20_000, "intake to drain");
    const focused = await round({ task: "addition", training: { hardestShare: 0.5 } });
    expect(focused.error).toBeUndefined();
    const n = report(focused.events).round;
    const batches = parseMixLog(await readFile(mixLogPath(dataDir, n, "main"), "utf8"));
    const longIds = new Set(long.map((s) => s.id));
    // Batches of 8: 2 anchors, 6 synthetic slots, 3 of them for the 3-digit samples; max reuse 1 runs
    // the 6 of them out after two batches, the 16 two-digit ones fill the rest of the pass.
    expect(batches.map((b) => b.sampleIds.filter((id) => longIds.has(id)).length)).toEqual([3, 3, 0, 0]);
    expect(new Set(batches.flatMap((b) => b.sampleIds)).size).toBe(accepted.length + later.length + long.length);
    const rec = (await registry.getCheckpoint("main", Number(report(focused.events).candidateVersion)))!;
    expect(rec.manifest).toMatchObject({ hyperparameters: { hardest_share: "0.5" }, mix: { syntheticByDifficulty: { 2: 16, 3: 6 } } });
    const bad = await round({ task: "addition", training: { hardestShare: 1 } });
    expect(bad.error?.code).toBe(Code.InvalidArgument);
    expect(bad.error?.message).toMatch(/training\.hardest_share must be a number in \[0, 1\), got 1/);
  }, 120_000);

  it("a round behind another says it is queued at once; bad settings are refused without waiting for the queue", async () => {
    const first = client.startRound({ task: "addition", training: { steps: 200n, maxReuse: 1000 } })[Symbol.asyncIterator]();
    const firstEvents: RoundEvent[] = [];
    // Until the first round trains, so it still runs while the next requests arrive.
    for (;;) {
      const next = await first.next();
      if (next.done) throw new Error("the first round ended before training");
      firstEvents.push(next.value);
      if (next.value.event.case === "progress" && next.value.event.value.phase === "train") break;
    }
    const second = client.startRound({ task: "addition", training: { steps: 2n } })[Symbol.asyncIterator]();
    const head = await second.next();
    expect(head.done).toBe(false);
    expect(head.value?.event).toMatchObject({ case: "progress", value: { phase: "queued", message: "waiting for 1 round ahead of this one" } });
    const bad = await round({ task: "addition", training: { learningRate: 0 } });
    expect(bad.error?.code).toBe(Code.InvalidArgument);
    expect(bad.error?.message).toMatch(/training\.learning_rate must be a number in \(0, 10\], got 0/);
    expect(bad.events).toEqual([]);
    for (let n = await first.next(); !n.done; n = await first.next()) firstEvents.push(n.value);
    const secondEvents: RoundEvent[] = [head.value!];
    for (let n = await second.next(); !n.done; n = await second.next()) secondEvents.push(n.value);
    expect(report(secondEvents).round).toBe(report(firstEvents).round + 1);
  }, 120_000);
});
