// The novelty critic fires on the addition task, in the mesh (real nats-server, critic and consensus
// services with their gRPC servers): a problem labelled in one round and proposed again in a later
// round is rejected as already labelled, whatever its answer; new problems of the same length pass.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, startNatsServer, type Bus, type ConsumerHandle, type NatsServerProcess } from "../src/platform/bus/index.js";
import { DecisionSchema, type Decision } from "../src/gen/autodidact/v1/consensus_pb.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { SampleSchema, type Sample } from "../src/gen/autodidact/v1/sample_pb.js";
import { startServiceWithArgs, type RunningService } from "../src/platform/host/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { getTaskPack } from "../src/domain/tasks/index.js";
import { ensureMeshTopology, Streams, Subjects } from "../src/domain/topology/index.js";
import { criticService } from "../services/critic/index.js";
import { consensusService } from "../services/consensus/index.js";

const task = getTaskPack("addition");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("novelty critic in the mesh", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let decisionsConsumer: ConsumerHandle | undefined;
  const running: RunningService[] = [];
  const decisions = new Map<string, Decision>();

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "novelty-mesh-test" });
    await ensureMeshTopology(bus);
    const base = ["--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn"];
    running.push(await startServiceWithArgs(criticService, [...base, "--kind", "rules", "--critic-id", "rules"]));
    running.push(await startServiceWithArgs(criticService, [...base, "--kind", "novelty", "--critic-id", "novelty"]));
    running.push(await startServiceWithArgs(consensusService, [...base, "--consensus-critics", "rules,novelty", "--consensus-timeout", "30s"]));
    decisionsConsumer = await consume(bus, { stream: Streams.Decisions, durable: "novelty-test-decisions" }, async (m) => {
      const d = fromBinary(DecisionSchema, m.data);
      decisions.set(d.sampleId, d);
    }, { maxInFlight: 16 });
  }, 60_000);

  afterAll(async () => {
    await decisionsConsumer?.stop();
    for (const s of running.reverse()) await s.stop();
    await bus?.close();
    await nats?.stop();
  });

  const propose = async (prompt: string, round: number, completion = task.verifier!.solve(prompt)): Promise<Sample> => {
    const sample = create(SampleSchema, { id: randomUUID(), task: "addition", prompt, completion, difficulty: task.difficultyOf(prompt), round, lineage: { promptId: task.promptId(prompt) } });
    await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, sample), { msgId: sample.id });
    return sample;
  };
  const decided = async (ids: readonly string[]): Promise<void> => {
    const until = Date.now() + 30_000;
    while (ids.some((id) => !decisions.has(id))) {
      if (Date.now() > until) throw new Error("timed out waiting for decisions");
      await sleep(50);
    }
  };

  it("rejects a problem accepted in an earlier round, with the critic's reason; accepts new ones", async () => {
    const problems = task.createPromptSampler({ seed: "novelty-mesh", difficulty: 3 }).take(12).map((p) => p.prompt);
    const round1 = await Promise.all(problems.slice(0, 6).map((p) => propose(p, 1)));
    await decided(round1.map((s) => s.id));
    for (const s of round1) expect(decisions.get(s.id)?.accepted).toBe(true);
    await sleep(300); // the novelty critic learns accepted prompts from decisions.> (a core subscription)

    // Round 2 proposes three of them again (one with another answer) and six new problems.
    const repeats = [await propose(problems[0]!, 2), await propose(problems[1]!, 2), await propose(problems[2]!, 2, "999")];
    const fresh = await Promise.all(problems.slice(6).map((p) => propose(p, 2)));
    await decided([...repeats, ...fresh].map((s) => s.id));
    for (const s of fresh) expect(decisions.get(s.id)?.accepted).toBe(true);
    for (const [i, s] of repeats.entries()) {
      const d = decisions.get(s.id)!;
      expect(d.accepted).toBe(false);
      const vote = d.votes.find((v) => v.criticId === "novelty");
      // The wrong answer "999" is also vetoed by the rules critic (wrong length); the novelty vote stands either way.
      expect(vote?.approve).toBe(false);
      expect(vote?.reason).toBe(`already labelled: prompt ${task.promptId(problems[i]!)} was accepted in round 1 (sample ${round1[i]!.id})`);
    }

    // The same verdict over the critic's gRPC Score: the mesh's novelty critic remembers what was labelled.
    const novelty = running[1]!;
    const client = createClient(CriticService, novelty.server.address);
    try {
      const repeat = create(SampleSchema, { id: randomUUID(), task: "addition", prompt: problems[3]!, completion: task.verifier!.solve(problems[3]!), round: 5 });
      const verdict = await client.score({ sample: repeat });
      expect(verdict.approve).toBe(false);
      expect(verdict.reason).toMatch(/^already labelled: prompt addition-[0-9a-f]{16} was accepted in round 1/);
    } finally {
      client.close();
    }
  }, 90_000);
});
