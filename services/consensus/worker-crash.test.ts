// A consensus worker holds a sample's messages unacked in memory until the sample is decidable
// (one KV create then decides it). This file covers the failure mode that introduces: the worker
// is SIGKILLed while it holds votes that exist nowhere else (not in KV); the messages come back
// after AckWait and a successor decides every sample exactly once, from all its votes.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDecisions } from "./test-support.js";
import { connectBus, openKv, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { DecisionOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createConsensusPolicy, policyToSpec } from "../../src/domain/consensus/index.js";
import { createConsensusWorker, type ConsensusWorker, type ConsensusWorkerStats } from "./index.js";
import { ensureMeshTopology, KvBuckets, Streams, Subjects } from "../../src/domain/topology/index.js";

let server: NatsServerProcess;
let bus: Bus;
const children: ChildProcess[] = [];
const workers: ConsensusWorker[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "consensus-crash-test" });
  await ensureMeshTopology(bus);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(workers.map((w) => w.stop()));
  await bus?.close();
  await server?.stop();
});

const critics = ["critic-a", "critic-b", "critic-c"];
// All three votes needed, and a timeout far beyond the test: every decision here is a quorum of all three.
const policy = createConsensusPolicy({ name: "crash", version: 1, kind: "k_of_n", k: 3, expected: critics, timeoutMs: 120_000, onTimeout: "reject" });

const publishSample = (task: string, id: string): Promise<unknown> =>
  bus.publish(Subjects.proposed(task), toBinary(SampleSchema, create(SampleSchema, { id, task, prompt: "1+2=", completion: "3", difficulty: 1 })), { msgId: id });
const publishVerdict = (task: string, sampleId: string, criticId: string, approve: boolean): Promise<unknown> =>
  bus.publish(
    Subjects.verdicts(task),
    toBinary(VerdictSchema, create(VerdictSchema, { sampleId, criticId, approve, score: approve ? 1 : 0, task, reason: "test" })),
    { msgId: `${sampleId}.${criticId}` },
  );

/** Starts a worker process and resolves with it and a reader of its latest stats line. */
async function startChild(opts: Record<string, unknown>): Promise<{ child: ChildProcess; latest: () => ConsensusWorkerStats | undefined }> {
  const script = fileURLToPath(new URL("./worker-crash-child.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, server.url, JSON.stringify(opts)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, AUTODIDACT_LOG_LEVEL: "warn" },
  });
  children.push(child);
  let latest: ConsensusWorkerStats | undefined;
  let buffered = "";
  child.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    const last = lines.filter((l) => l.startsWith("{")).pop();
    if (last !== undefined) latest = JSON.parse(last) as ConsensusWorkerStats;
  });
  return { child, latest: () => latest };
}

