import { JetStreamApiError } from "@nats-io/jetstream";
import { headers as natsHeaders, nuid, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { jsPipeline, type PipelinedAck } from "./pipeline.js";
import { attemptTimeoutMs, backoffMs, isAmbiguousWriteError, isTransientBusError, mayRetry, type RetryBudget } from "./retry.js";

// One JetStream write (a stream publish, a KV put / create / compare-and-set) that survives a
// leader election without being stored twice or reported wrongly: every attempt carries the same
// `Nats-Msg-Id`, so the stream stores a retried copy once; and when a retry of a conditional write
// is refused after an attempt whose reply was lost, the stream is asked whether that attempt landed.

/** JetStream's "wrong last sequence" (10071) and its unknown-subject variant (10164): a lost compare-and-set. */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);
}

/** "Wrong last msg id" (10070): what the landed-probe gets when its id was not stored. */
const WRONG_LAST_MSG_ID = 10070;

/** A fresh id for a write that has none of its own. */
export const newMsgId = (): string => nuid.next();

/** Options of {@link writeOnce}. */
export interface WriteOnceOptions {
  /** Retry bounds (deadline, longest attempt, closed connection). */
  readonly budget: RetryBudget;
  /**
   * Whether a timeout may be retried. True for writes with a `Nats-Msg-Id` (the stream drops a
   * second copy); a write without one is retried only after failures that stored nothing (no
   * responders, a JetStream "unavailable").
   */
  readonly idempotent: boolean;
  /** Called before each retry (spans and logs). */
  readonly onRetry?: (attempt: number, err: unknown) => void;
}

/**
 * Sends a JetStream publish (`headers` must hold its `Nats-Msg-Id` when `idempotent`) until the
 * stream acknowledges it, through leader elections and reconnects, within the budget.
 *
 * A conditional write (`Nats-Expected-Last-Subject-Sequence`) retried after an attempt whose reply
 * was lost may be refused as a conflict because that attempt did land (a clustered stream checks
 * the expected sequence before de-duplicating). The conflict is then resolved by asking the stream
 * about the id ({@link landedAck}): stored means success with the stored sequence, otherwise the
 * conflict stands.
 */
export async function writeOnce(nc: NatsConnection, subject: string, data: Uint8Array, headers: MsgHdrs, options: WriteOnceOptions): Promise<PipelinedAck> {
  const { budget } = options;
  let ambiguous = false;
  for (let n = 1; ; n++) {
    try {
      return await jsPipeline(nc).publish(subject, data, headers, attemptTimeoutMs(n, budget));
    } catch (err) {
      if (ambiguous && isWrongLastSequence(err) && options.idempotent) {
        const msgId = headers.get("Nats-Msg-Id");
        const landed = msgId === "" ? undefined : await landedAck(nc, subject, msgId, budget);
        if (landed !== undefined) return landed;
        throw err;
      }
      const retry = mayRetry(err, budget) && (options.idempotent || !isAmbiguousWriteError(err));
      if (!retry) throw err;
      if (isAmbiguousWriteError(err)) ambiguous = true;
      options.onRetry?.(n, err);
      await new Promise((r) => setTimeout(r, backoffMs(n)));
    }
  }
}

/**
 * The acknowledgement of the message with `msgId` stored on `subject`'s stream inside its duplicate
 * window (its sequence, `duplicate: true`), or undefined when none was. Asks with a publish the stream can only answer
 * from its de-duplication table: the same id, and an expected last msg id that never matches, so
 * a stored id is acknowledged as a duplicate (with its sequence) and an unknown one is refused
 * (10070, "wrong last msg id") without storing anything. Transient failures are retried.
 */
export async function landedAck(nc: NatsConnection, subject: string, msgId: string, budget: RetryBudget): Promise<PipelinedAck | undefined> {
  const h = natsHeaders();
  h.set("Nats-Msg-Id", msgId);
  h.set("Nats-Expected-Last-Msg-Id", `probe-${nuid.next()}`);
  for (let n = 1; ; n++) {
    try {
      const ack = await jsPipeline(nc).publish(subject, new Uint8Array(0), h, attemptTimeoutMs(n, budget));
      if (ack.duplicate) return ack;
      // Cannot happen (the expectation never matches); should it, the probe stored an empty message.
      throw new Error(`landed-probe for ${msgId} on ${subject} was stored at ${ack.seq}`);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === WRONG_LAST_MSG_ID) return undefined;
      // A newer server refuses an id whose first copy is still being proposed: ask again shortly.
      const inFlight = err instanceof JetStreamApiError && /duplicate/i.test(err.message);
      if (!(inFlight || isTransientBusError(err)) || Date.now() >= budget.deadline || budget.closed()) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(n)));
    }
  }
}
