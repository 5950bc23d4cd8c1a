import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type ConsumerConfig,
  type ConsumerInfo,
} from "@nats-io/jetstream";
import { nanos, type MsgHdrs } from "@nats-io/transport-node";
import { AutodidactError, Code } from "../errors/index.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import type { Bus } from "./connection.js";
import { FastAcks, InProgressAcks, MessageRunner, PoisonRecorder, PullLoop, windowFor } from "./consume-parts.js";
import { permissionDeniedError } from "./permission.js";

/** A durable pull consumer: the unit of "each message handled once per durable". */
export interface ConsumerSpec {
  stream: string;
  /** Durable name; every replica of one critic binds the same one and they share the work. */
  durable: string;
  /** Only subjects matching this filter (e.g. `samples.proposed.addition`). */
  filterSubject?: string;
  /** How long the server waits for an ack before redelivering (default 30 s). */
  ackWaitMs?: number;
  /** Deliveries before a message counts as poison (default 5). */
  maxDeliver?: number;
  /** Where a new durable starts: every stored message (default) or only new ones. */
  deliverPolicy?: "all" | "new";
  /** Server-side cap of unacknowledged messages across all replicas (default 1000). */
  maxAckPending?: number;
  description?: string;
}

function consumerConfig(spec: ConsumerSpec): Partial<ConsumerConfig> {
  const cfg: Partial<ConsumerConfig> = {
    durable_name: spec.durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(spec.ackWaitMs ?? 30_000),
    max_deliver: spec.maxDeliver ?? 5,
    deliver_policy: spec.deliverPolicy === "new" ? DeliverPolicy.New : DeliverPolicy.All,
    max_ack_pending: spec.maxAckPending ?? 1_000,
  };
  if (spec.filterSubject !== undefined) cfg.filter_subject = spec.filterSubject;
  if (spec.description !== undefined) cfg.description = spec.description;
  return cfg;
}

function validateSpec(spec: ConsumerSpec): void {
  if (!/^[A-Za-z0-9_-]+$/.test(spec.durable)) {
    throw new AutodidactError(`invalid durable name "${spec.durable}": use letters, digits, "_" or "-"`, Code.InvalidArgument);
  }
  if (spec.maxDeliver !== undefined && (!Number.isInteger(spec.maxDeliver) || spec.maxDeliver < 1)) {
    throw new AutodidactError(`maxDeliver must be a positive integer, got ${spec.maxDeliver}`, Code.InvalidArgument);
  }
  if (spec.ackWaitMs !== undefined && !(spec.ackWaitMs >= 100)) {
    throw new AutodidactError(`ackWaitMs must be at least 100, got ${spec.ackWaitMs}`, Code.InvalidArgument);
  }
}

/**
 * Creates the durable consumer, or updates it when its ack wait / max deliver / max ack pending
 * changed. Replicas racing to create the same durable are fine: identical creates are idempotent.
 */
