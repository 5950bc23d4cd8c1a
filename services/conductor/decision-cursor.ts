// Reads a task's decisions from the DECISIONS stream after a sequence, message by message (a stream
// message get with `next_by_subj`): no consumer at all, so the conductor's read grant cannot pull
// from the trainer's or the monitor's durable. A conductor killed mid-round reads again from the
// sequence the round recorded before it proposed: nothing is lost, and it counts each sample once.
import { fromBinary } from "@bufbuild/protobuf";
import type { MsgRequest } from "@nats-io/jetstream";
import type { Bus } from "../../src/platform/bus/index.js";
import { DecisionSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";

/** One decision with its stream sequence. */
export interface SequencedDecision {
  readonly seq: number;
  readonly decision: Decision;
}

/** A position in one task's decisions. */
export class DecisionCursor {
  readonly #bus: Bus;
  readonly #subject: string;
  #after: number;

  constructor(bus: Bus, task: string, afterSeq: number) {
    this.#bus = bus;
    this.#subject = Subjects.decisions(task);
    this.#after = afterSeq;
  }

  /** Sequence of the last message read. */
  get position(): number {
    return this.#after;
  }

  /** The next decision of the task, or null at the end of the stream (for now). Undecodable messages are skipped. */
  async next(): Promise<SequencedDecision | null> {
    for (;;) {
      // The server's message get takes `next_by_subj` (the first message on the subject at or after
      // `seq`); nats.js's type for the request leaves it out.
      const query = { seq: this.#after + 1, next_by_subj: this.#subject } as unknown as MsgRequest;
      const m = await this.#bus.jsm.streams.getMessage(Streams.Decisions, query);
      if (m === null) return null;
      this.#after = m.seq;
      try {
        return { seq: m.seq, decision: fromBinary(DecisionSchema, m.data) };
      } catch {
        // not a decision: nothing to count
      }
    }
  }
}

/** The last sequence of the DECISIONS stream now (a round's decisions come after it). */
export async function lastDecisionSeq(bus: Bus): Promise<number> {
  return (await bus.jsm.streams.info(Streams.Decisions)).state.last_seq;
}
