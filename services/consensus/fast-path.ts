// The fast path: a sample whose messages all reached this worker is decided from memory and
// stored with ONE create of its decided record; create-if-absent is the exactly-once gate.
import { toBinary } from "@bufbuild/protobuf";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { ConsensusPolicy } from "../../src/domain/consensus/index.js";
import type { Decided, DecisionBuilder, DecisionParts } from "./decisions.js";
import type { DueWork } from "./due-work.js";
import { isCasConflict, type ConsensusLedger } from "./ledger.js";
import { recordDecision, type ConsensusInstruments } from "./metrics.js";
import type { DecisionPublisher } from "./publisher.js";
import type { ConsensusRecord } from "./record.js";
import type { WorkerCounters } from "./worker-options.js";

/** A sample as the messages one worker holds make it, ready to decide from memory. */
export interface LocalView extends DecisionParts {
  /** When the first of those messages arrived here. */
  start?: number;
}

/** What a {@link MemoryDecider} works with. */
export interface MemoryDeciderParts {
  ledger: ConsensusLedger;
  builder: DecisionBuilder;
  publisher: DecisionPublisher;
  due: DueWork;
  counters: WorkerCounters;
  instruments: ConsensusInstruments;
  log: Logger;
}

/** Decides samples from the messages this worker holds. */
export class MemoryDecider {
  private readonly parts: MemoryDeciderParts;

  constructor(parts: MemoryDeciderParts) {
    this.parts = parts;
  }

  /**
   * Creates the decided record and publishes the decision; the record is written `published` at
   * once (no second write), since the caller acks the messages only after the publish. Returns
   * false when the key exists (another worker stored votes or decided it): the caller merges
   * through the shared record instead. A failed publish leaves the record marked unpublished and
   * throws (retryable, `redeliver`): the messages come back and publish it.
   */
  async decide(view: LocalView, policy: ConsensusPolicy, ev: Decided, now: number): Promise<boolean> {
    const { ledger, builder, publisher, due, counters, instruments, log } = this.parts;
    const decision = builder.build(view, policy, ev, now);
    const bytes = toBinary(DecisionSchema, decision);
    const decided: ConsensusRecord = { ...builder.decidedRecord({ ...view, policy: builder.specOf(policy) }, bytes, now), published: true, ackAfterPublish: true };
    let written: number;
    try {
      written = await ledger.create(view.sampleId, decided);
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      // A retry after a create whose reply was lost finds its own record (same bytes): go on.
      const current = await ledger.read(view.sampleId);
      if (current === null || current.record.decision !== decided.decision) {
        counters.conflicts++;
        instruments.conflicts.add(1);
        return false;
      }
      written = current.revision;
    }
    due.close(view.sampleId);
    counters.decided++;
    recordDecision(instruments, decision, view.start, now);
    try {
      await publisher.announce(view.sampleId, view.task, bytes, decision);
    } catch (err) {
      // Not published (the bus already retried): say so in the record, so that any worker's sweep
      // publishes it; and do not ack the messages, whose redelivery publishes it too.
      try {
        await ledger.write(view.sampleId, { ...decided, published: false }, written);
        due.unpublishedSince(view.sampleId, now);
      } catch (markErr) {
        log.warn("could not mark an unpublished decision; its redelivered messages will publish it", { sampleId: view.sampleId, error: String(markErr) });
      }
      throw new AutodidactError(`decision of ${view.sampleId} stored but not published: ${String(err)}`, Code.Unavailable, {
        cause: err,
        details: { redeliver: true },
      });
    }
    return true;
  }
}