export async function ensureConsumer(bus: Bus, spec: ConsumerSpec): Promise<ConsumerInfo> {
  validateSpec(spec);
  const cfg = consumerConfig(spec);
  let existing: ConsumerInfo | null = null;
  try {
    existing = await bus.jsm.consumers.info(spec.stream, spec.durable);
  } catch (err) {
    const denied = permissionDeniedError(err, `consumer ${spec.stream}/${spec.durable}`);
    if (denied !== undefined) throw denied;
    if (!(err instanceof JetStreamApiError && (err.code === 10014 || err.code === 10059))) {
      throw new AutodidactError(`cannot look up consumer ${spec.stream}/${spec.durable}: ${String(err)}`, Code.Unavailable, {
        cause: err,
      });
    }
    if (err.code === 10059) {
      throw new AutodidactError(`stream ${spec.stream} does not exist: run ensureTopology first`, Code.FailedPrecondition, {
        cause: err,
      });
    }
  }
  try {
    if (existing === null) return await bus.jsm.consumers.add(spec.stream, cfg);
    const c = existing.config;
    if ((c.filter_subject ?? "") !== (cfg.filter_subject ?? "")) {
      throw new AutodidactError(
        `consumer ${spec.stream}/${spec.durable} exists with filter "${c.filter_subject ?? ""}", ` +
          `want "${cfg.filter_subject ?? ""}": use another durable name or delete it`,
        Code.FailedPrecondition,
      );
    }
    if (c.ack_wait !== cfg.ack_wait || c.max_deliver !== cfg.max_deliver || c.max_ack_pending !== cfg.max_ack_pending) {
      return await bus.jsm.consumers.update(spec.stream, spec.durable, {
        ack_wait: cfg.ack_wait,
        max_deliver: cfg.max_deliver,
        max_ack_pending: cfg.max_ack_pending,
      });
    }
    return existing;
  } catch (err) {
    if (err instanceof AutodidactError) throw err;
    const denied = permissionDeniedError(err, `consumer ${spec.stream}/${spec.durable}`);
    if (denied !== undefined) throw denied;
    throw new AutodidactError(`cannot create consumer ${spec.stream}/${spec.durable}: ${String(err)}`, Code.FailedPrecondition, {
      cause: err,
    });
  }
}

/** Work still to do for a durable: the number the generator and autoscalers back off on. */
export interface ConsumerLag {
  /** Messages not yet delivered to the durable. */
  pending: number;
  /** Messages delivered but not yet acknowledged. */
  ackPending: number;
  /** pending + ackPending. */
  total: number;
  /** Messages being redelivered. */
  redelivered: number;
}

/** Reads a durable's backlog (num_pending + num_ack_pending). */
export async function consumerLag(bus: Bus, stream: string, durable: string): Promise<ConsumerLag> {
  try {
    const info = await bus.jsm.consumers.info(stream, durable);
    return {
      pending: info.num_pending,
      ackPending: info.num_ack_pending,
      total: info.num_pending + info.num_ack_pending,
      redelivered: info.num_redelivered,
    };
  } catch (err) {
    if (err instanceof JetStreamApiError && (err.code === 10014 || err.code === 10059)) {
      throw new AutodidactError(`consumer ${stream}/${durable} does not exist`, Code.NotFound, { cause: err });
    }
    throw new AutodidactError(`cannot read lag of ${stream}/${durable}: ${String(err)}`, Code.Unavailable, { cause: err });
  }
}

/** Options of {@link waitForLagBelow}. */
export interface WaitForLagOptions {
  /** How often to poll the consumer info, in ms (default 250). */
  pollMs?: number;
  /** Gives up (Canceled) when aborted. */
  signal?: AbortSignal;
}

/**
 * Back-pressure for producers: resolves once the durable's backlog (pending + ack pending) is
 * below `maxLag`, so the generator proposes samples only as fast as the critics judge them.
 * A missing consumer counts as no backlog (nobody is consuming yet); transient errors are retried.
 */
export async function waitForLagBelow(
  bus: Bus,
  stream: string,
  durable: string,
  maxLag: number,
  options: WaitForLagOptions = {},
): Promise<ConsumerLag> {
  const pollMs = options.pollMs ?? 250;
  for (;;) {
    if (options.signal?.aborted === true) {
      throw new AutodidactError(`stopped waiting for ${stream}/${durable} to drain`, Code.Canceled);
    }
    try {
      const lag = await consumerLag(bus, stream, durable);
      if (lag.total < maxLag) return lag;
    } catch (err) {
      if (err instanceof AutodidactError && err.code === Code.NotFound) {
        return { pending: 0, ackPending: 0, total: 0, redelivered: 0 };
      }
      if (bus.nc.isClosed()) throw err;
    }
    await sleep(pollMs);
  }
}

