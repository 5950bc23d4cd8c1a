// Helpers shared by the consensus worker tests (not exported from index.ts).
import { fromBinary } from "@bufbuild/protobuf";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { type Bus } from "../../platform/bus/index.js";
import { DecisionSchema, type Decision } from "../../gen/autodidact/v1/consensus_pb.js";
import { Streams, Subjects } from "../topology/index.js";

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
