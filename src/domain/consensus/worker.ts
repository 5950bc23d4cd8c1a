import { randomUUID } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstream } from "@nats-io/jetstream";
import { defaultTextMapGetter, propagation, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import {
  consume,
  consumerLag,
  isKvConflict,
  isRetryableError,
  openKv,
  type Bus,
  type BusMessage,
  type ConsumerHandle,
  type KvStore,
} from "../../platform/bus/index.js";
import { KvBuckets, Streams, Subjects } from "../topology/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import {
  DecisionOutcome,
  DecisionSchema,
  PolicyRefSchema,
  type Decision,
  type PolicyRef,
} from "../../gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema, type Sample, type Verdict } from "../../gen/autodidact/v1/sample_pb.js";
import { createLogger } from "../../platform/telemetry/logger.js";
import { evaluateVotes, type ConsensusEvaluation, type DecisionOutcomeKind, type Vote } from "./evaluate.js";
import { createConsensusPolicy, policyToSpec, type ConsensusPolicy, type ConsensusPolicySpec } from "./policy.js";
import { policyToProto } from "./policy-proto.js";
import { createAgreementWindow, type AgreementReport, type AgreementWindow, type JudgedSample } from "./agreement.js";
import { consensusInstruments } from "./metrics.js";

/** Where the consensus worker gets the policy for a task; called once per sample, at its first event. */
export type PolicyProvider = (task: string) => ConsensusPolicy | Promise<ConsensusPolicy>;

/** Options of {@link createConsensusWorker}. */
export interface ConsensusWorkerOptions {
  bus: Bus;
  policyProvider: PolicyProvider;
  /** Recorded as `decider_id` in the decisions this worker makes; a random id by default. */
  id?: string;
  /**
   * Tasks this worker decides (all when omitted). Workers of different tasks need different
   * durable names, since a durable's filter is fixed when it is created.
   */
  tasks?: readonly string[];
  /** Durable consumer on the verdicts stream; workers sharing it share the work. With `tasks`, one per task (`<name>-<task>`). */
  verdictsDurable?: string;
  /** Durable consumer on the samples stream (the decision carries the sample); suffixed per task like `verdictsDurable`. */
  samplesDurable?: string;
  /** How often due timeouts and unpublished decisions are handled, in ms (default 250). */
  sweepIntervalMs?: number;
  /** How often the whole bucket is scanned for samples other (crashed) workers left, in ms (default 60 s; also once at start). */
  fullScanIntervalMs?: number;
  /** A decision another worker stored but did not mark published is re-published after this, in ms (default 5 s). */
  republishGraceMs?: number;
  /**
   * Verdicts handled at once (default 4096; samples: a quarter of it); one sample's messages stay
   * in order. The verdict window must cover how far the fastest critic runs ahead of the slowest
   * (twice that many verdicts wait for the slowest one's), and samples, which critics judge only
   * after they are stored, are pulled no further ahead of their votes than a quarter of it. This
   * includes messages held unacknowledged in memory while their sample is not decidable yet: a
   * sample whose sample and votes all reach this worker is decided with ONE KV write (create of
   * the decided record) instead of a compare-and-set per vote, and its messages are acked only
   * after the decision is stored and published, so a crash loses nothing (they are redelivered).
   * When a consumer is full and nothing it holds can be decided, its windows widen (see
   * `maxConcurrency`); once they cannot, its oldest held samples are merged into the shared KV
   * record at once.
   */
  concurrency?: number;
  /**
   * How far the verdict window may widen when it is full of undecidable samples (default 16 x
   * `concurrency`; the samples window widens with it). Critics that run far apart (one thousands
   * of samples ahead of another, as happens on a starved machine) would otherwise force most
   * samples onto the KV path (a read and a compare-and-set per message), which decides tens of
   * samples per second instead of thousands. Memory grows with it: every held message stays in
   * memory unacknowledged until its sample is decided.
   */
  maxConcurrency?: number;
  /**
   * How long a sample's messages may be held before they are merged into the shared KV record
   * (default 2 s, at most a quarter of the policy timeout): bounds the delay when a sample's
   * messages are split over several workers sharing a durable. A worker alone on its durables
   * gets all of every sample's messages and may hold them up to a quarter of the timeout: under
   * load, critics run seconds behind the samples and apart from each other, and every sample
   * merged into KV costs a read and a compare-and-set per message instead of one create.
   */
  flushAfterMs?: number;
  /**
   * How long the server waits for an ack before redelivering (default 30 s): messages a crashed
   * worker held in memory reach another worker after this.
   */
  ackWaitMs?: number;
  /** Timeout of one KV request in ms (default 3 s): short, so a request lost in a NATS restart is retried soon. */
  kvTimeoutMs?: number;
  /** How long one message's step is retried in place when NATS is briefly unavailable, in ms (default 15 s). */
  retryForMs?: number;
  /** Deliveries before a message that keeps failing goes to the poison stream (default 10). */
  maxDeliver?: number;
  /** Decisions per task kept for the agreement metrics (default 1000). */
  agreementWindow?: number;
  /** Called with every decision this worker published (metrics, agreement window). Must not throw. */
  onDecision?: (decision: Decision) => void;
}

