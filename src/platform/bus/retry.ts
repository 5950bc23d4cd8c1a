import { JetStreamApiError } from "@nats-io/jetstream";
import { ClosedConnectionError, DrainingConnectionError, errors as natsErrors } from "@nats-io/transport-node";
import { AutodidactError, Code } from "../errors/index.js";
import { permissionViolation } from "./permission.js";

// How every bus client operation (KV, object store, publish) rides out a JetStream leader
// election or a server restart: which failures are worth another attempt, how long one attempt
// waits, how long to back off, and when to stop.

/**
 * JetStream API error codes that mean "no leader here right now" or "try again": the metadata or
 * stream group is electing (10008 cluster temporarily unavailable, 10009 not the leader, 10004
 * incomplete results), an asset is offline while its peers restart (10118, 10119), or a peer is
 * being remapped (10075).
 */
const TRANSIENT_API_CODES = new Set([10004, 10008, 10009, 10075, 10118, 10119]);

/**
 * True when a bus request failed in a way another attempt may fix: a timeout (the leader died
 * with the request, or a new one is being elected), no responders (nothing serves the subject for
 * a moment: a stream without a leader), a JetStream "temporarily unavailable" / status 503, or a
 * connection being re-established. False for permission errors and a closed connection.
 */
export function isTransientBusError(err: unknown): boolean {
  if (permissionViolation(err) !== undefined) return false;
  if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) return false;
  if (err instanceof AutodidactError) return err.code === Code.Unavailable || err.code === Code.DeadlineExceeded;
  if (err instanceof JetStreamApiError) return TRANSIENT_API_CODES.has(err.code) || err.status === 503;
  if (err instanceof natsErrors.TimeoutError || err instanceof natsErrors.NoRespondersError) return true;
  if (!(err instanceof Error)) return false;
  if (err.cause !== undefined && err.cause !== err && isTransientBusError(err.cause)) return true;
  const text = `${err.name} ${err.message}`.toLowerCase();
  return /timeout|timed out|no responders|503|disconnect|reconnect|connection (lost|refused|reset)|not enabled|temporarily unavailable|heartbeat/.test(text);
}

/**
 * True when a failed write may nevertheless have been stored: its request timed out or the
 * connection dropped after sending it. A retry of such a write must be idempotent (a `Nats-Msg-Id`
 * the stream de-duplicates) and its outcome decided by asking the server, not by the retry's reply.
 */
export function isAmbiguousWriteError(err: unknown): boolean {
  if (!isTransientBusError(err)) return false;
  if (err instanceof natsErrors.NoRespondersError) return false;
  if (err instanceof JetStreamApiError) return false;
  return true;
}

/** Bounds of one retried operation. */
export interface RetryBudget {
  /** Retry transient failures until this time (epoch ms); the first attempt always runs. */
  readonly deadline: number;
  /** Longest wait of one attempt, in ms (the first waits 1 s, each next one twice as long). */
  readonly maxAttemptMs: number;
  /** True when retrying is pointless (the connection closed for good). */
  readonly closed: () => boolean;
}

/** The budget of an operation that may retry for `retryForMs` from now. */
export function retryBudget(retryForMs: number, maxAttemptMs: number, closed: () => boolean): RetryBudget {
  return { deadline: Date.now() + Math.max(0, retryForMs), maxAttemptMs: Math.max(100, maxAttemptMs), closed };
}

/**
 * Timeout of attempt `n` (1-based): 1 s, 2 s, 4 s… up to `maxAttemptMs`. A request lost in an
 * election is re-sent quickly; a slow but live server still gets its full timeout. (A few fixed
 * values, so clients made per timeout can be cached.)
 */
export function attemptTimeoutMs(n: number, budget: RetryBudget): number {
  return Math.min(budget.maxAttemptMs, 1_000 * 2 ** Math.min(n - 1, 10));
}

/** Pause before attempt `n + 1`: 50 ms doubling, capped at 1 s, with ±20% jitter. */
export function backoffMs(n: number): number {
  return Math.round(Math.min(1_000, 50 * 2 ** Math.min(n, 6)) * (0.8 + Math.random() * 0.4));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether another attempt fits the budget after a failure with `err`. */
export function mayRetry(err: unknown, budget: RetryBudget): boolean {
  return isTransientBusError(err) && Date.now() < budget.deadline && !budget.closed();
}

/**
 * Runs `attempt` until it succeeds, a failure is not transient, or the budget is spent; between
 * attempts it backs off. `attempt` gets its number (1-based) and its timeout.
 */
export async function withBusRetry<T>(budget: RetryBudget, attempt: (n: number, timeoutMs: number) => Promise<T>, onRetry?: (n: number, err: unknown) => void): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n, attemptTimeoutMs(n, budget));
    } catch (err) {
      if (!mayRetry(err, budget)) throw err;
      onRetry?.(n, err);
      await sleep(backoffMs(n));
    }
  }
}
