// The consensus worker's rules against a real nats-server: windows that widen when critics run far
// apart (and the KV path at the widest), a critic's first vote kept, timeouts, late votes, a policy
// that is not there yet, malformed messages sent to poison.
import { create, toBinary } from "@bufbuild/protobuf";
import { trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { ensureMeshTopology, Streams, Subjects } from "../../src/domain/topology/index.js";
import { createTestTelemetry, type TestTelemetry } from "../../src/platform/telemetry/index.js";
import { DecisionOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createConsensusPolicy } from "../../src/domain/consensus/index.js";
import { createConsensusWorker, type ConsensusWorker } from "./index.js";
import { critics, publishers, quick, readDecisions } from "./test-support.js";

let server: NatsServerProcess;
let bus: Bus;
let telemetry: TestTelemetry;
const workers: ConsensusWorker[] = [];
const { publishSample, publishVerdict } = publishers(() => bus);

beforeAll(async () => {
  telemetry = createTestTelemetry("consensus-worker-rules-test");
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "consensus-worker-rules-test" });
  await ensureMeshTopology(bus);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await bus?.close();
  await server?.stop();
  await telemetry?.shutdown();
});

/**
 * Critics far apart: critic-a and critic-b vote on all `n` samples before critic-c votes on any
 * (critic-c approves where `cApproves`); then a 3-of-3 worker with windows of 8 verdicts that may
 * widen to `maxConcurrency` decides them.
 */
async function runSkewed(task: string, n: number, maxConcurrency: number, cApproves: (i: number) => boolean) {
  const strict = createConsensusPolicy({ version: 1, kind: "k_of_n", k: 3, expected: critics, timeoutMs: 60_000, onTimeout: "reject" });
  for (let i = 0; i < n; i++) await publishSample(task, `${task}-${i}`);
  for (const c of ["critic-a", "critic-b"]) for (let i = 0; i < n; i++) await publishVerdict(task, `${task}-${i}`, c, true);
  for (let i = 0; i < n; i++) await publishVerdict(task, `${task}-${i}`, "critic-c", cApproves(i));
  const w = await createConsensusWorker({ bus, policyProvider: () => strict, tasks: [task], id: task, concurrency: 8, maxConcurrency, flushAfterMs: 15_000 });
  workers.push(w);
  const decisions = await readDecisions(bus, task, n);
  const stats = w.stats();
  await w.stop();
  return { decisions, stats };
}