/** Counters of one worker, for tests and metrics. */
export interface ConsensusWorkerStats {
  verdicts: number;
  samples: number;
  /** Decisions this worker won the compare-and-set for. */
  decided: number;
  /** Decision messages this worker published (its own, plus recovered ones). */
  published: number;
  /** Compare-and-set conflicts retried. */
  conflicts: number;
  /** Votes that arrived after their sample was decided. */
  lateVotes: number;
  /** Batches of held messages merged into the shared KV record (read + compare-and-set) instead of decided from memory. */
  merged: number;
  /** Times the windows doubled because they were full of undecidable samples (see `maxConcurrency`). */
  widened: number;
  /** Messages sent to the poison stream. */
  poisoned: number;
  /** Messages held (unacked) in memory right now, waiting for their sample to be decidable or stored. */
  held: number;
}

/** A running consensus worker. Any number may run; each sample is decided exactly once. */
export interface ConsensusWorker {
  readonly id: string;
  /**
   * Handles due work now: samples whose timeout passed, and decisions left unpublished. With
   * `full`, the whole bucket is scanned first. Returns how many decisions it made or published.
   */
  sweep(full?: boolean): Promise<number>;
  stats(): ConsensusWorkerStats;
  /** Critic agreement over the last decisions this worker published for a task (null when none yet). */
  agreement(task: string): AgreementReport | null;
  /** Stops consuming and sweeping; in-flight messages finish first, unacked ones are redelivered. */
  stop(): Promise<void>;
}

/**
 * The per-sample state in the `consensus` KV bucket (JSON). Protobuf payloads are base64 so the
 * record stays inspectable with `nats kv get`. Once decided, the record keeps only the decision
 * (which holds the sample and every vote) and whether it was published.
 */
