// Property (fast-check) of the consensus worker itself, on a real nats-server: whatever the order in
// which a sample and its votes arrive, however often a vote is re-delivered, and however the messages
// are delayed and split between two workers sharing the durables, each sample gets exactly one decision
// and it is the decision the pure rule gives for the complete set of votes. (evaluate.test.ts states
// the same for evaluateVotes alone; this one covers the worker's memory, KV and CAS paths.)
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { DecisionSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createConsensusPolicy, evaluateVotes, type ConsensusPolicy } from "../../src/domain/consensus/index.js";
import { createConsensusWorker, type ConsensusWorker } from "./index.js";
import { ensureMeshTopology, Subjects } from "../../src/domain/topology/index.js";

const CRITICS = ["a", "b", "c"];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: NatsServerProcess;
let bus: Bus;
const workers: ConsensusWorker[] = [];
const policies = new Map<string, ConsensusPolicy>();

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "consensus-order-test" });
  await ensureMeshTopology(bus);
  const provider = (task: string): ConsensusPolicy => {
    const p = policies.get(task);
    if (p === undefined) throw new Error(`no policy for ${task} yet`);
    return p;
  };
  // Two workers on the same durables split every sample's messages between them; the second holds
  // at most a few messages, so it keeps falling back to the shared KV record (the CAS path).
  workers.push(await createConsensusWorker({ bus, policyProvider: provider, id: "w1", sweepIntervalMs: 50, flushAfterMs: 150 }));
  workers.push(await createConsensusWorker({ bus, policyProvider: provider, id: "w2", sweepIntervalMs: 50, flushAfterMs: 150, concurrency: 2 }));
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await bus?.close();
  await server?.stop();
});

type Kind = "unanimous" | "k_of_n" | "weighted";
interface SamplePlan {
  votes: boolean[];
  /** Delay before each message, ms: [sample, vote a, vote b, vote c]. */
  delays: number[];
  /** Re-deliveries: (message index 1..3 = a vote, delay). */
  dupes: Array<[number, number]>;
}

const planArb: fc.Arbitrary<SamplePlan> = fc.record({
  votes: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  delays: fc.array(fc.integer({ min: 0, max: 250 }), { minLength: 4, maxLength: 4 }),
  dupes: fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 400 })), { maxLength: 4 }),
});

let run = 0;

describe("consensus worker (property, real nats-server)", () => {
  it("any order, duplication and delay of a sample's votes yields one decision, the rule's decision for all votes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Kind>("unanimous", "k_of_n", "weighted"),
        fc.integer({ min: 1, max: 3 }),
        fc.array(planArb, { minLength: 1, maxLength: 4 }),
        async (kind, k, plans) => {
          const task = `order${run++}`;
          const policy = createConsensusPolicy({
            version: 1,
            kind,
            expected: CRITICS,
            k,
            threshold: 0.5,
            weights: { a: 2, b: 1, c: 1 },
            // Longer than any delay here: every decision is made on votes, never by the clock.
            timeoutMs: 60_000,
            onTimeout: "reject",
          });
          policies.set(task, policy);
          const decided: Decision[] = [];
          const sub = bus.nc.subscribe(Subjects.decisions(task), { callback: (err, m) => void (err === null && decided.push(fromBinary(DecisionSchema, m.data))) });
          const before = workers.reduce((acc, w) => acc + w.stats().decided, 0);
          const sends: Array<Promise<unknown>> = [];
          plans.forEach((plan, i) => {
            const id = `${task}-s${i}`;
            const sample = toBinary(SampleSchema, create(SampleSchema, { id, task, prompt: "1+2=", completion: "3" }));
            const vote = (c: number): Uint8Array =>
              toBinary(VerdictSchema, create(VerdictSchema, { sampleId: id, criticId: CRITICS[c]!, approve: plan.votes[c]!, score: plan.votes[c] ? 1 : 0, task }));
            sends.push(sleep(plan.delays[0]!).then(() => bus.publish(Subjects.proposed(task), sample, { msgId: id })));
            for (let c = 0; c < 3; c++) sends.push(sleep(plan.delays[c + 1]!).then(() => bus.publish(Subjects.verdicts(task), vote(c), { msgId: `${id}.${c}` })));
            // A re-delivered vote under another message id: the server cannot drop it, the worker must.
            plan.dupes.forEach(([m, delay], d) => sends.push(sleep(delay).then(() => bus.publish(Subjects.verdicts(task), vote(m - 1), { msgId: `${id}.${m - 1}.dup${d}` }))));
          });
          await Promise.all(sends);
          const until = Date.now() + 30_000;
          while (new Set(decided.map((d) => d.sampleId)).size < plans.length && Date.now() < until) await sleep(25);
          await sleep(200);
          sub.unsubscribe();
          const after = workers.reduce((acc, w) => acc + w.stats().decided, 0);

          // Exactly one decision per sample, won by exactly one compare-and-set.
          expect(decided.map((d) => d.sampleId).sort()).toEqual(plans.map((_, i) => `${task}-s${i}`).sort());
          expect(after - before).toBe(plans.length);
          for (const d of decided) {
            const plan = plans[Number(d.sampleId.slice(d.sampleId.lastIndexOf("s") + 1))]!;
            const all = CRITICS.map((criticId, c) => ({ criticId, approve: plan.votes[c]! }));
            const reference = evaluateVotes(policy, all, { now: 0, firstVoteAt: 0 });
            expect(reference.state).toBe("decided");
            if (reference.state === "decided") expect(d.accepted).toBe(reference.accepted);
            // Stored with the votes it was decided on: distinct critics, each as published.
            const voters = d.votes.map((v) => v.criticId);
            expect(new Set(voters).size).toBe(voters.length);
            for (const v of d.votes) expect(v.approve).toBe(plan.votes[CRITICS.indexOf(v.criticId)]);
            expect(d.sample?.id).toBe(d.sampleId);
          }
        },
      ),
      { numRuns: 30 },
    );
  }, 240_000);
});