/** One delivered message as a handler sees it. */
export interface BusMessage {
  readonly stream: string;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** The publisher's `Nats-Msg-Id` (the sample id), when it set one. */
  readonly msgId: string | undefined;
  /** Stream sequence: stable across redeliveries. */
  readonly seq: number;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  /** Tells the server the handler is still working (resets AckWait); called automatically too. */
  working(): void;
  /** Decodes the payload as UTF-8 JSON, throwing InvalidArgument (poison) when it is not. */
  json<T>(): T;
}

/** Handles one message; resolve = done (ack), throw = retry or poison (see {@link isRetryableError}). */
export type MessageHandler = (msg: BusMessage) => Promise<void>;

/** Codes that will fail the same way however often the message is retried. */
const NON_RETRYABLE = new Set<Code>([
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unimplemented,
  Code.DataLoss,
  Code.Unauthenticated,
]);

/**
 * Whether a handler failure is worth a redelivery. Unknown errors are retried (bounded by
 * maxDeliver); an AutodidactError with a "this input is wrong" code is not.
 */
export function isRetryableError(err: unknown): boolean {
  return !(err instanceof AutodidactError && NON_RETRYABLE.has(err.code));
}

/**
 * How a handled message is acknowledged. `confirmed` waits for the server to confirm the ack
 * (a request/reply per message) and suits handlers whose effect must be known acknowledged
 * before moving on; `fast` sends a plain ack (no round trip): a lost ack only means a
 * redelivery, which is fine for handlers that are idempotent (by sample id, msgId, KV create).
 */
export type AckMode = "confirmed" | "fast";

/** Options of {@link consume}. */
export interface ConsumeOptions {
  /** Maximum messages handled at once by this process (default 1). Pulls only when below it. */
  maxInFlight?: number;
  /**
   * Pull again only once at most this many messages are in flight (default: half of
   * maxInFlight), then for all free slots, so a busy consumer refills in large batches instead
   * of one pull request per finished message. Clamped to 0..maxInFlight-1.
   */
  refillBelow?: number;
  /** Ack confirmation, see {@link AckMode} (default "confirmed": the conservative choice). */
  ackMode?: AckMode;
  /** Lifetime of one pull request in ms (default 5 s, minimum 1 s). */
  pullExpiresMs?: number;
  /** Redelivery delay after a retryable failure (default: 500 ms doubling, capped at 30 s). */
  retryDelayMs?: (deliveryCount: number) => number;
  /** Overrides {@link isRetryableError}. */
  isRetryable?: (err: unknown) => boolean;
  /** Send in-progress acks while a handler runs longer than half the AckWait (default true). */
  autoWorking?: boolean;
  /** Record terminated messages on `poison.<stream>` (default true). */
  recordPoison?: boolean;
  logger?: Logger;
}

/** Counters of a running consumer, for tests, metrics and status pages. */
export interface ConsumerStats {
  acked: number;
  retried: number;
  poisoned: number;
  inFlight: number;
}

/** A running consume loop. */
export interface ConsumerHandle {
  readonly spec: ConsumerSpec;
  readonly stats: Readonly<ConsumerStats>;
  /**
   * Changes how many messages this process handles at once (e.g. a worker that holds messages
   * until related ones arrive widens its window instead of stalling). Takes effect at the next pull;
   * the server's max ack pending still caps what is delivered.
   */
  setMaxInFlight(n: number): void;
  /**
   * True while nothing is pulled because the handlers in flight are above the refill threshold: a
   * handler that holds its message until others arrive can tell it is starving itself.
   */
  readonly waitingForCapacity: boolean;
  /** Stops pulling and waits for in-flight handlers to finish (and ack). */
  stop(): Promise<void>;
}

/** What is recorded on `poison.<stream>` about a terminated message. */
export interface PoisonRecord {
  stream: string;
  durable: string;
  subject: string;
  seq: number;
  msgId: string | null;
  deliveryCount: number;
  code: string;
  reason: string;
  /** The payload, base64, truncated to 64 KiB. */
  dataBase64: string;
  dataBytes: number;
  time: string;
}

