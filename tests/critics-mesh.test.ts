// Critic and consensus processes on a real nats-server: every proposed sample gets exactly one decision,
// even when a critic process and a consensus process are SIGKILLed mid-stream and restarted and when a
// sample is published twice; a malformed sample is rejected with a reason or terminated as poison, never
// retried forever; GetAgreement reports. Critics only judge: the consensus processes decide.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { DecisionSchema } from "../src/gen/autodidact/v1/consensus_pb.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { SampleSchema, VerdictSchema, type Verdict } from "../src/gen/autodidact/v1/sample_pb.js";
import { createClient } from "../src/platform/rpc/index.js";
import { getTaskPack } from "../src/domain/tasks/index.js";
import { ensureMeshTopology, Streams, Subjects } from "../src/domain/topology/index.js";
import { DecisionAudit } from "../services/consensus/index.js";

const CRITIC_MAIN = fileURLToPath(new URL("../services/critic/main.ts", import.meta.url));
const CONSENSUS_MAIN = fileURLToPath(new URL("../services/consensus/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const task = getTaskPack("addition");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ServiceProcess {
  child: ChildProcess;
  grpcPort: number;
}

/** A service process (its main.ts) on loopback; resolves at its ready line. */
function startProcess(main: string, name: string, args: string[]): Promise<ServiceProcess> {
  const child = spawn(
    process.execPath,
    ["--import", TSX, main, ...args, "--instance-id", `${name}-${randomUUID().slice(0, 4)}`, "--grpc-host", "127.0.0.1", "--log-level", "warn"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${name} not ready`)), 60_000);
    lines.on("line", (line) => {
      if (!line.startsWith('{"event":"ready"')) return;
      clearTimeout(timer);
      resolve({ child, grpcPort: (JSON.parse(line) as { grpcPort: number }).grpcPort });
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code} before ready`)));
  });
}

const startCritic = (natsUrl: string, id: string): Promise<ServiceProcess> =>
  startProcess(CRITIC_MAIN, `critic-${id}`, ["--nats-url", natsUrl, "--kind", "rules", "--critic-id", id, "--ack-wait", "3s"]);

/** A consensus process; two of them share the consensus durables, as the Deployment's replicas do. */
const startConsensus = (natsUrl: string, n: number): Promise<ServiceProcess> =>
  startProcess(CONSENSUS_MAIN, `consensus-${n}`, ["--nats-url", natsUrl, "--consensus-critics", "a,b,c", "--consensus-timeout", "150s"]);

function killed(p: ServiceProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
    p.child.once("exit", () => resolve());
    p.child.kill(signal);
  });
}

