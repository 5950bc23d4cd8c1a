// The consensus worker's public shapes (options, stats, the running worker) and the validated
// settings its parts read.
import { randomUUID } from "node:crypto";
import { Durables } from "../../src/domain/topology/index.js";
import type { Bus } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import type { AgreementReport, PolicyProvider } from "../../src/domain/consensus/index.js";

/** Where the worker gets a task's policy (defined with the policy store, which provides one). */
export type { PolicyProvider };

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

/** The options with every default filled in and checked: what the worker's parts read. */
export interface WorkerSettings {
  readonly id: string;
  readonly tasks: readonly string[] | undefined;
  readonly verdictsDurable: string;
  readonly samplesDurable: string;
  readonly sweepIntervalMs: number;
  readonly fullScanIntervalMs: number;
  readonly republishGraceMs: number;
  readonly concurrency: number;
  readonly maxConcurrency: number;
  readonly flushAfterMs: number;
  readonly ackWaitMs: number | undefined;
  readonly kvTimeoutMs: number;
  readonly retryForMs: number;
  readonly maxDeliver: number;
  readonly agreementWindow: number;
}

/** Fills in the defaults; InvalidArgument for a window or task list that cannot work. */
export function workerSettings(options: ConsensusWorkerOptions): WorkerSettings {
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
  return {
    id: options.id ?? `consensus-${randomUUID().slice(0, 8)}`,
    tasks,
    verdictsDurable: options.verdictsDurable ?? Durables.consensusVerdicts.name,
    samplesDurable: options.samplesDurable ?? Durables.consensusSamples.name,
    sweepIntervalMs: options.sweepIntervalMs ?? 250,
    fullScanIntervalMs: options.fullScanIntervalMs ?? 60_000,
    republishGraceMs: options.republishGraceMs ?? 5_000,
    concurrency,
    maxConcurrency,
    flushAfterMs: options.flushAfterMs ?? 2_000,
    ackWaitMs: options.ackWaitMs,
    kvTimeoutMs: options.kvTimeoutMs ?? 3_000,
    retryForMs: options.retryForMs ?? 15_000,
    maxDeliver: options.maxDeliver ?? 10,
    agreementWindow: options.agreementWindow ?? 1_000,
  };
}

/** The counters a worker's parts share (one object per worker); `held` is read from its windows. */
export type WorkerCounters = Omit<ConsensusWorkerStats, "held">;

/** Fresh counters, all zero. */
export function newCounters(): WorkerCounters {
  return { verdicts: 0, samples: 0, decided: 0, published: 0, conflicts: 0, lateVotes: 0, merged: 0, poisoned: 0, widened: 0 };
}
