import { context as otelContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { AutodidactError, Code, codeName } from "../errors/index.js";
import type { Logger } from "../telemetry/logger.js";
import type { Bus } from "./connection.js";
import type { AckMode, BusMessage, ConsumerSpec, ConsumerStats, MessageHandler, PoisonRecord } from "./consumer.js";
import { busInstruments } from "./metrics.js";
import { BUS_TRACER_NAME, MessagingAttributes } from "./publish.js";
import { PoisonSubjects } from "./topology.js";
import { extractTraceContext } from "./trace-headers.js";

// The parts of a running consume loop (consumer.ts wires them): the pull loop, in-progress acks,
// batched fast acks, poison recording, and the handling of one message. Each holds its own state.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A delivered JetStream message as a handler sees it. */
export function toBusMessage(stream: string, m: JsMsg): BusMessage {
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
 * In-progress acks for handlers running longer than half the AckWait: one ticker for all messages
 * in flight (not a timer per message), each told at most every half AckWait.
 */
export class InProgressAcks {
  /** Messages being handled, with when the server was last told (performance.now()). */
  private readonly since = new Map<JsMsg, number>();
  private readonly halfAckWait: number;
  private readonly ticker: NodeJS.Timeout;

  constructor(ackWaitMs: number) {
    this.halfAckWait = Math.max(50, ackWaitMs / 2);
    this.ticker = setInterval(() => this.tick(), Math.max(25, ackWaitMs / 8));
    this.ticker.unref();
  }

  /** A handler started on `m`. */
  begin(m: JsMsg, now: number): void {
    this.since.set(m, now);
  }

  /** The handler of `m` finished. */
  end(m: JsMsg): void {
    this.since.delete(m);
  }

  stop(): void {
    clearInterval(this.ticker);
  }

  private tick(): void {
    const now = performance.now();
    for (const [m, at] of this.since) {
      if (now - at < this.halfAckWait) continue;
      this.since.set(m, now);
      try {
        m.working();
      } catch {
        // Disconnected: the message may be redelivered, which handlers tolerate.
      }
    }
  }
}

/** Fast (unconfirmed) acks of one event-loop turn, sent together: one socket write instead of one each. */
export class FastAcks {
  private pending: JsMsg[] = [];

  constructor(
    private readonly stats: ConsumerStats,
    private readonly log: Logger,
  ) {}

  ack(m: JsMsg): void {
    if (this.pending.push(m) === 1) setImmediate(() => this.flush());
  }

  /** Sends what is pending now (also on stop). */
  flush(): void {
    const batch = this.pending;
    this.pending = [];
    for (const m of batch) {
      try {
        m.ack();
        this.stats.acked += 1;
      } catch (err) {
        this.log.warn("ack not sent; message may be redelivered", { seq: m.seq, error: err });
      }
    }
  }
}

/** Terminates messages that will never succeed, after recording them on `poison.<stream>`. */
export class PoisonRecorder {
  constructor(
    private readonly bus: Bus,
    private readonly spec: ConsumerSpec,
    private readonly stats: ConsumerStats,
    private readonly log: Logger,
    /** Publish a {@link PoisonRecord} before terminating (the option `recordPoison`). */
    private readonly record: boolean,
    /** The server understands "+TERM <reason>" (nats-server 2.10.4 and later). */
    private readonly termTakesReason: boolean,
  ) {}

  async poison(m: JsMsg, err: unknown, why: string): Promise<void> {
    const e = AutodidactError.from(err);
    const record: PoisonRecord = {
      stream: this.spec.stream,
      durable: this.spec.durable,
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
    this.log.error("terminating poison message", { subject: m.subject, seq: m.seq, msg_id: record.msgId, reason: record.reason });
    if (this.record) {
      await this.bus.publish(PoisonSubjects.of(this.spec.stream), new TextEncoder().encode(JSON.stringify(record)), {
        msgId: `${this.spec.stream}:${this.spec.durable}:${m.seq}`,
        retryForMs: 5_000,
      });
    }
    // "+TERM <reason>" is only understood from nats-server 2.10.4; older servers ignore the whole
    // ack and would redeliver the poison message after AckWait.
    if (this.termTakesReason) m.term(record.reason.slice(0, 200));
    else m.term();
    this.stats.poisoned += 1;
  }
}

/** How a {@link MessageRunner} settles a handled message. */
export interface SettlePolicy {
  readonly ackMode: AckMode;
  /** Deliveries before a failing message counts as poison. */
  readonly maxDeliver: number;
  readonly retryDelay: (deliveryCount: number) => number;
  readonly retryable: (err: unknown) => boolean;
}

/**
 * Handles one message: runs the handler inside a CONSUMER span whose parent is the publisher's
 * context, then acks it, naks it with a delay (retryable failure), or terminates it as poison.
 */
export class MessageRunner {
  constructor(
    private readonly spec: ConsumerSpec,
    private readonly handler: MessageHandler,
    private readonly policy: SettlePolicy,
    private readonly stats: ConsumerStats,
    private readonly log: Logger,
    private readonly fastAcks: FastAcks,
    private readonly poison: PoisonRecorder,
    /** Undefined when in-progress acks are off (`autoWorking: false`). */
    private readonly inProgress: InProgressAcks | undefined,
  ) {}

  async run(m: JsMsg): Promise<void> {
    const { spec } = this;
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
    this.inProgress?.begin(m, started);
    try {
      await otelContext.with(trace.setSpan(parent, span), () => this.handler(msg));
      this.inProgress?.end(m);
      outcome = await this.ack(m);
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (err) {
      this.inProgress?.end(m);
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      outcome = await this.settleFailure(m, err);
      span.setAttribute("messaging.nats.outcome", outcome);
    } finally {
      span.end();
      const attrs = { stream: spec.stream, durable: spec.durable, outcome };
      const inst = busInstruments();
      inst.consumed.add(1, attrs);
      inst.handlerSeconds.record((performance.now() - started) / 1000, attrs);
    }
  }

  /** Acks a handled message; returns the outcome recorded in metrics. */
  private async ack(m: JsMsg): Promise<string> {
    try {
      if (this.policy.ackMode === "fast") this.fastAcks.ack(m);
      else {
        await m.ackAck();
        this.stats.acked += 1;
      }
      return "ack";
    } catch (err) {
      // The work is done but the ack was lost (e.g. server restarting or a leader change): it will
      // be redelivered, which handlers tolerate because every message carries an idempotency key.
      this.log.warn("ack not confirmed; message may be redelivered", { seq: m.seq, error: err });
      return "ack_unconfirmed";
    }
  }

  /** Naks a retryable failure with a delay, or terminates the message as poison; returns the outcome. */
  private async settleFailure(m: JsMsg, err: unknown): Promise<string> {
    const { policy } = this;
    const canRetry = policy.retryable(err);
    const exhausted = m.info.deliveryCount >= policy.maxDeliver;
    const outcome = canRetry && !exhausted ? "nak" : "term";
    try {
      if (outcome === "nak") {
        const delay = Math.max(0, Math.round(policy.retryDelay(m.info.deliveryCount)));
        this.log.warn("handler failed; will retry", { seq: m.seq, delivery: m.info.deliveryCount, delay_ms: delay, error: err });
        m.nak(delay);
        this.stats.retried += 1;
      } else {
        await this.poison.poison(m, err, canRetry ? `gave up after ${m.info.deliveryCount} deliveries` : "non-retryable error");
      }
    } catch (settleErr) {
      this.log.error("could not settle failed message; it will be redelivered after AckWait", { seq: m.seq, error: settleErr });
    }
    return outcome;
  }
}

/** The in-flight window of a {@link PullLoop}: how many messages at once, and when to pull again. */
export interface Window {
  maxInFlight: number;
  /** Pull again only once at most this many are in flight. */
  refillBelow: number;
}

/** The window for an in-flight cap `n` and an optional fixed refill threshold. */
export function windowFor(n: number, refillBelow: number | undefined): Window {
  const maxInFlight = Math.max(1, Math.floor(n));
  return {
    maxInFlight,
    refillBelow: Math.min(maxInFlight - 1, Math.max(0, Math.floor(refillBelow ?? maxInFlight - Math.min(32, Math.ceil(maxInFlight / 2))))),
  };
}

/** Ceiling of the pause after a failed pull (a leader election of the consumer usually ends within it). */
const MAX_PULL_BACKOFF_MS = 2_000;

/**
 * The pull loop of one durable: fetches as many messages as the window has room for, dispatches
 * each to the runner, and waits for capacity when the window is full. A failed pull (a restart,
 * the consumer's leader moving to another node) is retried with backoff capped at 2 s.
 */
export class PullLoop {
  /** Messages being handled. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Resolves a loop waiting for capacity. */
  private capacityWaiter: (() => void) | undefined;
  private stopped = false;
  /** The fetch in progress (stopped on stop()). */
  private current: ConsumerMessages | undefined;
  /** True while nothing is pulled because too many messages are in flight. */
  waiting = false;
  private done: Promise<void> | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly spec: ConsumerSpec,
    private readonly runner: MessageRunner,
    private readonly stats: ConsumerStats,
    private readonly log: Logger,
    private window: Window,
    /** Lifetime of one pull request, ms. */
    private readonly expiresMs: number,
  ) {}

  start(): void {
    this.done ??= this.run();
  }

  /** Changes the window; a loop waiting for capacity re-checks against it. */
  setWindow(window: Window): void {
    this.window = window;
    this.wake();
  }

  /** Stops pulling (ends the fetch in progress) and waits for the loop and every in-flight handler. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.wake();
      this.current?.stop();
    }
    await this.done;
    await Promise.allSettled([...this.inFlight]);
  }

  private wake(): void {
    const w = this.capacityWaiter;
    this.capacityWaiter = undefined;
    w?.();
  }

  private dispatch(m: JsMsg): void {
    this.stats.inFlight += 1;
    const p = this.runner
      .run(m)
      .catch((err: unknown) => this.log.error("unexpected failure in consumer", { error: err }))
      .finally(() => {
        this.stats.inFlight -= 1;
        this.inFlight.delete(p);
        this.wake();
      });
    this.inFlight.add(p);
  }

  private async waitForCapacity(): Promise<void> {
    while (!this.stopped && this.stats.inFlight > this.window.refillBelow) {
      this.waiting = true;
      await new Promise<void>((r) => {
        this.capacityWaiter = r;
      });
    }
    this.waiting = false;
  }

  private async run(): Promise<void> {
    const { bus, spec } = this;
    let failures = 0;
    let consumer: Awaited<ReturnType<typeof bus.js.consumers.get>> | undefined;
    while (!this.stopped) {
      await this.waitForCapacity();
      if (this.stopped) break;
      try {
        consumer ??= await bus.js.consumers.get(spec.stream, spec.durable);
        const iter = await consumer.fetch({ max_messages: this.window.maxInFlight - this.stats.inFlight, expires: this.expiresMs });
        this.current = iter;
        for await (const m of iter) {
          failures = 0;
          this.dispatch(m);
        }
        const closedWith = await iter.closed();
        if (closedWith instanceof Error && !this.stopped) throw closedWith;
      } catch (err) {
        if (this.stopped || bus.nc.isClosed()) break;
        consumer = undefined;
        failures += 1;
        const delay = Math.min(MAX_PULL_BACKOFF_MS, 100 * 2 ** Math.min(failures, 6));
        if (failures === 1 || failures % 20 === 0) {
          this.log.warn("pull failed; retrying", { error: err instanceof Error ? err.message : String(err), failures, delay_ms: delay });
        }
        await sleep(delay);
      } finally {
        this.current = undefined;
      }
    }
  }
}