describe("consensus worker crash with messages held in memory", () => {
  it("a SIGKILLed worker's held votes are redelivered and its successor decides every sample exactly once", async () => {
    const task = "crash";
    const n = 12;
    const shared = { tasks: [task], verdictsDurable: "crash-v", samplesDurable: "crash-s", ackWaitMs: 1_000, flushAfterMs: 60_000 };
    const { child, latest } = await startChild({ ...shared, id: "doomed", policy: policyToSpec(policy) });
    // Each sample and two approvals of three needed: not decidable, so the worker holds all of them.
    for (let i = 0; i < n; i++) {
      const id = `crash-${i}`;
      await publishSample(task, id);
      await publishVerdict(task, id, "critic-a", true);
      await publishVerdict(task, id, "critic-b", true);
    }
    const deadline = Date.now() + 30_000;
    while ((latest()?.held ?? 0) < 3 * n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(latest()?.held).toBe(3 * n);
    expect(latest()?.decided).toBe(0);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;

    // The votes were only in the dead worker's memory: nothing of these samples reached KV.
    const kv = await openKv(bus, KvBuckets.Consensus);
    expect((await kv.keys()).filter((k) => k.startsWith("crash-"))).toEqual([]);

    // The successor on the same durables gets the unacked messages back after AckWait; the third
    // votes arrive meanwhile.
    const successor = await createConsensusWorker({ ...shared, bus, id: "successor", policyProvider: () => policy, sweepIntervalMs: 100 });
    workers.push(successor);
    for (let i = 0; i < n; i++) await publishVerdict(task, `crash-${i}`, "critic-c", i % 3 !== 0);
    const decisions = await readDecisions(bus, task, n, 60_000);
    // Let any duplicate show up before counting.
    await new Promise((r) => setTimeout(r, 1_500));
    const all = await readDecisions(bus, task, n, 0);
    await successor.stop();

    expect(decisions.length).toBeGreaterThanOrEqual(n);
    expect(all).toHaveLength(n);
    expect(new Set(all.map((d) => d.sampleId)).size).toBe(n);
    expect(successor.stats().decided).toBe(n);
    for (const d of all) {
      const i = Number(d.sampleId.split("-")[1]);
      expect(d.outcome).not.toBe(DecisionOutcome.TIMEOUT);
      expect(d.accepted).toBe(i % 3 !== 0);
      // An acceptance needs all three votes, including the two only the dead worker had held; a
      // rejection may come early, on critic-c's veto of the 3-of-3 quorum.
      if (d.accepted) expect(d.votes.map((v) => v.criticId).sort()).toEqual(critics);
      else expect(d.votes.find((v) => v.criticId === "critic-c")?.approve).toBe(false);
      expect(d.sample?.id).toBe(d.sampleId);
      expect(d.deciderId).toBe("successor");
    }
  });

  it("a worker SIGKILLed after storing decisions and before publishing them: the redelivered messages publish each once", async () => {
    const task = "crashpub";
    const n = 10;
    const shared = { tasks: [task], verdictsDurable: "crashpub-v", samplesDurable: "crashpub-s", ackWaitMs: 1_000, flushAfterMs: 60_000 };
    const { child, latest } = await startChild({ ...shared, id: "stored-only", policy: policyToSpec(policy), hangDecisionPublish: true });
    for (let i = 0; i < n; i++) {
      const id = `crashpub-${i}`;
      await publishSample(task, id);
      // Odd samples: critic-c rejects, last, so every decision holds all three votes.
      for (const c of critics) await publishVerdict(task, id, c, c !== "critic-c" || i % 2 === 0);
    }
    // Every sample is decidable from memory: the worker stores each decision (one KV create, written
    // as published since the messages are acked only after the publish) and hangs in the publish.
    const deadline = Date.now() + 30_000;
    while ((latest()?.decided ?? 0) < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(latest()?.decided).toBe(n);
    expect(latest()?.published).toBe(0);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    const kv = await openKv(bus, KvBuckets.Consensus);
    expect((await kv.keys()).filter((k) => k.startsWith("crashpub-"))).toHaveLength(n);

    // The successor gets the unacked messages back, finds the stored decisions and publishes them.
    const successor = await createConsensusWorker({ ...shared, bus, id: "publisher", policyProvider: () => policy, sweepIntervalMs: 100 });
    workers.push(successor);
    await readDecisions(bus, task, n, 60_000);
    // Every message comes back (a sample and three votes each): let all of them be handled.
    while (successor.stats().verdicts + successor.stats().samples < 4 * n && Date.now() < deadline + 30_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1_000));
    const all = await readDecisions(bus, task, n, 0);
    await successor.stop();
    expect(all).toHaveLength(n);
    expect(new Set(all.map((d) => d.sampleId)).size).toBe(n);
    // Decided once, by the worker that died; the successor only published what was stored.
    expect(successor.stats().decided).toBe(0);
    for (const d of all) {
      expect(d.deciderId).toBe("stored-only");
      expect(d.accepted).toBe(Number(d.sampleId.split("-")[1]) % 2 === 0);
      expect(d.votes.map((v) => v.criticId).sort()).toEqual(critics);
    }
  });
});
