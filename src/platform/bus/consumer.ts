import { context as otelContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos, type MsgHdrs } from "@nats-io/transport-node";
import { AutodidactError, Code, codeName } from "../errors/index.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import type { Bus } from "./connection.js";
import { busInstruments } from "./metrics.js";
import { BUS_TRACER_NAME, MessagingAttributes, permissionDeniedError } from "./publish.js";
import { PoisonSubjects } from "./topology.js";
import { extractTraceContext } from "./trace-headers.js";

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
const decoder = new TextDecoder("utf-8", { fatal: true });

function toBusMessage(stream: string, m: JsMsg): BusMessage {
  const headers = m.headers;
  const msgId = headers?.has("Nats-Msg-Id") ? headers.get("Nats-Msg-Id") : undefined;
  return {
    stream,
    subject: m.subject,
    data: m.data,
    headers,
    msgId: msgId === "" ? undefined : msgId,
    seq: m.seq,
    deliveryCount: m.info.deliveryCount,
    working: () => m.working(),
    json<T>(): T {
      try {
        return JSON.parse(decoder.decode(m.data)) as T;
      } catch (err) {
        throw new AutodidactError(`message ${stream}#${m.seq} on ${m.subject} is not valid UTF-8 JSON`, Code.InvalidArgument, {
          cause: err,
        });
      }
    },
  };
}

