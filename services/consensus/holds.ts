// What the intake holds in memory: each delivered message until its sample is settled, grouped by
// sample; the sample as those messages make it; and bounded memories of samples already settled.
import type { BusMessage } from "../../src/platform/bus/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import { evaluateVotes, type ConsensusEvaluation, type ConsensusPolicy } from "../../src/domain/consensus/index.js";
import { toVote } from "./decisions.js";
import type { LocalView } from "./fast-path.js";
import type { MessageKind } from "./messages.js";
import type { ConsensusEvent } from "./record.js";

/** One delivered message waiting in memory (unacked) for its sample to be settled. */
export interface Held {
  kind: MessageKind;
  event: ConsensusEvent;
  msg: BusMessage;
  /** Acks the message (its handler returns). */
  resolve: () => void;
  /** Fails the message (its handler throws: retry, redelivery or poison). */
  reject: (err: unknown) => void;
}

/** What this worker holds of one sample: its messages in arrival order, and how to settle them. */
export interface SampleHold {
  sampleId: string;
  task: string;
  /** When its first held message arrived (decision latency metric). */
  firstSeenAt: number;
  held: Held[];
  policy?: ConsensusPolicy;
  /** The shared KV record is the place for this sample now (it exists, or we gave up on memory). */
  viaKv: boolean;
  /** Set by the hold timer (or stop, or back-pressure): merge into KV now. */
  flushNow: boolean;
  /** A drive of this sample is under way (one at a time keeps its messages in order). */
  running: boolean;
  /** The hold timer, once the sample waits for more messages. */
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * The sample as this worker's held messages alone make it (the record's rules on the decoded
 * messages: first vote per critic, changed votes ignored), with its evaluation.
 */
export function localView(l: SampleHold, policy: ConsensusPolicy, now: number, log: Logger): { view: LocalView; ev: ConsensusEvaluation } {
  const view: LocalView = { sampleId: l.sampleId, task: l.task, sample: undefined, votes: [], conflicts: [] };
  for (const h of l.held) {
    const e = h.event;
    if (e.kind === "sample") {
      view.sample ??= e.sample;
      continue;
    }
    const prior = view.votes.find((v) => v.criticId === e.verdict.criticId);
    if (prior === undefined) view.votes.push(e.verdict);
    else if ((prior.approve !== e.verdict.approve || prior.score !== e.verdict.score) && !view.conflicts.includes(prior.criticId)) {
      view.conflicts.push(prior.criticId);
      log.warn("critic changed its vote; the change is ignored", { sampleId: l.sampleId, critic: prior.criticId });
    }
  }
  view.start = l.firstSeenAt;
  // Timeouts are the shared record's business (held messages go there after the hold time), so
  // the clock of this view starts now, as it always did.
  return { view, ev: evaluateVotes(policy, view.votes.map(toVote), { now, firstVoteAt: now }) };
}

/** A map that forgets its oldest entries beyond `capacity`: what a worker remembers about samples it settled. */
export class RecentMap<V> {
  private readonly entries = new Map<string, V>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** The value remembered for `key`, if it was not forgotten yet. */
  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** Whether `key` is remembered. */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Remembers `key` as the newest entry, forgetting the oldest when over capacity. */
  remember(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      for (const k of this.entries.keys()) {
        this.entries.delete(k);
        break;
      }
    }
  }
}
