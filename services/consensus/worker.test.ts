// The consensus worker against a real nats-server: exactly one decision per sample when workers race
// over the same verdicts, share a durable across a nats-server restart, hand over mid-stream, or one
// of them stores a decision it cannot publish.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { createTestTelemetry, type TestTelemetry } from "../../src/platform/telemetry/index.js";
import { DecisionOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { createConsensusPolicy, criticStats, evaluateVotes, judgedSampleFromDecision, policyFromProto, policyToSpec } from "../../src/domain/consensus/index.js";
import { createConsensusWorker, DecisionAudit, type ConsensusWorker } from "./index.js";
import { critics, policy, publishers, quick, readDecisions } from "./test-support.js";
import { ensureMeshTopology, Subjects } from "../../src/domain/topology/index.js";

let server: NatsServerProcess;
let bus: Bus;
let telemetry: TestTelemetry;
const workers: ConsensusWorker[] = [];
const { publishSample, publishVerdict } = publishers(() => bus);

beforeAll(async () => {
  telemetry = createTestTelemetry("consensus-worker-test");
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "consensus-worker-test" });
  await ensureMeshTopology(bus);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await bus?.close();
  await server?.stop();
  await telemetry?.shutdown();
});

/** Deterministic shuffle (the test must not depend on Math.random to be reproducible). */
function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