describe("critic processes and consensus", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let audit: DecisionAudit;
  const critics = new Map<string, ServiceProcess>();
  const deciders: ServiceProcess[] = [];
  const decisions = new Map<string, number>();
  const accepted = new Map<string, boolean>();
  const verdicts: Verdict[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "critics-mesh-test" });
    await ensureMeshTopology(bus);
    audit = await DecisionAudit.start(bus, Subjects.decisions("addition"));
    await consume(bus, { stream: Streams.Decisions, durable: "test-decisions" }, async (msg) => {
      const d = fromBinary(DecisionSchema, msg.data);
      decisions.set(d.sampleId, (decisions.get(d.sampleId) ?? 0) + 1);
      accepted.set(d.sampleId, d.accepted);
    }, { maxInFlight: 32 });
    await consume(bus, { stream: Streams.Verdicts, durable: "test-verdicts" }, async (msg) => void verdicts.push(fromBinary(VerdictSchema, msg.data)), { maxInFlight: 32 });
    const started = await Promise.all(["a", "b", "c"].map((id) => startCritic(nats.url, id)));
    started.forEach((p, i) => critics.set(["a", "b", "c"][i]!, p));
    deciders.push(...(await Promise.all([0, 1].map((n) => startConsensus(nats.url, n)))));
  }, 120_000);

  afterAll(async () => {
    for (const p of critics.values()) await killed(p, "SIGTERM");
    for (const p of deciders) await killed(p, "SIGTERM");
    await audit?.stop();
    await bus?.close();
    await nats?.stop();
  });

  const waitFor = async (what: string, cond: () => boolean, ms = 60_000): Promise<void> => {
    const until = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };

  it("decides every sample exactly once across a SIGKILLed and restarted critic and consensus process and a double publish", async () => {
    const problems = task.createPromptSampler({ seed: "mesh-test", difficulty: 3 }).take(90);
    const ids: string[] = [];
    const expectAccept = new Map<string, boolean>();
    const publishOne = async (i: number): Promise<void> => {
      const p = problems[i]!;
      const good = i % 5 !== 0;
      const sample = create(SampleSchema, { id: randomUUID(), task: "addition", prompt: p.prompt, completion: good ? task.verifier!.solve(p.prompt) : "12+", difficulty: p.difficulty });
      ids.push(sample.id);
      expectAccept.set(sample.id, good);
      await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, sample), { msgId: sample.id });
      if (i === 7) {
        // The same sample again: deduplicated by message id, and once more under another id (a replay).
        const again = await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, sample), { msgId: sample.id });
        expect(again.duplicate).toBe(true);
        await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, sample), { msgId: `${sample.id}-replay` });
      }
    };
    for (let i = 0; i < 30; i++) await publishOne(i);
    await killed(critics.get("b")!, "SIGKILL");
    await killed(deciders[0]!, "SIGKILL");
    for (let i = 30; i < 60; i++) await publishOne(i);
    critics.set("b", await startCritic(nats.url, "b"));
    deciders[0] = await startConsensus(nats.url, 0);
    for (let i = 60; i < 90; i++) await publishOne(i);

    await waitFor("a decision for every sample", () => ids.every((id) => decisions.has(id)));
    await sleep(1_500); // a second decision, if any, would show up now
    expect(decisions.size).toBe(ids.length);
    for (const id of ids) {
      expect(decisions.get(id)).toBe(1);
      expect(accepted.get(id)).toBe(expectAccept.get(id));
    }
    // The stream drops a second decision with the same msg id; the audit saw every publish.
    const published = audit.report(ids);
    expect(published.decidedTwice, published.examples.join("; ")).toBe(0);
    expect(published.unseen).toBe(0);
    const ledger = await audit.compareWithLedger(bus);
    expect(ledger.notInLedger, ledger.examples.join("; ")).toBe(0);
    // The restarted critic b caught up through its durable: it voted on samples published while it was dead.
    await waitFor("critic b's votes", () => ids.slice(30, 60).every((id) => verdicts.some((v) => v.sampleId === id && v.criticId === "b")));
  }, 180_000);

  it("rejects a malformed sample with a reason and terminates an undecodable one as poison", async () => {
    const malformed = create(SampleSchema, { id: randomUUID(), task: "addition", prompt: "not a sum", completion: "7" });
    await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, malformed), { msgId: malformed.id });
    await waitFor("verdicts on the malformed sample", () => verdicts.filter((v) => v.sampleId === malformed.id).length >= 3);
    for (const v of verdicts.filter((x) => x.sampleId === malformed.id)) {
      expect(v.approve).toBe(false);
      expect(v.reason).not.toBe("");
    }
    await waitFor("its decision", () => decisions.has(malformed.id));
    expect(accepted.get(malformed.id)).toBe(false);

    const before = (await bus.jsm.streams.info(Streams.Poison)).state.messages;
    await bus.publish(Subjects.proposed("addition"), new Uint8Array([0xff, 0xff, 0xff, 0x07]), { msgId: "garbage-1" });
    // Each critic durable gives up on it once (a poison record per durable), not retrying forever.
    const until = Date.now() + 30_000;
    let poison = 0;
    while (Date.now() < until) {
      poison = (await bus.jsm.streams.info(Streams.Poison)).state.messages - before;
      if (poison >= 3) break;
      await sleep(200);
    }
    expect(poison).toBeGreaterThanOrEqual(3);
    for (const durable of ["critic-a", "critic-b", "critic-c"]) {
      const info = await bus.jsm.consumers.info(Streams.Samples, durable);
      expect(info.num_ack_pending).toBe(0);
      expect(info.num_redelivered).toBe(0);
    }
    // Still serving: a good sample is judged afterwards.
    const p = task.createPromptSampler({ seed: "after-poison", difficulty: 2 }).next();
    const good = create(SampleSchema, { id: randomUUID(), task: "addition", prompt: p.prompt, completion: task.verifier!.solve(p.prompt) });
    await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, good), { msgId: good.id });
    await waitFor("the good sample's decision", () => decisions.has(good.id));
    expect(accepted.get(good.id)).toBe(true);
  }, 90_000);

  it("reports per-critic approval rates, pairwise agreement and Fleiss' kappa over observed decisions", async () => {
    const client = createClient(CriticService, `127.0.0.1:${critics.get("a")!.grpcPort}`);
    try {
      const report = await client.getAgreement({ task: "addition" });
      expect(Number(report.decisions)).toBeGreaterThan(50);
      expect(report.critics.map((c) => c.criticId)).toEqual(["a", "b", "c"]);
      const a = report.critics[0]!;
      expect(a.criticKind).toBe("rules");
      // a judged every observed sample; 1 in 5 (plus the malformed one) were bad.
      expect(a.approvalRate).toBeGreaterThan(0.7);
      expect(a.approvalRate).toBeLessThan(0.85);
      expect(report.pairwise).toHaveLength(3);
      for (const p of report.pairwise) expect(p.agreement).toBe(1);
      expect(report.fleissKappa).toBeCloseTo(1, 9);
      const small = await client.getAgreement({ task: "addition", window: 10 });
      expect(Number(small.decisions)).toBe(10);
    } finally {
      client.close();
    }
  });
});
