// The merge path: a sample's events go into the shared KV record with compare-and-set, and the
// worker whose write turns the record from pending to decided publishes the decision.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { DecisionSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import { evaluateVotes, policyToSpec, type ConsensusPolicy } from "../../src/domain/consensus/index.js";
import { partsOfRecord, toVote, type DecisionBuilder } from "./decisions.js";
import type { DueWork } from "./due-work.js";
import { isCasConflict, type ConsensusLedger } from "./ledger.js";
import { recordDecision, type ConsensusInstruments } from "./metrics.js";
import type { DecisionPublisher } from "./publisher.js";
import { applyEvent, clockStart, pendingRecord, unb64, type ConsensusEvent, type ConsensusRecord } from "./record.js";
import type { PolicyProvider, WorkerCounters } from "./worker-options.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What a {@link RecordMerger} works with. */
export interface MergerParts {
  ledger: ConsensusLedger;
  builder: DecisionBuilder;
  publisher: DecisionPublisher;
  due: DueWork;
  policyProvider: PolicyProvider;
  counters: WorkerCounters;
  instruments: ConsensusInstruments;
  log: Logger;
  /** A decision another worker stored but did not mark published is re-published after this, in ms. */
  republishGraceMs: number;
}

/** A pending record with the events applied, evaluated; with the decision when it decides. */
interface Step {
  record: ConsensusRecord;
  changed: boolean;
  policy: ConsensusPolicy;
  start: number | undefined;
  decision?: { message: Decision; bytes: Uint8Array };
}

/** The one state transition of the shared record, and what happens when it finds the sample decided. */
export class RecordMerger {
  private readonly parts: MergerParts;

  constructor(parts: MergerParts) {
    this.parts = parts;
  }

  /**
   * Reads the record, adds the events, evaluates, writes back with CAS; retries from the read on
   * conflict. Publishes when this call wrote the decision. With no events (a sweep), it only
   * settles what is due. Returns whether it published a decision.
   */
  async touch(sampleId: string, task: string, events: readonly ConsensusEvent[]): Promise<boolean> {
    const { ledger, due, counters, instruments, publisher } = this.parts;
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const current = await ledger.read(sampleId);
      let record: ConsensusRecord;
      let revision = 0;
      if (current === null) {
        if (events.length === 0) {
          due.close(sampleId);
          return false;
        }
        record = pendingRecord(sampleId, task, policyToSpec(await this.policyFor(task)));
      } else {
        ({ record, revision } = current);
      }
      if (record.decision !== undefined) return this.alreadyDecided(sampleId, record, record.decision, events, now);

      const step = this.step(record, events, now, current === null);
      if (!step.changed) {
        if (step.start !== undefined) due.open(sampleId, step.start + step.policy.timeoutMs);
        return false;
      }
      let written: number;
      try {
        written = await ledger.write(sampleId, step.record, revision);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        counters.conflicts++;
        instruments.conflicts.add(1);
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
        continue;
      }
      if (step.decision === undefined) {
        const s = clockStart(step.record);
        if (s !== undefined) due.open(sampleId, s + step.policy.timeoutMs);
        return false;
      }
      due.close(sampleId);
      counters.decided++;
      recordDecision(instruments, step.decision.message, step.start, now);
      await publisher.publishStored(sampleId, step.record.task, step.decision.bytes, step.decision.message, { record: step.record, revision: written });
      return true;
    }
  }

  /** The policy for a new record. Retryable on purpose: an operator may be about to set it. */
  private async policyFor(task: string): Promise<ConsensusPolicy> {
    try {
      return await this.parts.policyProvider(task);
    } catch (err) {
      // The message waits (retries, then redeliveries) instead of going straight to poison.
      throw new AutodidactError(`no consensus policy for task ${JSON.stringify(task)} yet: ${String(err)}`, Code.Unavailable, { cause: err });
    }
  }

  /** Applies the events to a pending record and evaluates it; builds the decision when it decides. */
  private step(pending: ConsensusRecord, events: readonly ConsensusEvent[], now: number, created: boolean): Step {
    const { builder, log } = this.parts;
    let changed = created;
    for (const e of events) if (applyEvent(pending, e, now, log)) changed = true;
    const policy = builder.policyOf(pending.policy);
    const start = clockStart(pending);
    const votes = pending.votes.map((v) => toVote(fromBinary(VerdictSchema, unb64(v))));
    const ev = evaluateVotes(policy, votes, start === undefined ? { now } : { now, firstVoteAt: start });
    let message: Decision | undefined;
    if (ev.state === "decided") {
      if (pending.sample !== undefined) message = builder.build(partsOfRecord(pending), policy, ev, now);
      else if (start !== undefined && now >= start + policy.timeoutMs) {
        // Votes without their sample until the timeout: nothing to train on, so reject.
        message = builder.build(
          partsOfRecord(pending),
          policy,
          { ...ev, accepted: false, outcome: "timeout" },
          now,
          `timeout after ${policy.timeoutMs} ms: the sample itself never reached consensus (votes said: ${ev.reason})`,
        );
      }
    }
    if (message === undefined) return { record: pending, changed, policy, start };
    const bytes = toBinary(DecisionSchema, message);
    return { record: builder.decidedRecord(pending, bytes, now), changed: true, policy, start, decision: { message, bytes } };
  }

  /**
   * The sample is decided already: count late votes, and publish the stored decision when it may
   * not have gone out (its decider's messages came back, or it is unpublished past the grace).
   */
  private async alreadyDecided(sampleId: string, record: ConsensusRecord, stored: string, events: readonly ConsensusEvent[], now: number): Promise<boolean> {
    const { due, counters, log, publisher, republishGraceMs } = this.parts;
    due.close(sampleId);
    // Published (by whoever decided): nothing left for the sweeper to re-check.
    if (record.published === true) due.published(sampleId);
    const voters = new Set(fromBinary(DecisionSchema, unb64(stored)).votes.map((v) => v.criticId));
    for (const e of events) if (e.kind === "vote" && !voters.has(e.verdict.criticId)) counters.lateVotes++;
    if (record.published === true && record.ackAfterPublish === true) {
      // Its decider acks the messages it decided from only after publishing: one of them
      // delivered again means the decider may have died before the publish.
      const mine = events.some((e) => e.redelivered && (e.kind === "sample" || voters.has(e.verdict.criticId)));
      if (!mine) return false;
      log.info("re-publishing a decision whose messages came back", { sampleId, decider: record.deciderId });
      await publisher.announce(sampleId, record.task, unb64(stored));
      return true;
    }
    if (!record.published) {
      const decidedAt = record.decidedAt ?? 0;
      if (now - decidedAt >= republishGraceMs) {
        log.info("publishing a decision another worker stored but did not publish", { sampleId, decider: record.deciderId });
        await publisher.publishStored(sampleId, record.task, unb64(stored));
        return true;
      }
      due.unpublishedSince(sampleId, decidedAt);
    }
    return false;
  }
}