describe("consensus worker against a real nats-server", () => {
  it("two workers racing over the same verdicts publish exactly one decision per sample", async () => {
    const task = "race";
    // Separate durables: both workers see every message, so every sample is really contested.
    const w1 = await createConsensusWorker({ bus, policyProvider: () => policy, tasks: [task], id: "w1", verdictsDurable: "race-v1", samplesDurable: "race-s1", sweepIntervalMs: 50 });
    const w2 = await createConsensusWorker({ bus, policyProvider: () => policy, tasks: [task], id: "w2", verdictsDurable: "race-v2", samplesDurable: "race-s2", sweepIntervalMs: 50 });
    workers.push(w1, w2);
    // Sees every decision published, including a second one the stream would drop as a duplicate.
    const audit = await DecisionAudit.start(bus, Subjects.decisions(task));

    const n = 40;
    const plan = new Map<string, Array<[string, boolean]>>();
    const sends: Array<() => Promise<unknown>> = [];
    for (let i = 0; i < n; i++) {
      const id = `race-${i}`;
      sends.push(() => publishSample(task, id));
      // Vote patterns: unanimous, split, rejections, a silent critic (timeout), a changed vote.
      const pattern: Array<[string, boolean]> =
        i % 5 === 0 ? [["critic-a", true], ["critic-b", true], ["critic-c", true]]
        : i % 5 === 1 ? [["critic-a", true], ["critic-b", false], ["critic-c", true]]
        : i % 5 === 2 ? [["critic-a", false], ["critic-b", false], ["critic-c", true]]
        : i % 5 === 3 ? [["critic-a", true]] // only one vote: decided by the timeout
        : [["critic-a", false], ["critic-b", true], ["critic-c", true]];
      plan.set(id, pattern);
      for (const [critic, approve] of pattern) {
        sends.push(() => publishVerdict(task, id, critic, approve));
        // A redelivered copy under another msg id (duplicate at the consensus level).
        if (i % 2 === 0) sends.push(() => publishVerdict(task, id, critic, approve, ".again"));
      }
      // critic-a changes its mind on every 4th pattern: ignored.
      if (i % 5 === 4) sends.push(() => publishVerdict(task, id, "critic-a", true, ".changed"));
    }
    // Verdicts and samples in a scrambled order (some verdicts before their sample).
    for (const send of shuffle(sends, 7)) await send();

    const decisions = await readDecisions(bus, task, n);
    await w1.stop();
    await w2.stop();

    const perSample = new Map<string, number>();
    for (const d of decisions) perSample.set(d.sampleId, (perSample.get(d.sampleId) ?? 0) + 1);
    expect(perSample.size).toBe(n);
    expect([...perSample.values()].every((c) => c === 1)).toBe(true);
    // What was published, not what the stream kept: one decision per sample, the one the ledger holds.
    await audit.stop();
    const published = audit.report(plan.keys());
    expect(published.decidedTwice, published.examples.join("; ")).toBe(0);
    expect([published.samples, published.unseen, published.disconnects]).toEqual([n, 0, 0]);
    const ledger = await audit.compareWithLedger(bus);
    expect(ledger.notInLedger, ledger.examples.join("; ")).toBe(0);
    expect(ledger.samples).toBe(n);
    // The CAS gate, not server-side de-duplication, made it exactly once: the workers together
    // won exactly n transitions and published exactly n messages.
    const s1 = w1.stats();
    const s2 = w2.stats();
    expect(s1.decided + s2.decided).toBe(n);
    expect(s1.published + s2.published).toBe(n);
    expect(await telemetry.metricValue("autodidact.consensus.decisions", { task })).toBe(n);
    // Each worker's agreement window holds the decisions it published: together, all of them.
    const windows = [w1.agreement(task), w2.agreement(task)];
    expect(windows.reduce((acc, r) => acc + (r?.samples ?? 0), 0)).toBe(n);
    const combined = criticStats(decisions.map(judgedSampleFromDecision));
    const votesInWindows = (critic: string): number =>
      windows.reduce((acc, r) => acc + (r?.critics.find((c) => c.criticId === critic)?.votes ?? 0), 0);
    for (const c of combined) expect(votesInWindows(c.criticId)).toBe(c.votes);

    for (const d of decisions) {
      const pattern = plan.get(d.sampleId) ?? [];
      // Stored with the votes it was decided on (one per critic, all from the plan) and the sample;
      // those votes alone justify the decision (an early decision may precede the last vote).
      const voters = d.votes.map((v) => v.criticId);
      expect(new Set(voters).size).toBe(voters.length);
      for (const c of voters) expect(pattern.map(([x]) => x)).toContain(c);
      if (d.outcome !== DecisionOutcome.TIMEOUT) {
        const own = evaluateVotes(policy, d.votes.map((v) => ({ criticId: v.criticId, approve: v.approve })), { now: 0, firstVoteAt: 0 });
        expect(own.state === "decided" && own.accepted).toBe(d.accepted);
      }
      expect(d.sample?.id).toBe(d.sampleId);
      expect(d.task).toBe(task);
      expect(["w1", "w2"]).toContain(d.deciderId);
      expect(d.policy?.version).toBe(3n);
      expect(policyFromProto(d.policy?.spec ?? ({} as never)).hash).toBe(policy.hash);
      // The decision is the one the pure rule gives for those votes.
      const expected = evaluateVotes(policy, pattern.map(([criticId, approve]) => ({ criticId, approve })), { now: 1e12, firstVoteAt: 0 });
      expect(expected.state).toBe("decided");
      if (expected.state === "decided") expect(d.accepted).toBe(expected.accepted);
      if (pattern.length === 1) {
        expect(d.outcome).toBe(DecisionOutcome.TIMEOUT);
        expect(d.accepted).toBe(false);
      }
    }
  });

  it("workers sharing one durable keep deciding each sample once across a nats-server restart", async () => {
    const task = "restart";
    // A timeout far longer than the outage: every sample here gets all its votes.
    const patient = createConsensusPolicy({ ...policyToSpec(policy), timeoutMs: 30_000 });
    const opts = { bus, policyProvider: () => patient, tasks: [task], verdictsDurable: "restart-v", samplesDurable: "restart-s", sweepIntervalMs: 100, republishGraceMs: 1000 };
    const w1 = await createConsensusWorker({ ...opts, id: "r1" });
    const w2 = await createConsensusWorker({ ...opts, id: "r2" });
    workers.push(w1, w2);
    const n = 20;
    const send = async (i: number): Promise<void> => {
      const id = `restart-${i}`;
      await publishSample(task, id);
      await publishVerdict(task, id, "critic-a", i % 2 === 0);
      await publishVerdict(task, id, "critic-b", i % 2 === 0);
      await publishVerdict(task, id, "critic-c", true);
    };
    for (let i = 0; i < n / 2; i++) await send(i);
    await server.restart();
    for (let i = n / 2; i < n; i++) await send(i);

    const decisions = await readDecisions(bus, task, n, 60_000);
    await w1.stop();
    await w2.stop();
    const ids = decisions.map((d) => d.sampleId).sort();
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => `restart-${i}`).sort());
    for (const d of decisions) expect([d.sampleId, d.accepted, d.outcomeDetail]).toEqual([d.sampleId, Number(d.sampleId.split("-")[1]) % 2 === 0, d.outcomeDetail]);
    // Both workers shared the work of one durable, and no sample was decided twice.
    expect(w1.stats().decided + w2.stats().decided).toBeLessThanOrEqual(n);
    expect(w1.stats().verdicts + w2.stats().verdicts).toBeGreaterThanOrEqual(3 * n);
  });

  it("a worker replaced mid-stream: its successor on the same durables finishes the rest, once each", async () => {
    const task = "handover";
    const patient = createConsensusPolicy({ ...policyToSpec(policy), timeoutMs: 30_000 });
    const opts = { bus, policyProvider: () => patient, tasks: [task], verdictsDurable: "handover-v", samplesDurable: "handover-s", sweepIntervalMs: 100 };
    const n = 30;
    for (let i = 0; i < n; i++) {
      const id = `handover-${i}`;
      await publishSample(task, id);
      for (const c of critics) await publishVerdict(task, id, c, true);
    }
    const first = await createConsensusWorker({ ...opts, id: "first", concurrency: 1 });
    workers.push(first);
    for (let i = 0; i < 400 && first.stats().published < 5; i++) await new Promise((r) => setTimeout(r, 10));
    await first.stop();
    const done = first.stats().published;
    expect(done).toBeGreaterThanOrEqual(5);
    const second = await createConsensusWorker({ ...opts, id: "second" });
    workers.push(second);
    const decisions = await readDecisions(bus, task, n);
    await second.stop();
    expect(new Set(decisions.map((d) => d.sampleId)).size).toBe(n);
    expect(decisions).toHaveLength(n);
    expect(first.stats().decided + second.stats().decided).toBe(n);
    expect(second.stats().decided).toBeGreaterThan(0);
  });

  it("a decision stored by a worker that failed to publish is published by another worker's sweep", async () => {
    const task = "recover";
    // Worker A can write KV but every publish fails, as if it crashed right after the CAS.
    const broken: Bus = { ...bus, publish: async () => Promise.reject(new Error("simulated crash before publish")) };
    const a = await createConsensusWorker({ bus: broken, policyProvider: () => quick, tasks: [task], id: "broken", verdictsDurable: "rec-va", samplesDurable: "rec-sa", sweepIntervalMs: 60_000, maxDeliver: 100 });
    workers.push(a);
    await publishSample(task, "rec-1");
    await publishVerdict(task, "rec-1", "critic-a", true);
    await publishVerdict(task, "rec-1", "critic-b", true);
    for (let i = 0; i < 200 && a.stats().decided < 1; i++) await new Promise((r) => setTimeout(r, 25));
    expect(a.stats().decided).toBe(1);
    expect(a.stats().published).toBe(0);
    await a.stop();

    // Worker B never sees the messages (its consumers start at the end) but finds the record.
    const b = await createConsensusWorker({ bus, policyProvider: () => quick, tasks: [task], id: "rescuer", verdictsDurable: "rec-vb", samplesDurable: "rec-sb", sweepIntervalMs: 60_000, republishGraceMs: 0 });
    workers.push(b);
    await b.sweep(true);
    const decisions = await readDecisions(bus, task, 1);
    await b.stop();
    expect(decisions).toHaveLength(1);
    expect(decisions[0]?.deciderId).toBe("broken");
    expect(decisions[0]?.accepted).toBe(true);
    expect(b.stats().decided).toBe(0);
    expect(b.stats().published).toBeGreaterThanOrEqual(1);
  });
});
