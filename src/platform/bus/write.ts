import { JetStreamApiError, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders, nuid, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { jsPipeline, type PipelinedAck } from "./pipeline.js";
import { attemptTimeoutMs, backoffMs, isAmbiguousWriteError, isTransientBusError, mayRetry, withBusRetry, type RetryBudget } from "./retry.js";

// One JetStream write (a stream publish, a KV put / create / compare-and-set) that survives a
// leader election without being stored twice or reported wrongly.
//
// * Every attempt of a write carries the same `Nats-Msg-Id`, so the stream stores a retried copy once.
// * A conditional write ("store only if the subject's last sequence is E") carries the id
//   `<subject>@<E>`, the same for every writer expecting E, plus a header with a writer id of its own.
//   The stream's de-duplication, applied in log order on every replica, then lets exactly one write
//   per (subject, E) through, even where a clustered stream checks E only before proposing (nats-server
//   before 2.9.21 let two concurrent compare-and-sets with the same E both land, nats-io/nats-server#4320).
//   A writer acknowledged as a duplicate reads the stored copy: its own writer id means its earlier
//   attempt landed (success), another's means another writer won (a conflict).
// * A conditional write retried after an attempt whose reply was lost may be refused as a conflict
//   because that attempt did land: the stream is then asked whether the id was stored ({@link landedAck}).

/** Header naming the writer of a conditional write (see the comment above). */
export const WRITER_HEADER = "Autodidact-Writer";

/** A conditional write lost to another writer expecting the same last sequence. */
export class WriteConflictError extends Error {
  constructor(
    readonly subject: string,
    readonly storedSeq: number,
  ) {
    super(`another write to ${subject} with the same expected last sequence was stored first (at ${storedSeq})`);
    this.name = "WriteConflictError";
  }
}

/**
 * JetStream's "wrong last sequence" (10071) and its unknown-subject variant (10164), or a
 * {@link WriteConflictError}: a lost compare-and-set.
 */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof WriteConflictError || (err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164));
}

/** "Wrong last msg id" (10070): what the landed-probe gets when its id was not stored. */
const WRONG_LAST_MSG_ID = 10070;

/** A fresh id for a write that has none of its own. */
export const newMsgId = (): string => nuid.next();

/**
 * The headers of a write to `subject` expecting its last sequence to be `expect` (0: the subject
 * has no message): the id every writer with that expectation shares, and this writer's own id.
 */
export function conditionalHeaders(subject: string, expect: number, h: MsgHdrs = natsHeaders()): { headers: MsgHdrs; writerId: string } {
  const writerId = nuid.next();
  h.set("Nats-Msg-Id", `${subject}@${expect}`);
  h.set("Nats-Expected-Last-Subject-Sequence", String(expect));
  h.set(WRITER_HEADER, writerId);
  return { headers: h, writerId };
}

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
  /** Set for a conditional write made with {@link conditionalHeaders}: its writer id. */
  readonly writerId?: string;
  /** Called before each retry (spans and logs). */
  readonly onRetry?: (attempt: number, err: unknown) => void;
}

/** JetStream managers by request timeout, per connection (attempts escalate through a few fixed values). */
const managers = new WeakMap<NatsConnection, Map<number, Promise<JetStreamManager>>>();

/** A JetStream manager whose requests time out after `timeoutMs` (no API check, so no request to make one). */
export function managerWithTimeout(nc: NatsConnection, timeoutMs: number): Promise<JetStreamManager> {
  let byTimeout = managers.get(nc);
  if (byTimeout === undefined) {
    byTimeout = new Map();
    managers.set(nc, byTimeout);
  }
  let m = byTimeout.get(timeoutMs);
  if (m === undefined) {
    m = jetstreamManager(nc, { timeout: timeoutMs, checkAPI: false });
    byTimeout.set(timeoutMs, m);
  }
  return m;
}

/** Whether the message stored at `ack.seq` is this writer's copy (its writer header). */
async function storedByUs(nc: NatsConnection, ack: PipelinedAck, writerId: string, budget: RetryBudget): Promise<boolean> {
  const sm = await withBusRetry(budget, async (_n, timeoutMs) => (await managerWithTimeout(nc, timeoutMs)).streams.getMessage(ack.stream, { seq: ack.seq }));
  return sm !== null && sm.header.get(WRITER_HEADER) === writerId;
}

/**
 * Sends a JetStream publish (`headers` must hold its `Nats-Msg-Id` when `idempotent`) until the
 * stream acknowledges it, through leader elections and reconnects, within the budget. A
 * conditional write (`writerId` set) resolves a duplicate acknowledgement, or a conflict after an
 * attempt whose reply was lost, by reading whose copy the stream holds.
 */
export async function writeOnce(nc: NatsConnection, subject: string, data: Uint8Array, headers: MsgHdrs, options: WriteOnceOptions): Promise<PipelinedAck> {
  const { budget, writerId } = options;
  const settle = async (ack: PipelinedAck): Promise<PipelinedAck> => {
    if (!ack.duplicate || writerId === undefined) return ack;
    if (await storedByUs(nc, ack, writerId, budget)) return ack;
    throw new WriteConflictError(subject, ack.seq);
  };
  let ambiguous = false;
  for (let n = 1; ; n++) {
    let ack: PipelinedAck;
    try {
      ack = await jsPipeline(nc).publish(subject, data, headers, attemptTimeoutMs(n, budget));
    } catch (err) {
      if (ambiguous && isWrongLastSequence(err) && options.idempotent) {
        const msgId = headers.get("Nats-Msg-Id");
        const landed = msgId === "" ? undefined : await landedAck(nc, subject, msgId, budget);
        if (landed === undefined) throw err;
        return settle(landed);
      }
      // A newer server refuses an id whose first copy is still being proposed: once stored, it acks the duplicate.
      const inFlight = options.idempotent && err instanceof JetStreamApiError && /duplicate/i.test(err.message) && Date.now() < budget.deadline;
      const retry = inFlight || (mayRetry(err, budget) && (options.idempotent || !isAmbiguousWriteError(err)));
      if (!retry) throw err;
      if (isAmbiguousWriteError(err)) ambiguous = true;
      options.onRetry?.(n, err);
      await new Promise((r) => setTimeout(r, backoffMs(n)));
      continue;
    }
    return settle(ack);
  }
}

/**
 * The acknowledgement of the message with `msgId` stored on `subject`'s stream inside its duplicate
 * window (its sequence, `duplicate: true`), or undefined when none was. Asks with a publish the
 * stream can only answer from its de-duplication table: the same id, and an expected last msg id
 * that never matches, so a stored id is acknowledged as a duplicate (with its sequence) and an
 * unknown one is refused (10070, "wrong last msg id") without storing anything. Transient failures
 * are retried.
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