/**
 * Runs `handler` for every message of a durable pull consumer, at most `maxInFlight` at a time.
 * Each message is handled inside a CONSUMER span whose parent is the publisher's context; it is
 * acked only after the handler resolved, nak'ed with a delay on a retryable error, and terminated
 * (after being recorded on `poison.<stream>`) when it is malformed or out of deliveries, so no
 * message is redelivered forever. Survives server restarts: failed pulls are retried with backoff.
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
  let maxInFlight = 1;
  let refillBelow = 0;
  /** Sets the in-flight cap and the refill threshold that follows from it. */
  const applyMaxInFlight = (n: number): void => {
    maxInFlight = Math.max(1, Math.floor(n));
    refillBelow = Math.min(maxInFlight - 1, Math.max(0, Math.floor(options.refillBelow ?? maxInFlight - Math.min(32, Math.ceil(maxInFlight / 2)))));
  };
  applyMaxInFlight(options.maxInFlight ?? 1);
  const expires = Math.max(1_000, options.pullExpiresMs ?? 5_000);
  const retryDelay = options.retryDelayMs ?? ((n: number) => Math.min(30_000, 500 * 2 ** Math.max(0, n - 1)));
  const retryable = options.isRetryable ?? isRetryableError;
  const autoWorking = options.autoWorking ?? true;
  const recordPoison = options.recordPoison ?? true;
  const log = (options.logger ?? createLogger("bus.consumer")).child({ stream: spec.stream, durable: spec.durable });

  const termTakesReason = serverAtLeast(bus.nc.info?.version, [2, 10, 4]);
  const stats: ConsumerStats = { acked: 0, retried: 0, poisoned: 0, inFlight: 0 };
  const inFlight = new Set<Promise<void>>();
  let capacityWaiter: (() => void) | undefined;
  let stopped = false;
  let current: ConsumerMessages | undefined;

  const poison = async (m: JsMsg, err: unknown, why: string): Promise<void> => {
    const e = AutodidactError.from(err);
    const record: PoisonRecord = {
      stream: spec.stream,
      durable: spec.durable,
      subject: m.subject,
      seq: m.seq,
      msgId: m.headers?.has("Nats-Msg-Id") ? m.headers.get("Nats-Msg-Id") : null,
      deliveryCount: m.info.deliveryCount,
      code: codeName(e.code),
      reason: `${why}: ${e.rawMessage}`,
      dataBase64: Buffer.from(m.data.subarray(0, 65_536)).toString("base64"),
      dataBytes: m.data.byteLength,
      time: new Date().toISOString(),
    };
    log.error("terminating poison message", { subject: m.subject, seq: m.seq, msg_id: record.msgId, reason: record.reason });
    if (recordPoison) {
      await bus.publish(PoisonSubjects.of(spec.stream), new TextEncoder().encode(JSON.stringify(record)), {
        msgId: `${spec.stream}:${spec.durable}:${m.seq}`,
        retryForMs: 5_000,
      });
    }
    // "+TERM <reason>" is only understood from nats-server 2.10.4; older servers ignore the whole
    // ack and would redeliver the poison message after AckWait.
    if (termTakesReason) m.term(record.reason.slice(0, 200));
    else m.term();
    stats.poisoned += 1;
  };

  // In-progress acks for handlers running longer than half the AckWait: one ticker for all
  // messages in flight (not a timer per message), each told at most every half AckWait.
  const working = new Map<JsMsg, number>();
  const halfAckWait = Math.max(50, ackWaitMs / 2);
  const ticker = autoWorking
    ? setInterval(() => {
        const now = performance.now();
        for (const [m, since] of working) {
          if (now - since < halfAckWait) continue;
          working.set(m, now);
          try {
            m.working();
          } catch {
            // Disconnected: the message may be redelivered, which handlers tolerate.
          }
        }
      }, Math.max(25, ackWaitMs / 8))
    : undefined;
  ticker?.unref();

  // Fast acks of one event-loop turn go out together (one socket write instead of one each).
  let acks: JsMsg[] = [];
  const flushAcks = (): void => {
    const batch = acks;
    acks = [];
    for (const m of batch) {
      try {
        m.ack();
        stats.acked += 1;
      } catch (err) {
        log.warn("ack not sent; message may be redelivered", { seq: m.seq, error: err });
      }
    }
  };
  const ackSoon = (m: JsMsg): void => {
    if (acks.push(m) === 1) setImmediate(flushAcks);
  };

  const handle = async (m: JsMsg): Promise<void> => {
    const parent = extractTraceContext(m.headers, otelContext.active());
    const span = trace.getTracer(BUS_TRACER_NAME).startSpan(
      `process ${m.subject}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [MessagingAttributes.system]: "nats",
          [MessagingAttributes.destination]: m.subject,
          [MessagingAttributes.operationType]: "process",
          [MessagingAttributes.operationName]: "process",
          [MessagingAttributes.consumerGroup]: spec.durable,
          [MessagingAttributes.bodySize]: m.data.byteLength,
          [MessagingAttributes.deliveryCount]: m.info.deliveryCount,
          [MessagingAttributes.streamSeq]: m.seq,
        },
      },
      parent,
    );
    const msg = toBusMessage(spec.stream, m);
    if (msg.msgId !== undefined) span.setAttribute(MessagingAttributes.messageId, msg.msgId);
    const started = performance.now();
    let outcome = "ack";
    if (autoWorking) working.set(m, started);
    try {
      await otelContext.with(trace.setSpan(parent, span), () => handler(msg));
      working.delete(m);
      try {
        if (ackMode === "fast") ackSoon(m);
        else {
          await m.ackAck();
          stats.acked += 1;
        }
      } catch (err) {
        // The work is done but the ack was lost (e.g. server restarting): it will be redelivered,
        // which handlers tolerate because every message carries an idempotency key.
        outcome = "ack_unconfirmed";
        log.warn("ack not confirmed; message may be redelivered", { seq: m.seq, error: err });
      }
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (err) {
      working.delete(m);
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      const canRetry = retryable(err);
      const exhausted = m.info.deliveryCount >= maxDeliver;
      try {
        if (canRetry && !exhausted) {
          const delay = Math.max(0, Math.round(retryDelay(m.info.deliveryCount)));
          log.warn("handler failed; will retry", { seq: m.seq, delivery: m.info.deliveryCount, delay_ms: delay, error: err });
          m.nak(delay);
          outcome = "nak";
          stats.retried += 1;
          span.setAttribute("messaging.nats.outcome", "nak");
        } else {
          span.setAttribute("messaging.nats.outcome", "term");
          outcome = "term";
          await poison(m, err, canRetry ? `gave up after ${m.info.deliveryCount} deliveries` : "non-retryable error");
        }
      } catch (settleErr) {
        log.error("could not settle failed message; it will be redelivered after AckWait", { seq: m.seq, error: settleErr });
      }
    } finally {
      span.end();
      const attrs = { stream: spec.stream, durable: spec.durable, outcome };
      const inst = busInstruments();
      inst.consumed.add(1, attrs);
      inst.handlerSeconds.record((performance.now() - started) / 1000, attrs);
    }
  };

  const dispatch = (m: JsMsg): void => {
    stats.inFlight += 1;
    const p = handle(m)
      .catch((err: unknown) => log.error("unexpected failure in consumer", { error: err }))
      .finally(() => {
        stats.inFlight -= 1;
        inFlight.delete(p);
        const w = capacityWaiter;
        capacityWaiter = undefined;
        w?.();
      });
    inFlight.add(p);
  };

  /** True while the loop pulls nothing because too many messages are in flight. */
  let waiting = false;
  const waitForCapacity = async (): Promise<void> => {
    while (!stopped && stats.inFlight > refillBelow) {
      waiting = true;
      await new Promise<void>((r) => {
        capacityWaiter = r;
      });
    }
    waiting = false;
  };

  const loop = (async () => {
    let failures = 0;
    let consumer: Awaited<ReturnType<typeof bus.js.consumers.get>> | undefined;
    while (!stopped) {
      await waitForCapacity();
      if (stopped) break;
      try {
        consumer ??= await bus.js.consumers.get(spec.stream, spec.durable);
        const iter = await consumer.fetch({ max_messages: maxInFlight - stats.inFlight, expires });
        current = iter;
        for await (const m of iter) {
          failures = 0;
          dispatch(m);
        }
        const closedWith = await iter.closed();
        if (closedWith instanceof Error && !stopped) throw closedWith;
      } catch (err) {
        if (stopped || bus.nc.isClosed()) break;
        consumer = undefined;
        failures += 1;
        const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
        if (failures === 1 || failures % 20 === 0) {
          log.warn("pull failed; retrying", { error: err instanceof Error ? err.message : String(err), failures, delay_ms: delay });
        }
        await sleep(delay);
      } finally {
        current = undefined;
      }
    }
  })();

  const unregister = bus.onClose(() => handle_.stop());
  const handle_: ConsumerHandle = {
    spec,
    stats,
    get waitingForCapacity() {
      return waiting;
    },
    setMaxInFlight(n: number) {
      if (!(Number.isFinite(n) && n >= 1)) throw new AutodidactError(`maxInFlight must be at least 1, got ${n}`, Code.InvalidArgument);
      applyMaxInFlight(n);
      // A loop waiting for capacity re-checks against the new threshold.
      const w = capacityWaiter;
      capacityWaiter = undefined;
      w?.();
    },
    async stop() {
      unregister();
      if (!stopped) {
        stopped = true;
        const w = capacityWaiter;
        capacityWaiter = undefined;
        w?.();
        current?.stop();
      }
      await loop;
      await Promise.allSettled([...inFlight]);
      if (ticker !== undefined) clearInterval(ticker);
      flushAcks();
      // Plain acks are only buffered: push them out so a close right after stop() keeps them.
      if (ackMode === "fast" && !bus.nc.isClosed()) {
        await bus.nc.flush().catch((err: unknown) => log.warn("could not flush acks on stop", { error: err }));
      }
    },
  };
  return handle_;
}
