// Publishing decisions: the Decision message on `decisions.<task>` (the sample id is its message
// id), then the record's "published" mark, the agreement window and the worker's hook.
import { fromBinary } from "@bufbuild/protobuf";
import type { Bus } from "../../src/platform/bus/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { DecisionSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { AgreementMetrics } from "./agreement-metrics.js";
import type { DueWork } from "./due-work.js";
import { isCasConflict, type ConsensusLedger } from "./ledger.js";
import type { StoredRecord } from "./record.js";
import type { WorkerCounters } from "./worker-options.js";

/** What a {@link DecisionPublisher} works with. */
export interface PublisherParts {
  bus: Bus;
  ledger: ConsensusLedger;
  due: DueWork;
  agreement: AgreementMetrics;
  counters: WorkerCounters;
  log: Logger;
  onDecision: ((decision: Decision) => void) | undefined;
}

/** Publishes one worker's decisions and keeps track of the "published" marks still being written. */
export class DecisionPublisher {
  private readonly parts: PublisherParts;
  /** Pending "published" marks, awaited by {@link settled}. */
  private readonly marking = new Set<Promise<void>>();

  constructor(parts: PublisherParts) {
    this.parts = parts;
  }

  /**
   * Publishes a stored decision (idempotent by message id), then marks the record published: with
   * `stored` (the record and revision this worker just wrote) one update and no read, in the
   * background; without it, read and compare-and-set before returning.
   */
  async publishStored(sampleId: string, task: string, bytes: Uint8Array, decoded?: Decision, stored?: StoredRecord): Promise<void> {
    const { ledger, counters, log, due } = this.parts;
    await this.announce(sampleId, task, bytes, decoded);
    if (stored === undefined) {
      await ledger.markPublished(sampleId, () => counters.conflicts++);
      return;
    }
    // The mark only spares sweepers a re-publish (which the duplicate window absorbs), so the
    // messages need not wait for it.
    const mark = ledger
      .write(sampleId, { ...stored.record, published: true }, stored.revision)
      .then(
        () => undefined,
        (err: unknown) => {
          if (isCasConflict(err)) return ledger.markPublished(sampleId, () => counters.conflicts++);
          throw err;
        },
      )
      .catch((err: unknown) => {
        log.warn("could not mark a published decision; a sweep will re-publish it", { sampleId, error: String(err) });
        due.unpublishedSince(sampleId, 0);
      })
      .finally(() => this.marking.delete(mark));
    this.marking.add(mark);
  }

  /** Publishes a decision (the sample id is its message id) and feeds the agreement window and hook. */
  async announce(sampleId: string, task: string, bytes: Uint8Array, decoded?: Decision): Promise<void> {
    const { bus, counters, due, agreement, onDecision, log } = this.parts;
    await bus.publish(Subjects.decisions(task), bytes, { msgId: sampleId });
    counters.published++;
    due.published(sampleId);
    const decision = decoded ?? fromBinary(DecisionSchema, bytes);
    agreement.add(task, decision);
    try {
      onDecision?.(decision);
    } catch (err) {
      log.warn("onDecision hook threw", { error: String(err) });
    }
  }

  /** Resolves once every "published" mark started so far is written (or given up). */
  async settled(): Promise<void> {
    await Promise.all([...this.marking]);
  }
}