/** Compares a server version string (`2.10.4`, `2.11.0-beta`) with a minimum. */
export function serverAtLeast(version: string | undefined, min: [number, number, number]): boolean {
  if (version === undefined) return false;
  const parts = version.split(/[.-]/).slice(0, 3).map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < 3; i++) {
    const v = parts[i] ?? 0;
    const m = min[i] ?? 0;
    if (Number.isNaN(v)) return false;
    if (v !== m) return v > m;
  }
  return true;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `handler` for every message of a durable pull consumer, at most `maxInFlight` at a time.
 * Each message is handled inside a CONSUMER span whose parent is the publisher's context; it is
 * acked only after the handler resolved, nak'ed with a delay on a retryable error, and terminated
 * (after being recorded on `poison.<stream>`) when it is malformed or out of deliveries, so no
 * message is redelivered forever. Survives server restarts and leader changes: failed pulls are
 * retried with bounded backoff. The parts (pull loop, in-progress acks, fast acks, poison
 * recording, the handling of one message) live in consume-parts.ts.
 */
export async function consume(
  bus: Bus,
  spec: ConsumerSpec,
  handler: MessageHandler,
  options: ConsumeOptions = {},
): Promise<ConsumerHandle> {
  const ackMode: AckMode = options.ackMode ?? "confirmed";
  if (ackMode !== "confirmed" && ackMode !== "fast") {
    throw new AutodidactError(`ackMode must be "confirmed" or "fast", got ${String(ackMode)}`, Code.InvalidArgument);
  }
  const info = await ensureConsumer(bus, spec);
  const maxDeliver = info.config.max_deliver ?? spec.maxDeliver ?? 5;
  const ackWaitMs = Math.max(100, Math.round((info.config.ack_wait ?? nanos(30_000)) / 1_000_000));
  const expires = Math.max(1_000, options.pullExpiresMs ?? 5_000);
  const retryDelay = options.retryDelayMs ?? ((n: number) => Math.min(30_000, 500 * 2 ** Math.max(0, n - 1)));
  const retryable = options.isRetryable ?? isRetryableError;
  const autoWorking = options.autoWorking ?? true;
  const recordPoison = options.recordPoison ?? true;
  const log = (options.logger ?? createLogger("bus.consumer")).child({ stream: spec.stream, durable: spec.durable });

  const stats: ConsumerStats = { acked: 0, retried: 0, poisoned: 0, inFlight: 0 };
  const poison = new PoisonRecorder(bus, spec, stats, log, recordPoison, serverAtLeast(bus.nc.info?.version, [2, 10, 4]));
  const inProgress = autoWorking ? new InProgressAcks(ackWaitMs) : undefined;
  const fastAcks = new FastAcks(stats, log);
  const runner = new MessageRunner(spec, handler, { ackMode, maxDeliver, retryDelay, retryable }, stats, log, fastAcks, poison, inProgress);
  const loop = new PullLoop(bus, spec, runner, stats, log, windowFor(options.maxInFlight ?? 1, options.refillBelow), expires);
  loop.start();

  const unregister = bus.onClose(() => handle.stop());
  const handle: ConsumerHandle = {
    spec,
    stats,
    get waitingForCapacity() {
      return loop.waiting;
    },
    setMaxInFlight(n: number) {
      if (!(Number.isFinite(n) && n >= 1)) throw new AutodidactError(`maxInFlight must be at least 1, got ${n}`, Code.InvalidArgument);
      loop.setWindow(windowFor(n, options.refillBelow));
    },
    async stop() {
      unregister();
      await loop.stop();
      inProgress?.stop();
      fastAcks.flush();
      // Plain acks are only buffered: push them out so a close right after stop() keeps them.
      if (ackMode === "fast" && !bus.nc.isClosed()) {
        await bus.nc.flush().catch((err: unknown) => log.warn("could not flush acks on stop", { error: err }));
      }
    },
  };
  return handle;
}
