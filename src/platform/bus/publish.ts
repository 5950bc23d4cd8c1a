import { context as otelContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { JetStreamApiError } from "@nats-io/jetstream";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { AutodidactError, Code } from "../errors/index.js";
import type { Bus } from "./connection.js";
import { busInstruments } from "./metrics.js";
import { isTransientBusError, retryBudget } from "./retry.js";
import { writeOnce } from "./write.js";
import { injectTraceContext } from "./trace-headers.js";
import { permissionDeniedError } from "./permission.js";

export { permissionDeniedError, permissionViolation } from "./permission.js";

/** Instrumentation scope of every bus span. */
export const BUS_TRACER_NAME = "autodidact.bus";

/** Messaging semantic-convention attribute keys (kept local: the incubating entry point moves). */
export const MessagingAttributes = {
  system: "messaging.system",
  destination: "messaging.destination.name",
  messageId: "messaging.message.id",
  operationType: "messaging.operation.type",
  operationName: "messaging.operation.name",
  bodySize: "messaging.message.body.size",
  consumerGroup: "messaging.consumer.group.name",
  deliveryCount: "messaging.nats.delivery_count",
  streamSeq: "messaging.nats.stream_sequence",
} as const;

/** Options of {@link publish}. */
export interface PublishOptions {
  /**
   * De-duplication id (the sample id): a second publish with the same id inside the stream's
   * duplicate window is dropped by the server and acknowledged with `duplicate: true`.
   */
  msgId?: string;
  /** Extra headers; `traceparent` is added to them. */
  headers?: MsgHdrs | Record<string, string>;
  /**
   * Longest wait of one attempt, in ms (default: the bus timeout). The first attempt waits 1 s and
   * each retry twice as long, up to this: an ack normally takes milliseconds, and a publish lost
   * with a dying leader or buffered while the server restarted only delays the retry.
   */
  timeoutMs?: number;
  /**
   * How long to keep retrying a publish that failed transiently (a leader election, a restart), in
   * ms (15 s by default, 0 to fail at once). Failures that stored nothing ("no responders", JetStream
   * unavailable) are always retried; a timeout only when `msgId` is set, because then the server
   * drops the copy if the first attempt was stored.
   */
  retryForMs?: number;
  /** Server-side expectation: the stream's last sequence for this subject (optimistic concurrency). */
  expectLastSubjectSequence?: number;
}

/** What the server acknowledged. */
export interface PublishResult {
  stream: string;
  /** Stream sequence of the stored message (of the original one for a duplicate). */
  seq: number;
  /** True when the server dropped this publish as a duplicate of `msgId`. */
  duplicate: boolean;
}

function toHeaders(h: PublishOptions["headers"]): MsgHdrs {
  if (h === undefined) return natsHeaders();
  if (typeof (h as MsgHdrs).keys === "function" && typeof (h as MsgHdrs).set === "function") return h as MsgHdrs;
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h as Record<string, string>)) out.set(k, v);
  return out;
}

/**
 * True when a publish failure may succeed if tried again (restart, failover, slow server); the
 * rule every bus operation shares ({@link isTransientBusError}).
 */
export function isTransientPublishError(err: unknown): boolean {
  return isTransientBusError(err);
}

/**
 * Publishes `data` to a JetStream subject: sets `Nats-Msg-Id` so a retried or replayed publish
 * is stored once, injects the active trace context into the headers inside a PRODUCER span, and
 * retries transient failures (a restarting server) for a bounded time.
 */
export async function publish(
  bus: Bus,
  subject: string,
  data: Uint8Array,
  options: PublishOptions = {},
): Promise<PublishResult> {
  const tracer = trace.getTracer(BUS_TRACER_NAME);
  const span = tracer.startSpan(`publish ${subject}`, {
    kind: SpanKind.PRODUCER,
    attributes: {
      [MessagingAttributes.system]: "nats",
      [MessagingAttributes.destination]: subject,
      [MessagingAttributes.operationType]: "send",
      [MessagingAttributes.operationName]: "publish",
      [MessagingAttributes.bodySize]: data.byteLength,
      ...(options.msgId !== undefined ? { [MessagingAttributes.messageId]: options.msgId } : {}),
    },
  });
  const ctx = trace.setSpan(otelContext.active(), span);
  const headers = injectTraceContext(toHeaders(options.headers), ctx);
  // The JetStream publish headers js.publish would set (the pipeline sends the message as is).
  if (options.msgId !== undefined) headers.set("Nats-Msg-Id", options.msgId);
  if (options.expectLastSubjectSequence !== undefined) {
    headers.set("Nats-Expected-Last-Subject-Sequence", String(options.expectLastSubjectSequence));
  }
  const budget = retryBudget(options.retryForMs ?? 15_000, options.timeoutMs ?? bus.timeoutMs, () => bus.nc.isClosed());
  try {
    const ack = await writeOnce(bus.nc, subject, data, headers, {
      budget,
      // With a msg id a retried copy is stored once; without one only failures that stored nothing are retried.
      idempotent: options.msgId !== undefined,
      onRetry: (attempt, err) => span.addEvent("retry", { attempt, error: err instanceof Error ? err.message : String(err) }),
    });
    span.setAttribute(MessagingAttributes.streamSeq, ack.seq);
    if (ack.duplicate) span.setAttribute("messaging.nats.duplicate", true);
    span.setStatus({ code: SpanStatusCode.OK });
    busInstruments().published.add(1, { stream: ack.stream, duplicate: ack.duplicate });
    return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
  } catch (err) {
    const wrapped = permissionDeniedError(err, `publish to ${subject}`) ?? wrapPublishError(err, subject);
    span.recordException(wrapped);
    span.setStatus({ code: SpanStatusCode.ERROR, message: wrapped.message });
    throw wrapped;
  } finally {
    span.end();
  }
}

function wrapPublishError(err: unknown, subject: string): AutodidactError {
  if (err instanceof AutodidactError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof JetStreamApiError) {
    const code = err.code === 10071 || err.code === 10164 ? Code.Aborted : err.code === 10054 ? Code.ResourceExhausted : Code.FailedPrecondition;
    return new AutodidactError(`publish to ${subject} rejected by JetStream: ${msg}`, code, {
      cause: err,
      details: { subject, apiCode: err.code },
    });
  }
  if (/no responders/i.test(msg)) {
    return new AutodidactError(
      `publish to ${subject} found no stream (no responders): run ensureTopology or check the subject`,
      Code.Unavailable,
      { cause: err, details: { subject } },
    );
  }
  return new AutodidactError(`publish to ${subject} failed: ${msg}`, Code.Unavailable, { cause: err, details: { subject } });
}
