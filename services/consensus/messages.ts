// Decoding what the worker consumes: verdicts and proposed samples, checked before they touch a
// record; and the in-place retry of a step while NATS is briefly away.
import { fromBinary } from "@bufbuild/protobuf";
import { isRetryableError, type BusMessage } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { SampleSchema, VerdictSchema, type Sample, type Verdict } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { ConsensusEvent } from "./record.js";

/** What a message is: a critic's vote or the proposed sample. */
export type MessageKind = "vote" | "sample";

/** A sample id is a KV key and part of a message id: letters, digits, `_` and `-`. */
const KEY = /^[A-Za-z0-9_-]{1,200}$/;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The last token of `verdicts.<task>` / `samples.proposed.<task>`. */
const taskOfSubject = (subject: string): string => subject.slice(subject.lastIndexOf(".") + 1);

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
 * Decodes and validates a message into the event it carries; InvalidArgument (the consumer sends
 * it to poison) when malformed.
 */
export function parseMessage(msg: BusMessage, kind: MessageKind): { sampleId: string; task: string; event: ConsensusEvent } {
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
    if (err instanceof AutodidactError) throw err;
    throw new AutodidactError(`malformed ${kind === "vote" ? "verdict" : "sample"} on ${msg.subject}: ${String(err)}`, Code.InvalidArgument, {
      cause: err,
    });
  }
}

/** When {@link withRetry} gives up. */
export interface RetryBounds {
  /** How long one step is retried, in ms. */
  retryForMs: number;
  /** True once the worker stops (or its connection closed): no more retries. */
  giveUp(): boolean;
  log: Logger;
}

/**
 * Retries a step that failed transiently (NATS restarting, request timeouts) in place for up to
 * `retryForMs`, telling the server we are still working, so an outage shorter than that does not
 * push the message out to a redelivery (and its sample past its timeout).
 */
export async function withRetry<T>(msg: BusMessage, step: () => Promise<T>, bounds: RetryBounds): Promise<T> {
  const deadline = Date.now() + bounds.retryForMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      // A decision stored but not published is not retried here: the redelivery publishes it.
      const redeliver = err instanceof AutodidactError && err.details["redeliver"] === true;
      if (redeliver || !isRetryableError(err) || bounds.giveUp() || Date.now() >= deadline) throw err;
      bounds.log.debug("consensus step failed; retrying", { subject: msg.subject, attempt, error: String(err) });
      try {
        msg.working();
      } catch {
        // Disconnected: the next attempt will tell.
      }
      await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
    }
  }
}
