// Helpers shared by the consensus worker tests (not exported from index.ts).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import type { Bus } from "../../src/platform/bus/index.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";
import { DecisionSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createConsensusPolicy } from "../../src/domain/consensus/index.js";

/** Every decision message on `decisions.<task>`, read with an ephemeral consumer once `expected` are stored (or time runs out). */
export async function readDecisions(bus: Bus, task: string, expected: number, timeoutMs = 30_000): Promise<Decision[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await bus.jsm.streams.info(Streams.Decisions, { subjects_filter: Subjects.decisions(task) } as never);
    const count = (info.state.subjects as Record<string, number> | undefined)?.[Subjects.decisions(task)] ?? 0;
    if (count >= expected || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const ci = await bus.jsm.consumers.add(Streams.Decisions, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    filter_subject: Subjects.decisions(task),
    inactive_threshold: 5_000_000_000,
  });
  const consumer = await bus.js.consumers.get(Streams.Decisions, ci.name);
  const out: Decision[] = [];
  for (;;) {
    const m = await consumer.next({ expires: 1_000 });
    if (m === null) break;
    out.push(fromBinary(DecisionSchema, m.data));
  }
  return out;
}

/** The critics of the worker tests. */
export const critics = ["critic-a", "critic-b", "critic-c"];

/** 2-of-3 with a timeout long enough that, on a loaded machine, every vote sent arrives in time (samples with missing votes wait this long). */
export const policy = createConsensusPolicy({ name: "test", version: 3, kind: "k_of_n", k: 2, expected: critics, timeoutMs: 4000, onTimeout: "reject" });

/** The single-task policy of the fast tests. */
export const quick = createConsensusPolicy({ version: 1, kind: "k_of_n", k: 2, expected: critics, timeoutMs: 300, onTimeout: "reject" });

/** Publishes samples and verdicts as the generator and the critics do (the bus is read at each call: tests connect in beforeAll). */
export function publishers(bus: () => Bus): {
  publishSample(task: string, id: string): Promise<unknown>;
  publishVerdict(task: string, sampleId: string, criticId: string, approve: boolean, msgSuffix?: string): Promise<unknown>;
} {
  return {
    publishSample: (task, id) =>
      bus().publish(Subjects.proposed(task), toBinary(SampleSchema, create(SampleSchema, { id, task, prompt: "21+93=", completion: "15", difficulty: 2 })), { msgId: id }),
    publishVerdict: (task, sampleId, criticId, approve, msgSuffix = "") =>
      bus().publish(
        Subjects.verdicts(task),
        toBinary(VerdictSchema, create(VerdictSchema, { sampleId, criticId, approve, score: approve ? 0.9 : 0.1, task, reason: "test" })),
        { msgId: `${sampleId}.${criticId}${msgSuffix}` },
      ),
  };
}