interface ConsensusRecord {
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

type Event = ({ kind: "vote"; verdict: Verdict } | { kind: "sample"; sample: Sample }) & {
  bytes: Uint8Array;
  /** Delivered before (a worker died holding it, or it failed and was retried). */
  redelivered: boolean;
  /** W3C traceparent the message carried, if any. */
  traceparent?: string;
};

const KEY = /^[A-Za-z0-9_-]{1,200}$/;
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const outcomeToProto: Record<DecisionOutcomeKind, DecisionOutcome> = {
  quorum: DecisionOutcome.QUORUM_REACHED,
  early: DecisionOutcome.EARLY,
  veto: DecisionOutcome.VETO,
  timeout: DecisionOutcome.TIMEOUT,
};

/** A lost compare-and-set: someone else wrote the record first (update) or created it (create). */
function isCasConflict(err: unknown): boolean {
  return isKvConflict(err) || (err instanceof AutodidactError && err.code === Code.AlreadyExists);
}

function toVote(v: Verdict): Vote {
  return { criticId: v.criticId, approve: v.approve, score: v.score };
}

function validateVerdict(v: Verdict): void {
  if (!KEY.test(v.sampleId)) throw new AutodidactError(`verdict has an invalid sample id ${JSON.stringify(v.sampleId.slice(0, 80))}`, Code.InvalidArgument);
  if (v.criticId.length === 0) throw new AutodidactError("verdict has no critic id", Code.InvalidArgument);
  if (!Number.isFinite(v.score) || v.score < 0 || v.score > 1) {
    throw new AutodidactError(`verdict score must be in [0, 1], got ${v.score}`, Code.InvalidArgument);
  }
}

function validateSample(s: Sample): void {
  if (!KEY.test(s.id)) throw new AutodidactError(`sample has an invalid id ${JSON.stringify(s.id.slice(0, 80))}`, Code.InvalidArgument);
  if (s.task.length === 0) throw new AutodidactError("sample has no task", Code.InvalidArgument);
}

/**
 * A decision as agreement metrics see it (the counted votes and the outcome), so the monitor can
 * feed an agreement window from the decisions stream just as the worker does.
 */
export function judgedSampleFromDecision(decision: Decision): JudgedSample {
  return {
    votes: decision.votes.map((v) => ({ criticId: v.criticId, approve: v.approve, kind: v.criticKind, modelVersion: v.criticModelVersion })),
    accepted: decision.accepted,
  };
}

/** The last token of `verdicts.<task>` / `samples.proposed.<task>`. */
const taskOfSubject = (subject: string): string => subject.slice(subject.lastIndexOf(".") + 1);

/**
 * Starts a consensus worker: it consumes `verdicts.>` and `samples.proposed.>` from durable
 * consumers and holds each sample's messages unacked in memory. When they suffice to decide (with
 * {@link evaluateVotes}), the decided record is stored with ONE KV create under the sample id and
 * the Decision published to `decisions.<task>` with the sample id as message id; only then are the
 * messages acked, so a crash loses nothing (they are redelivered). When they do not suffice within
 * `flushAfterMs` (or the consumer is full, or the key already exists because the sample's messages
 * went to several workers), they are merged into the shared record with compare-and-set instead.
 * Create-if-absent and the CAS transition from pending to decided are the gate: only the worker
 * whose write lands publishes, so however many workers race over the same verdicts, each sample
 * gets one decision. A sweeper decides timed-out samples and re-publishes decisions a crashed
 * worker stored but never published.
 *
 * Sample ids must be KV- and subject-safe (`[A-Za-z0-9_-]`, e.g. UUIDs); a verdict's `score` is
 * used as sent (weighted `mean_score` policies need critics to fill it). Malformed messages go to
 * `poison.<stream>`; the worker keeps going.
 */
export async function createConsensusWorker(options: ConsensusWorkerOptions): Promise<ConsensusWorker> {
  const { bus, policyProvider } = options;
  const id = options.id ?? `consensus-${randomUUID().slice(0, 8)}`;
  const sweepIntervalMs = options.sweepIntervalMs ?? 250;
  const fullScanIntervalMs = options.fullScanIntervalMs ?? 60_000;
  const republishGraceMs = options.republishGraceMs ?? 5_000;
  const maxDeliver = options.maxDeliver ?? 10;
  const retryForMs = options.retryForMs ?? 15_000;
  const concurrency = options.concurrency ?? 4_096;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new AutodidactError(`concurrency must be a positive integer, got ${concurrency}`, Code.InvalidArgument);
  }
  const maxConcurrency = options.maxConcurrency ?? 16 * concurrency;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < concurrency) {
    throw new AutodidactError(`maxConcurrency must be an integer of at least concurrency (${concurrency}), got ${maxConcurrency}`, Code.InvalidArgument);
  }
  const tasks = options.tasks === undefined ? undefined : [...new Set(options.tasks)];
  if (tasks !== undefined && tasks.length === 0) throw new AutodidactError("tasks, when given, must name at least one task", Code.InvalidArgument);
  const log = createLogger("consensus", { worker: id });
  const tracer = trace.getTracer("autodidact.consensus");
  const agreementWindowSize = options.agreementWindow ?? 1_000;
  const windows = new Map<string, AgreementWindow>();
  const instruments = consensusInstruments();
  // Agreement gauges read the windows at collection time.
  const approvalGauge = instruments.meter.createObservableGauge("autodidact.consensus.critic.approval_rate", {
    description: "Share of a critic's votes that approve, over the recent decisions of a task",
  });
  const matchGauge = instruments.meter.createObservableGauge("autodidact.consensus.critic.agreement_with_decision", {
    description: "Share of a critic's votes that matched the final decision, over the recent decisions of a task",
  });
  const kappaGauge = instruments.meter.createObservableGauge("autodidact.consensus.fleiss_kappa", {
    description: "Fleiss' kappa of the critics over the recent decisions of a task",
  });
  const gaugeCallback = (result: { observe(value: number, attributes?: Record<string, string>): void }, which: "approval" | "match" | "kappa"): void => {
    for (const [task, window] of windows) {
      const report = window.report();
      if (which === "kappa") {
        if (report.fleissKappa !== null) result.observe(report.fleissKappa, { task });
        continue;
      }
      for (const c of report.critics) {
        if (which === "approval") result.observe(c.approvalRate, { task, critic: c.criticId });
        else if (c.agreementWithDecision !== null) result.observe(c.agreementWithDecision, { task, critic: c.criticId });
      }
    }
  };
  const approvalCb = (r: Parameters<typeof gaugeCallback>[0]): void => gaugeCallback(r, "approval");
  const matchCb = (r: Parameters<typeof gaugeCallback>[0]): void => gaugeCallback(r, "match");
  const kappaCb = (r: Parameters<typeof gaugeCallback>[0]): void => gaugeCallback(r, "kappa");
  const stats: ConsensusWorkerStats = { verdicts: 0, samples: 0, decided: 0, published: 0, conflicts: 0, lateVotes: 0, merged: 0, poisoned: 0, held: 0, widened: 0 };

  // KV requests get a short timeout of their own: a request lost while NATS restarts fails fast
  // and is retried, instead of holding its sample for the bus-wide timeout.
  const kv: KvStore = await openKv({ ...bus, js: jetstream(bus.nc, { timeout: options.kvTimeoutMs ?? 3_000 }) }, KvBuckets.Consensus);
  const readRecord = async (sampleId: string): Promise<{ record: ConsensusRecord; revision: number } | null> => {
    const entry = await kv.getJson<ConsensusRecord>(sampleId);
    return entry === null ? null : { record: entry.value, revision: entry.revision };
  };

  /** Samples still open, with the time their timeout fires. */
  const deadlines = new Map<string, number>();
  /** Decisions seen stored but not published, with when they were decided. */
  const unpublished = new Map<string, number>();
  const policies = new Map<string, ConsensusPolicy>();
  const policyOf = (spec: ConsensusPolicySpec): ConsensusPolicy => {
    const key = JSON.stringify(spec);
    let p = policies.get(key);
    if (p === undefined) {
      p = createConsensusPolicy(spec);
      if (policies.size > 64) policies.clear();
      policies.set(key, p);
    }
    return p;
  };

  const clockStart = (r: ConsensusRecord): number | undefined => r.firstVoteAt ?? r.sampleSeenAt;

  /** Adds an event to a pending record; false when it changes nothing (a re-delivery). */
  const apply = (r: ConsensusRecord, e: Event, now: number): boolean => {
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
  };

  /** Policy references and specs per policy object, built once: every decision carries one. */
  const policyRefs = new WeakMap<ConsensusPolicy, PolicyRef>();
  const policySpecs = new WeakMap<ConsensusPolicy, ConsensusPolicySpec>();
  const refOf = (policy: ConsensusPolicy): PolicyRef => {
    let ref = policyRefs.get(policy);
    if (ref === undefined) {
      ref = create(PolicyRefSchema, { name: policy.name, version: BigInt(policy.version), spec: policyToProto(policy) });
      policyRefs.set(policy, ref);
    }
    return ref;
  };
  const specOf = (policy: ConsensusPolicy): ConsensusPolicySpec => {
    let spec = policySpecs.get(policy);
    if (spec === undefined) {
      spec = policyToSpec(policy);
      policySpecs.set(policy, spec);
    }
    return spec;
  };

  /** What a decision is made of, decoded: from a KV record or straight from held messages. */
  interface DecisionParts {
    sampleId: string;
    task: string;
    sample: Sample | undefined;
    votes: Verdict[];
    conflicts: string[];
  }
  /** A sample as the messages one worker holds make it, ready to decide from memory. */
  interface LocalView extends DecisionParts {
    /** When the first of those messages arrived here. */
    start?: number;
  }
  const partsOfRecord = (r: ConsensusRecord): DecisionParts => ({
    sampleId: r.sampleId,
    task: r.task,
    sample: r.sample === undefined ? undefined : fromBinary(SampleSchema, unb64(r.sample)),
    votes: r.votes.map((v) => fromBinary(VerdictSchema, unb64(v))),
    conflicts: r.conflicts,
  });

  const buildDecision = (
    r: DecisionParts,
    policy: ConsensusPolicy,
    ev: Extract<ConsensusEvaluation, { state: "decided" }>,
    now: number,
    detail?: string,
  ): Decision =>
    create(DecisionSchema, {
      sampleId: r.sampleId,
      task: r.task,
      accepted: ev.accepted,
      ...(r.sample === undefined ? {} : { sample: r.sample }),
      votes: r.votes,
      policy: refOf(policy),
      outcome: outcomeToProto[ev.outcome],
      outcomeDetail: detail ?? (r.conflicts.length > 0 ? `${ev.reason}; ignored changed votes of ${r.conflicts.join(", ")}` : ev.reason),
      decidedAt: timestampFromMs(now),
      deciderId: id,
      support: ev.support,
    });

  /** Publishes a stored decision (idempotent by msg id), then marks the record published. */
  const publishDecision = async (
    sampleId: string,
    task: string,
    bytes: Uint8Array,
    decoded?: Decision,
    stored?: { record: ConsensusRecord; revision: number },
  ): Promise<void> => {
    await announce(sampleId, task, bytes, decoded);
    if (stored === undefined) {
      await markPublished(sampleId);
      return;
    }
    // The writer knows the revision it wrote: one update, no read. The mark only spares sweepers
    // a re-publish (which the duplicate window absorbs), so the messages need not wait for it.
    const mark = kv
      .updateJson(sampleId, { ...stored.record, published: true }, stored.revision)
      .then(
        () => undefined,
        (err: unknown) => {
          if (isCasConflict(err)) return markPublished(sampleId);
          throw err;
        },
      )
      .catch((err: unknown) => {
        log.warn("could not mark a published decision; a sweep will re-publish it", { sampleId, error: String(err) });
        unpublished.set(sampleId, 0);
      })
      .finally(() => marking.delete(mark));
    marking.add(mark);
  };

  /** Publishes a decision (the sample id is its message id) and feeds the agreement window and hook. */
  const announce = async (sampleId: string, task: string, bytes: Uint8Array, decoded?: Decision): Promise<void> => {
    await bus.publish(Subjects.decisions(task), bytes, { msgId: sampleId });
    stats.published++;
    unpublished.delete(sampleId);
    const decision = decoded ?? fromBinary(DecisionSchema, bytes);
    let window = windows.get(task);
    if (window === undefined) {
      window = createAgreementWindow(agreementWindowSize);
      windows.set(task, window);
    }
    window.add(judgedSampleFromDecision(decision));
    try {
      options.onDecision?.(decision);
    } catch (err) {
      log.warn("onDecision hook threw", { error: String(err) });
    }
  };

  /** Pending "published" marks, awaited by stop(). */
  const marking = new Set<Promise<void>>();
  const markPublished = async (sampleId: string): Promise<void> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await readRecord(sampleId);
      if (current === null || current.record.published) return;
      try {
        await kv.updateJson(sampleId, { ...current.record, published: true }, current.revision);
        return;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        stats.conflicts++;
      }
    }
  };

  /**
   * The one state transition: read the record, add the event, evaluate, write back with CAS;
   * retry from the read on conflict. Publishes when this call wrote the decision. Returns
   * whether it published a decision.
   */
  const touch = async (sampleId: string, task: string, events: readonly Event[]): Promise<boolean> => {
    const event = events[0];
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const current = await readRecord(sampleId);
      let record: ConsensusRecord;
      let revision = 0;
      let changed = false;
      if (current === null) {
        if (event === undefined) {
          deadlines.delete(sampleId);
          return false;
        }
        let policy: ConsensusPolicy;
        try {
          policy = await policyProvider(task);
        } catch (err) {
          // Retryable on purpose: an operator may be about to set the policy; the message waits
          // (retries, then redeliveries) instead of going straight to poison.
          throw new AutodidactError(`no consensus policy for task ${JSON.stringify(task)} yet: ${String(err)}`, Code.Unavailable, { cause: err });
        }
        record = { v: 1, sampleId, task, policy: policyToSpec(policy), votes: [], conflicts: [] };
        changed = true;
      } else {
        ({ record, revision } = current);
      }

      if (record.decision !== undefined) {
        deadlines.delete(sampleId);
        // Published (by whoever decided): nothing left for the sweeper to re-check.
        if (record.published === true) unpublished.delete(sampleId);
        const voters = new Set(fromBinary(DecisionSchema, unb64(record.decision)).votes.map((v) => v.criticId));
        for (const e of events) if (e.kind === "vote" && !voters.has(e.verdict.criticId)) stats.lateVotes++;
        if (record.published === true && record.ackAfterPublish === true) {
          // Its decider acks the messages it decided from only after publishing: one of them
          // delivered again means the decider may have died before the publish.
          const mine = events.some((e) => e.redelivered && (e.kind === "sample" || voters.has(e.verdict.criticId)));
          if (!mine) return false;
          log.info("re-publishing a decision whose messages came back", { sampleId, decider: record.deciderId });
          await announce(sampleId, record.task, unb64(record.decision));
          return true;
        }
        if (!record.published) {
          const decidedAt = record.decidedAt ?? 0;
          if (now - decidedAt >= republishGraceMs) {
            log.info("publishing a decision another worker stored but did not publish", { sampleId, decider: record.deciderId });
            await publishDecision(sampleId, record.task, unb64(record.decision));
            return true;
          }
          unpublished.set(sampleId, decidedAt);
        }
        return false;
      }

      for (const e of events) if (apply(record, e, now)) changed = true;
      const policy = policyOf(record.policy);
      const start = clockStart(record);
      const votes = record.votes.map((v) => toVote(fromBinary(VerdictSchema, unb64(v))));
      const ev = evaluateVotes(policy, votes, start === undefined ? { now } : { now, firstVoteAt: start });
      let decision: Decision | undefined;
      if (ev.state === "decided") {
        if (record.sample !== undefined) decision = buildDecision(partsOfRecord(record), policy, ev, now);
        else if (start !== undefined && now >= start + policy.timeoutMs) {
          // Votes without their sample until the timeout: nothing to train on, so reject.
          decision = buildDecision(
            partsOfRecord(record),
            policy,
            { ...ev, accepted: false, outcome: "timeout" },
            now,
            `timeout after ${policy.timeoutMs} ms: the sample itself never reached consensus (votes said: ${ev.reason})`,
          );
        }
      }
      let decisionBytes: Uint8Array | undefined;
      if (decision !== undefined) {
        decisionBytes = toBinary(DecisionSchema, decision);
        record = decidedRecord(record, decisionBytes, now);
        changed = true;
      }
      if (!changed) {
        if (start !== undefined) deadlines.set(sampleId, start + policy.timeoutMs);
        return false;
      }

      let written: number;
      try {
        written = revision === 0 ? await kv.createJson(sampleId, record) : await kv.updateJson(sampleId, record, revision);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        stats.conflicts++;
        instruments.conflicts.add(1);
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
        continue;
      }
      if (decision === undefined) {
        const s = clockStart(record);
        if (s !== undefined) deadlines.set(sampleId, s + policy.timeoutMs);
        return false;
      }
      deadlines.delete(sampleId);
      stats.decided++;
      instruments.decisions.add(1, { task: record.task, outcome: DecisionOutcome[decision.outcome] ?? "UNSPECIFIED", accepted: decision.accepted });
      if (start !== undefined) instruments.decisionSeconds.record(Math.max(0, now - start) / 1000, { task: record.task });
      await publishDecision(sampleId, record.task, decisionBytes!, decision, { record, revision: written });
      return true;
    }
  };

  /** The record that marks a sample decided: its votes travel inside the stored Decision, not beside it. */
  const decidedRecord = (record: Pick<ConsensusRecord, "sampleId" | "task" | "policy" | "conflicts">, decision: Uint8Array, now: number): ConsensusRecord => ({
    v: 1,
    sampleId: record.sampleId,
    task: record.task,
    policy: record.policy,
    votes: [],
    conflicts: [...record.conflicts],
    decision: b64(decision),
    decidedAt: now,
    deciderId: id,
    published: false,
  });

  /**
   * The fast path: a sample whose messages all reached this worker is decided from memory and
   * stored with ONE create of its decided record (create-if-absent is the exactly-once gate).
   * Returns false when the key exists (another worker stored votes or decided it): the caller
   * merges through {@link touch}.
   */
  const decideFromMemory = async (view: LocalView, policy: ConsensusPolicy, ev: Extract<ConsensusEvaluation, { state: "decided" }>, now: number): Promise<boolean> => {
    const decision = buildDecision(view, policy, ev, now);
    const bytes = toBinary(DecisionSchema, decision);
    // Written published at once (no second write): the messages are acked only after the publish.
    const decided: ConsensusRecord = { ...decidedRecord({ ...view, policy: specOf(policy) }, bytes, now), published: true, ackAfterPublish: true };
    let written: number;
    try {
      written = await kv.createJson(view.sampleId, decided);
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      // A retry after a create whose reply was lost finds its own record (same bytes): go on.
      const current = await readRecord(view.sampleId);
      if (current === null || current.record.decision !== decided.decision) {
        stats.conflicts++;
        instruments.conflicts.add(1);
        return false;
      }
      written = current.revision;
    }
    deadlines.delete(view.sampleId);
    stats.decided++;
    instruments.decisions.add(1, { task: view.task, outcome: DecisionOutcome[decision.outcome] ?? "UNSPECIFIED", accepted: decision.accepted });
    if (view.start !== undefined) instruments.decisionSeconds.record(Math.max(0, now - view.start) / 1000, { task: view.task });
    try {
      await announce(view.sampleId, view.task, bytes, decision);
    } catch (err) {
      // Not published (the bus already retried): say so in the record, so that any worker's sweep
      // publishes it; and do not ack the messages, whose redelivery publishes it too.
      try {
        await kv.updateJson(view.sampleId, { ...decided, published: false }, written);
        unpublished.set(view.sampleId, now);
      } catch (markErr) {
        log.warn("could not mark an unpublished decision; its redelivered messages will publish it", { sampleId: view.sampleId, error: String(markErr) });
      }
      throw new AutodidactError(`decision of ${view.sampleId} stored but not published: ${String(err)}`, Code.Unavailable, {
        cause: err,
        details: { redeliver: true },
      });
    }
    return true;
  };

  /**
   * Retries a step that failed transiently (NATS restarting, request timeouts) in place for up to
   * `retryForMs`, telling the server we are still working, so an outage shorter than that does not
   * push the message out to a redelivery (and its sample past its timeout).
   */
  const withRetry = async <T>(msg: BusMessage, step: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + retryForMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        // A decision stored but not published is not retried here: the redelivery publishes it.
        const redeliver = err instanceof AutodidactError && err.details["redeliver"] === true;
        if (redeliver || !isRetryableError(err) || stopped || bus.nc.isClosed() || Date.now() >= deadline) throw err;
        log.debug("consensus step failed; retrying", { subject: msg.subject, attempt, error: String(err) });
        try {
          msg.working();
        } catch {
          // Disconnected: the next attempt will tell.
        }
        await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
      }
    }
  };

  /** Decodes and validates a message; InvalidArgument (the bus sends it to poison) when malformed. */
  const parse = (msg: BusMessage, kind: "vote" | "sample"): { sampleId: string; task: string; event: Event } => {
    const traceparent = msg.headers?.has("traceparent") ? msg.headers.get("traceparent") : "";
    const tp = traceparent === "" ? {} : { traceparent };
    const redelivered = msg.deliveryCount > 1;
    try {
      if (kind === "vote") {
        const verdict = fromBinary(VerdictSchema, msg.data);
        validateVerdict(verdict);
        return { sampleId: verdict.sampleId, task: verdict.task || taskOfSubject(msg.subject), event: { kind, verdict, bytes: msg.data, redelivered, ...tp } };
      }
      const sample = fromBinary(SampleSchema, msg.data);
      validateSample(sample);
      return { sampleId: sample.id, task: sample.task, event: { kind, sample, bytes: msg.data, redelivered, ...tp } };
    } catch (err) {
      stats.poisoned++;
      if (err instanceof AutodidactError) throw err;
      throw new AutodidactError(`malformed ${kind === "vote" ? "verdict" : "sample"} on ${msg.subject}: ${String(err)}`, Code.InvalidArgument, {
        cause: err,
      });
    }
  };

  /** One delivered message waiting in memory for its sample to be settled. */
  interface Held {
    kind: "vote" | "sample";
    event: Event;
    msg: BusMessage;
    resolve: () => void;
    reject: (err: unknown) => void;
  }
  /** What this worker holds of one sample: its messages (unacked) in arrival order. */
  interface Local {
    sampleId: string;
    task: string;
    /** When its first held message arrived (decision latency metric). */
    firstSeenAt: number;
    held: Held[];
    policy?: ConsensusPolicy;
    /** The shared KV record is the place for this sample now (it exists, or we gave up on memory). */
    viaKv: boolean;
    /** Set by the hold timer (or stop): merge into KV now. */
    flushNow: boolean;
    running: boolean;
    timer?: ReturnType<typeof setTimeout>;
  }
  /** Messages of each kind this worker takes at once: its consumers' windows (they widen under skew). */
  const windowOf = { vote: concurrency, sample: Math.max(1, Math.ceil(concurrency / 4)) };
  /** The consumers of each kind, whose in-flight caps follow {@link windowOf}. */
  const handlesOf: { vote: ConsumerHandle[]; sample: ConsumerHandle[] } = { vote: [], sample: [] };
  /**
   * Doubles both windows (up to `maxConcurrency` verdicts) so the votes a held sample waits for
   * can come in; false when they are as wide as allowed.
   */
  const widen = (): boolean => {
    if (windowOf.vote >= maxConcurrency) return false;
    windowOf.vote = Math.min(maxConcurrency, windowOf.vote * 2);
    windowOf.sample = Math.max(1, Math.ceil(windowOf.vote / 4));
    for (const h of handlesOf.vote) h.setMaxInFlight(windowOf.vote);
    for (const h of handlesOf.sample) h.setMaxInFlight(windowOf.sample);
    stats.widened++;
    log.info("consumer windows widened: critics run apart", { verdicts: windowOf.vote, samples: windowOf.sample, held: heldCount.vote + heldCount.sample });
    return true;
  };
  /** Messages of each kind waiting in this worker (held or being stored), against its window. */
  const heldCount = { vote: 0, sample: 0 };
  const flushAfterMs = options.flushAfterMs ?? 2_000;
  const locals = new Map<string, Local>();
  /** Samples known to have a KV record (bounded, oldest forgotten first): their events go straight to KV. */
  const inKv = new Set<string>();
  const rememberInKv = (sampleId: string): void => {
    inKv.delete(sampleId);
    inKv.add(sampleId);
    if (inKv.size > 100_000) for (const k of inKv) { inKv.delete(k); break; }
  };
  /**
   * Samples this worker decided and published, with the critics whose votes the decision holds
   * (bounded, oldest forgotten first): a vote arriving after an early decision is acked without
   * a KV read, since the stored decision cannot change.
   */
  const decidedHere = new Map<string, ReadonlySet<string>>();
  const rememberDecided = (sampleId: string, voters: ReadonlySet<string>): void => {
    decidedHere.set(sampleId, voters);
    if (decidedHere.size > 100_000) for (const k of decidedHere.keys()) { decidedHere.delete(k); break; }
  };
  let stopped = false;

  /**
   * The sample as this worker's held messages alone make it (the same rules as {@link apply}, on
   * the decoded messages: first vote per critic, changed votes ignored), with its evaluation.
   */
  const localView = (l: Local, policy: ConsensusPolicy, now: number): { view: LocalView; ev: ConsensusEvaluation } => {
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
  };

  /**
   * A consumer of this kind pulls nothing until some of its held messages settle (it stops pulling
   * a little below its window, so a count against the window alone would miss it).
   */
  const full = (kind: "vote" | "sample"): boolean => heldCount[kind] >= windowOf[kind] || handlesOf[kind].some((h) => h.waitingForCapacity);
  /** Messages settled so far: a full consumer that makes no progress is stalled by held messages. */
  let progress = 0;
  const pressureTimers: { vote?: ReturnType<typeof setTimeout>; sample?: ReturnType<typeof setTimeout> } = {};
  /**
   * A full consumer pulls nothing new. When it stays full with no message settled for 100 ms,
   * its oldest held sample is merged into KV to make room, so held messages never stall the
   * stream until their hold time (with a small `concurrency`, this is the old vote-by-vote path).
   */
  const watchPressure = (kind: "vote" | "sample"): void => {
    if (pressureTimers[kind] !== undefined) return;
    const seen = progress;
    pressureTimers[kind] = setTimeout(() => {
      pressureTimers[kind] = undefined;
      if (stopped || !full(kind)) return;
      // A full samples window with room for verdicts only waits for the critics (slower than the
      // generator): the votes it waits for still come in. Stalled means no verdict can come in.
      const stalled = progress === seen && (kind === "vote" || full("vote"));
      if (stalled && !widen()) {
        // Stalled at the widest windows: the oldest quarter of the held samples go to KV at once (one at a time would
        // throttle the stream to one sample per tick).
        let budget = Math.max(1, Math.ceil(heldCount[kind] / 4));
        for (const other of locals.values()) {
          if (budget <= 0) break;
          if (other.viaKv || other.flushNow || !other.held.some((h) => h.kind === kind)) continue;
          other.flushNow = true;
          budget -= other.held.length;
          void drive(other);
        }
      }
      watchPressure(kind);
    }, 100);
  };

  const settleBatch = (batch: Held[], err?: unknown): void => {
    progress += batch.length;
    for (const h of batch) {
      heldCount[h.kind]--;
      if (err === undefined) h.resolve();
      else h.reject(err);
    }
  };

  /**
   * Drives one sample's held messages: decided from memory when they suffice (one KV create),
   * otherwise held until more arrive or the hold time passes, then merged into the shared record
   * with compare-and-set. A message resolves (is acked) only once its event is stored in KV.
   */
  const drive = async (l: Local): Promise<void> => {
    if (l.running) return;
    l.running = true;
    try {
      while (l.held.length > 0) {
        const voters = decidedHere.get(l.sampleId);
        if (voters !== undefined) {
          const batch = l.held.splice(0);
          for (const h of batch) if (h.event.kind === "vote" && !voters.has(h.event.verdict.criticId)) stats.lateVotes++;
          settleBatch(batch);
          continue;
        }
        if (!l.viaKv && !l.flushNow && !stopped) {
          if (l.policy === undefined) {
            try {
              l.policy = await policyProvider(l.task);
            } catch {
              // The KV path reports (and retries) the missing policy.
              l.viaKv = true;
              continue;
            }
          }
          const policy = l.policy;
          const now = Date.now();
          const { view, ev } = localView(l, policy, now);
          if (ev.state === "decided" && view.sample !== undefined) {
            const batch = l.held.splice(0);
            let created = false;
            try {
              created = await tracer.startActiveSpan("consensus decide", async (s) => {
                try {
                  return await withRetry(batch[0]!.msg, () => decideFromMemory(view, policy, ev, now));
                } finally {
                  s.end();
                }
              });
            } catch (err) {
              settleBatch(batch, err);
              continue;
            }
            rememberInKv(l.sampleId);
            if (created) {
              rememberDecided(l.sampleId, new Set(view.votes.map((v) => v.criticId)));
              settleBatch(batch);
            }
            else {
              l.viaKv = true;
              l.held.unshift(...batch);
            }
            continue;
          }
          if (l.timer === undefined) {
            const delay = Math.max(0, Math.min(flushAfterMs, policy.timeoutMs / 4));
            l.timer = setTimeout(() => {
              l.flushNow = true;
              void drive(l);
            }, delay);
          }
          return;
        }
        const batch = l.held.splice(0);
        stats.merged++;
        try {
          await tracer.startActiveSpan("consensus record votes", async (s) => {
            try {
              await withRetry(batch[0]!.msg, () => touch(l.sampleId, l.task, batch.map((h) => h.event)));
            } finally {
              s.end();
            }
          });
          rememberInKv(l.sampleId);
          settleBatch(batch);
        } catch (err) {
          settleBatch(batch, err);
        }
      }
    } finally {
      l.running = false;
      if (l.held.length === 0) {
        if (l.timer !== undefined) clearTimeout(l.timer);
        if (locals.get(l.sampleId) === l) locals.delete(l.sampleId);
      }
    }
  };

  const handler =
    (kind: "vote" | "sample") =>
    async (msg: BusMessage): Promise<void> => {
      const { sampleId, task, event } = parse(msg, kind);
      const span = trace.getActiveSpan();
      span?.setAttribute("autodidact.sample_id", sampleId);
      span?.setAttribute("autodidact.task", task);
      let l = locals.get(sampleId);
      if (l === undefined) {
        l = { sampleId, task, firstSeenAt: Date.now(), held: [], viaKv: inKv.has(sampleId), flushNow: stopped, running: false };
        locals.set(sampleId, l);
      }
      const local = l;
      const done = new Promise<void>((resolve, reject) => local.held.push({ kind, event, msg, resolve, reject }));
      heldCount[kind]++;
      void drive(local);
      if (full(kind)) watchPressure(kind);
      await done;
      if (kind === "vote") stats.verdicts++;
      else stats.samples++;
    };

  const verdictsDurable = options.verdictsDurable ?? "consensus-verdicts";
  const samplesDurable = options.samplesDurable ?? "consensus-samples";
  // Held messages count against the server's ack-pending cap, shared by the workers of a durable.
  const maxAckPending = Math.max(10_000, 4 * maxConcurrency);
  const spec = (stream: string, durable: string, filterSubject: string) => ({
    stream,
    durable,
    filterSubject,
    maxDeliver,
    maxAckPending,
    ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
    description: "consensus worker",
  });
  const verdictSpecs =
    tasks === undefined
      ? [spec(Streams.Verdicts, verdictsDurable, Subjects.allVerdicts)]
      : tasks.map((t) => spec(Streams.Verdicts, `${verdictsDurable}-${t}`, Subjects.verdicts(t)));
  const sampleSpecs =
    tasks === undefined
      ? [spec(Streams.Samples, samplesDurable, Subjects.allProposed)]
      : tasks.map((t) => spec(Streams.Samples, `${samplesDurable}-${t}`, Subjects.proposed(t)));
  // Fast (unconfirmed) acks: the exactly-once gate is the KV create + msgId, so a lost ack is only a redelivery.
  const consumeOptions = (kind: "vote" | "sample") => ({ maxInFlight: windowOf[kind], ackMode: "fast" as const, logger: log });
  const stopConsumers = (): Promise<unknown> => Promise.all([...handlesOf.vote, ...handlesOf.sample].map((h) => h.stop()));
  try {
    for (const s of verdictSpecs) handlesOf.vote.push(await consume(bus, s, handler("vote"), consumeOptions("vote")));
    for (const s of sampleSpecs) handlesOf.sample.push(await consume(bus, s, handler("sample"), consumeOptions("sample")));
  } catch (err) {
    await stopConsumers();
    throw err;
  }

  /** A sweeper step for one sample, inside the sample's own trace when it has one. */
  const settle = async (sampleId: string): Promise<boolean> => {
    const current = await readRecord(sampleId);
    const carrier = current?.record.trace === undefined ? {} : { traceparent: current.record.trace };
    const parent = propagation.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
    return tracer.startActiveSpan("consensus sweep", { attributes: { "autodidact.sample_id": sampleId } }, parent, async (span) => {
      try {
        return await touch(sampleId, "", []);
      } finally {
        span.end();
      }
    });
  };

  let sweeping: Promise<number> | undefined;
  let lastFullScan = 0;
  const sweepOnce = async (full: boolean): Promise<number> => {
    let handled = 0;
    const now = Date.now();
    if (full) {
      lastFullScan = now;
      for (const k of await kv.keys()) {
        const current = await readRecord(k);
        if (current === null) continue;
        const r = current.record;
        // Another task's samples are settled by that task's workers, whose backlog we cannot see.
        if (tasks !== undefined && !tasks.includes(r.task)) continue;
        if (r.decision !== undefined) {
          if (!r.published) unpublished.set(k, r.decidedAt ?? 0);
          continue;
        }
        const s = clockStart(r);
        if (s !== undefined) deadlines.set(k, s + r.policy.timeoutMs);
      }
    }
    // Votes still queued for this worker may belong to samples whose timeout passed while we were
    // behind (or disconnected): decide timeouts only once the verdict backlog is drained.
    let caughtUp = false;
    if ([...deadlines.values()].some((d) => d <= now)) {
      try {
        const lags = await Promise.all(verdictSpecs.map((s) => consumerLag(bus, s.stream, s.durable)));
        caughtUp = lags.every((l) => l.pending === 0);
      } catch {
        caughtUp = false;
      }
    }
    for (const [sampleId, deadline] of [...deadlines]) {
      if (stopped || !caughtUp) break;
      if (deadline > now) continue;
      try {
        if (await settle(sampleId)) handled++;
      } catch (err) {
        log.warn("sweep could not settle a sample", { sampleId, error: String(err) });
      }
    }
    for (const [sampleId, decidedAt] of [...unpublished]) {
      if (stopped) break;
      if (now - decidedAt < republishGraceMs) continue;
      try {
        if (await settle(sampleId)) handled++;
      } catch (err) {
        log.warn("sweep could not publish a decision", { sampleId, error: String(err) });
      }
    }
    return handled;
  };
  const sweep = (full = false): Promise<number> => {
    const run = (sweeping ?? Promise.resolve(0)).catch(() => 0).then(() => sweepOnce(full));
    sweeping = run;
    return run;
  };
  approvalGauge.addCallback(approvalCb);
  matchGauge.addCallback(matchCb);
  kappaGauge.addCallback(kappaCb);
  const timer = setInterval(() => {
    if (stopped) return;
    sweep(Date.now() - lastFullScan >= fullScanIntervalMs).catch((err: unknown) => log.warn("sweep failed", { error: String(err) }));
  }, sweepIntervalMs);
  timer.unref();

  let unregister = (): void => undefined;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    // Held messages are merged into KV now rather than after their hold time.
    for (const l of locals.values()) {
      l.flushNow = true;
      void drive(l);
    }
    clearInterval(timer);
    clearTimeout(pressureTimers.vote);
    clearTimeout(pressureTimers.sample);
    approvalGauge.removeCallback(approvalCb);
    matchGauge.removeCallback(matchCb);
    kappaGauge.removeCallback(kappaCb);
    await stopConsumers();
    await sweeping?.catch(() => undefined);
    await Promise.all([...marking]);
  };
  unregister = bus.onClose(stop);

  return {
    id,
    sweep,
    stats: () => ({ ...stats, held: heldCount.vote + heldCount.sample }),
    agreement: (task) => windows.get(task)?.report() ?? null,
    stop,
  };
}