describe("consensus worker rules against a real nats-server", () => {
  it("critics running far apart widen the windows instead of pushing samples onto the KV path", async () => {
    const n = 60;
    // Windows of 8 verdicts / 2 samples: nothing in the first windows is decidable until they
    // widen to hold critic-c's votes.
    const { decisions, stats } = await runSkewed("skew", n, 512, (i) => i % 3 !== 0);
    expect(new Set(decisions.map((d) => d.sampleId)).size).toBe(n);
    for (const d of decisions) expect(d.accepted).toBe(Number(d.sampleId.split("-")[1]) % 3 !== 0);
    expect(stats.widened).toBeGreaterThan(0);
    expect(stats.merged).toBe(0);
  });

  it("at the widest windows, stalled samples still get decided through the KV record", async () => {
    const n = 40;
    const { decisions, stats } = await runSkewed("skewcap", n, 8, () => true);
    expect(new Set(decisions.map((d) => d.sampleId)).size).toBe(n);
    expect(decisions.every((d) => d.accepted)).toBe(true);
    expect(stats.widened).toBe(0);
    expect(stats.merged).toBeGreaterThan(0);
  });

  it("keeps a critic's first vote and reports the change it tried", async () => {
    const task = "flip";
    const w = await createConsensusWorker({ bus, policyProvider: () => quick, tasks: [task], id: "w-flip", verdictsDurable: "flip-v", samplesDurable: "flip-s", sweepIntervalMs: 50 });
    workers.push(w);
    // One worker consumes verdicts in stream order: a rejects, then flips to approve, then b approves.
    await publishVerdict(task, "flip-1", "critic-a", false);
    await publishVerdict(task, "flip-1", "critic-a", true, ".changed");
    await publishVerdict(task, "flip-1", "critic-b", true);
    await publishSample(task, "flip-1");
    const [d] = await readDecisions(bus, task, 1);
    await w.stop();
    // Had the flip counted, a and b would have accepted (k=2) at once; with a's first vote it waits
    // for c and then times out.
    expect(d?.accepted).toBe(false);
    expect(d?.outcome).toBe(DecisionOutcome.TIMEOUT);
    expect(d?.votes.find((v) => v.criticId === "critic-a")?.approve).toBe(false);
    expect(d?.outcomeDetail).toMatch(/ignored changed votes of critic-a/);
  });

  it("a sample no critic votes on is rejected at the timeout; votes after a decision change nothing", async () => {
    const task = "silent";
    const w = await createConsensusWorker({ bus, policyProvider: () => quick, tasks: [task], id: "w-silent", verdictsDurable: "silent-v", samplesDurable: "silent-s", sweepIntervalMs: 50 });
    workers.push(w);
    // The sample is proposed inside a generator span: the timeout decision joins that trace.
    const traceId = await trace.getTracer("test").startActiveSpan("generate", async (span) => {
      await publishSample(task, "silent-1");
      span.end();
      return span.spanContext().traceId;
    });
    const [d] = await readDecisions(bus, task, 1);
    const sweeps = telemetry.spansNamed("consensus sweep").filter((sp) => sp.attributes["autodidact.sample_id"] === "silent-1");
    expect(sweeps.map((sp) => sp.spanContext().traceId)).toContain(traceId);
    expect(d?.accepted).toBe(false);
    expect(d?.outcome).toBe(DecisionOutcome.TIMEOUT);
    expect(d?.outcomeDetail).toMatch(/no expected critic voted/);
    // Late votes, enough to accept: the decision stands.
    await publishVerdict(task, "silent-1", "critic-a", true);
    await publishVerdict(task, "silent-1", "critic-b", true);
    for (let i = 0; i < 100 && w.stats().lateVotes < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(w.stats().lateVotes).toBe(2);
    await w.stop();
    expect(await readDecisions(bus, task, 1, 0)).toHaveLength(1);
  });

  it("waits for a policy that is not there yet instead of dropping the votes", async () => {
    const task = "nopolicy";
    let calls = 0;
    const w = await createConsensusWorker({
      bus,
      policyProvider: () => {
        calls++;
        if (calls <= 3) throw new Error("no policy set");
        return quick;
      },
      tasks: [task],
      id: "w-nopolicy",
      verdictsDurable: "nopolicy-v",
      samplesDurable: "nopolicy-s",
      sweepIntervalMs: 50,
    });
    workers.push(w);
    await publishSample(task, "np-1");
    await publishVerdict(task, "np-1", "critic-a", true);
    await publishVerdict(task, "np-1", "critic-b", true);
    const decisions = await readDecisions(bus, task, 1);
    await w.stop();
    expect(decisions.map((d) => [d.sampleId, d.accepted])).toEqual([["np-1", true]]);
    expect(calls).toBeGreaterThan(3);
    expect(w.stats().poisoned).toBe(0);
  });

  it("sends malformed verdicts to the poison stream and keeps deciding", async () => {
    const task = "poison";
    const w = await createConsensusWorker({ bus, policyProvider: () => quick, tasks: [task], id: "w-poison", verdictsDurable: "poison-v", samplesDurable: "poison-s", sweepIntervalMs: 50 });
    workers.push(w);
    await bus.publish(Subjects.verdicts(task), new Uint8Array([0xff, 0xff, 0xff]), { msgId: "garbage-1" });
    await bus.publish(
      Subjects.verdicts(task),
      toBinary(VerdictSchema, create(VerdictSchema, { sampleId: "bad id with spaces", criticId: "critic-a", approve: true, task })),
      { msgId: "garbage-2" },
    );
    await publishSample(task, "p-1");
    await publishVerdict(task, "p-1", "critic-a", true);
    await publishVerdict(task, "p-1", "critic-c", true);
    const decisions = await readDecisions(bus, task, 1);
    expect(decisions.map((d) => [d.sampleId, d.accepted])).toEqual([["p-1", true]]);
    for (let i = 0; i < 100 && w.stats().poisoned < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(w.stats().poisoned).toBe(2);
    const poison = await bus.jsm.streams.info(Streams.Poison);
    expect(poison.state.messages).toBeGreaterThanOrEqual(2);
    await w.stop();
  });
});
