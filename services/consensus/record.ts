// The per-sample record in the `consensus` KV bucket and the events that change it. Pure: the
// ledger stores it, the merge path changes it, the audit reads the decision it holds.
import { fromBinary } from "@bufbuild/protobuf";
import { VerdictSchema, type Sample, type Verdict } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { ConsensusPolicySpec } from "../../src/domain/consensus/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";

/**
 * The per-sample state in the `consensus` KV bucket (JSON). Protobuf payloads are base64 so the
 * record stays inspectable with `nats kv get`. Once decided, the record keeps only the decision
 * (which holds the sample and every vote) and whether it was published.
 */
export interface ConsensusRecord {
  v: 1;
  sampleId: string;
  task: string;
  /** The policy in force at the sample's first event; every worker applies this one. */
  policy: ConsensusPolicySpec;
  firstVoteAt?: number;
  sampleSeenAt?: number;
  /** Sample bytes. */
  sample?: string;
  /** Verdict bytes, first vote of each critic, in arrival order. */
  votes: string[];
  /** Critics that changed their vote (ignored). */
  conflicts: string[];
  /** traceparent of the sample (or of the first vote until the sample arrives): timeouts decided by the sweeper join this trace. */
  trace?: string;
  /** Decision bytes, once decided. */
  decision?: string;
  decidedAt?: number;
  deciderId?: string;
  published?: boolean;
  /**
   * Decided from messages the decider held unacked (the in-memory fast path): it publishes the
   * decision before acking them, so the record is written `published` at once, with no second
   * write. Should the decider die in between, those messages come back (redelivered), and a
   * redelivered message of this decision makes the worker that gets it publish it again (by
   * message id, so a copy that did go out is dropped by the server).
   */
  ackAfterPublish?: boolean;
}

/** A record as read, with the revision a compare-and-set must name. */
export interface StoredRecord {
  record: ConsensusRecord;
  revision: number;
}

/** One delivered message, decoded: a critic's vote or the sample itself. */
export type ConsensusEvent = ({ kind: "vote"; verdict: Verdict } | { kind: "sample"; sample: Sample }) & {
  bytes: Uint8Array;
  /** Delivered before (a worker died holding it, or it failed and was retried). */
  redelivered: boolean;
  /** W3C traceparent the message carried, if any. */
  traceparent?: string;
};

/** Protobuf bytes as stored in a record. */
export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
/** Protobuf bytes back from a record. */
export const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

/** When the sample's timeout clock started: its first vote, else when the sample was seen. */
export const clockStart = (r: ConsensusRecord): number | undefined => r.firstVoteAt ?? r.sampleSeenAt;

/** The first record of a sample: its task and the policy every worker will apply to it. */
export function pendingRecord(sampleId: string, task: string, policy: ConsensusPolicySpec): ConsensusRecord {
  return { v: 1, sampleId, task, policy, votes: [], conflicts: [] };
}

/**
 * Adds an event to a pending record (first vote per critic; a changed vote is noted and
 * ignored); false when it changes nothing (a re-delivery).
 */
export function applyEvent(r: ConsensusRecord, e: ConsensusEvent, now: number, log: Logger): boolean {
  if (e.kind === "sample") {
    if (r.sample !== undefined) return false;
    r.sample = b64(e.bytes);
    r.sampleSeenAt = now;
    if (e.traceparent !== undefined) r.trace = e.traceparent;
    return true;
  }
  if (r.trace === undefined && e.traceparent !== undefined) r.trace = e.traceparent;
  for (const stored of r.votes) {
    const prior = fromBinary(VerdictSchema, unb64(stored));
    if (prior.criticId !== e.verdict.criticId) continue;
    if (prior.approve === e.verdict.approve && prior.score === e.verdict.score) return false;
    if (r.conflicts.includes(prior.criticId)) return false;
    r.conflicts.push(prior.criticId);
    log.warn("critic changed its vote; the change is ignored", { sampleId: r.sampleId, critic: prior.criticId });
    return true;
  }
  r.votes.push(b64(e.bytes));
  r.firstVoteAt ??= now;
  return true;
}

/** The record that marks a sample decided: its votes travel inside the stored Decision, not beside it. */
export function decidedRecord(
  record: Pick<ConsensusRecord, "sampleId" | "task" | "policy" | "conflicts">,
  decision: Uint8Array,
  now: number,
  deciderId: string,
): ConsensusRecord {
  return {
    v: 1,
    sampleId: record.sampleId,
    task: record.task,
    policy: record.policy,
    votes: [],
    conflicts: [...record.conflicts],
    decision: b64(decision),
    decidedAt: now,
    deciderId,
    published: false,
  };
}
