import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type ConsumerHandle, type NatsServerProcess } from "../src/platform/bus/index.js";
import { DecisionSchema } from "../src/gen/autodidact/v1/consensus_pb.js";
import { getTaskPack } from "../src/domain/tasks/index.js";
import { createMonitor, followRoundStats, readRoundStats, roundRates } from "../services/monitor/index.js";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { createModelWorker } from "../src/engine/index.js";
import { createRegistry } from "../src/domain/registry/index.js";
import { registerCandidate, tmpdir, waitFor } from "./monitor-support.js";
import { ensureMeshTopology, Subjects } from "../src/domain/topology/index.js";

describe("per-round decision statistics judged by the verifier", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let handle: ConsumerHandle;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "round-stats-test" });
    await ensureMeshTopology(bus);
    handle = await followRoundStats(bus);
  }, 30_000);
  afterAll(async () => {
    await handle?.stop();
    await bus?.close();
    await nats?.stop();
  });

  it("counts acceptance, label accuracy of accepted vs proposed, and critic agreement per round", async () => {
    const pack = getTaskPack("addition");
    const problems = pack.createAnchorSource({ seed: "stats", minDifficulty: 1, maxDifficulty: 3 }).take(6);
    // Round 1: 6 proposed; accepted = the 3 correct + 1 wrong; 2 wrong rejected. Critics: 3 votes each.
    const plan = [
      { correct: true, accepted: true, approvals: 3 },
      { correct: true, accepted: true, approvals: 3 },
      { correct: true, accepted: true, approvals: 2 },
      { correct: false, accepted: true, approvals: 2 },
      { correct: false, accepted: false, approvals: 0 },
      { correct: false, accepted: false, approvals: 1 },
    ];
    for (const [i, p] of plan.entries()) {
      const ex = problems[i]!;
      const d = create(DecisionSchema, {
        sampleId: `s${i}`,
        task: "addition",
        accepted: p.accepted,
        sample: { id: `s${i}`, task: "addition", prompt: ex.prompt, completion: p.correct ? ex.answer : `${ex.answer}7`, round: 1 },
        votes: [0, 1, 2].map((c) => ({ sampleId: `s${i}`, criticId: `c${c}`, approve: c < p.approvals })),
      });
      await bus.publish(Subjects.decisions("addition"), toBinary(DecisionSchema, d), { msgId: `s${i}` });
    }
    const stats = await waitFor(async () => {
      const s = (await readRoundStats(bus, "addition")).get(1);
      return s && s.proposed === 6 ? s : undefined;
    }, 20_000, "stats of round 1");
    expect(stats).toMatchObject({ proposed: 6, accepted: 4, correctProposed: 3, correctAccepted: 3, votes: 18 });
    const rates = roundRates(stats);
    expect(rates.acceptanceRate).toBeCloseTo(4 / 6);
    expect(rates.labelAccuracyAccepted).toBeCloseTo(3 / 4);
    expect(rates.labelAccuracyProposed).toBeCloseTo(3 / 6);
    // Agreeing votes: 3+3+2+2 on accepted, 3+2 on rejected = 15 of 18.
    expect(rates.criticAgreement).toBeCloseTo(15 / 18);

    // A candidate trained on round 1 (its manifest lists sample ids only) gets the round's label accuracy.
    const work = await mkdtemp(join(tmpdir(), "round-stats-"));
    const worker = createModelWorker();
    try {
      const registry = createRegistry(bus, { cacheDir: join(work, "cache") });
      const rec = await registerCandidate(registry, work, { lineage: "main", seed: 1, parentVersion: 0, round: 1 });
      const monitor = await createMonitor({ bus, registry, host: worker, defaultTask: "addition", limitPerDifficulty: 2, difficulties: [1] });
      const ev = await monitor.evaluate("main", rec.version);
      expect(ev.labelAccuracy).toBeCloseTo(3 / 4);
      expect(ev.labelAccuracyProposed).toBeCloseTo(3 / 6);
    } finally {
      await worker.close();
      await rm(work, { recursive: true, force: true });
    }
  }, 60_000);
});
