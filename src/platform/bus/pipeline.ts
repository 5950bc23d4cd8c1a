import { JetStreamApiError } from "@nats-io/jetstream";
import {
  createInbox,
  errors as natsErrors,
  PermissionViolationError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";

/** What the server acknowledged for one JetStream publish. */
export interface PipelinedAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/**
 * JetStream publishes of one connection, pipelined: every publish gets its reply on one wildcard
 * inbox subscription (no per-request subscription entry, promise pair, timer and error object, as
 * `js.publish` makes), and publishes queued in the same event-loop turn go out in one socket
 * write. The ack semantics are the same as `js.publish`: resolved with the server's PubAck,
 * rejected with a JetStreamApiError (e.g. wrong last sequence), NoRespondersError, a
 * PermissionViolationError, or a TimeoutError once `timeoutMs` passed without a reply.
 */
export interface JsPipeline {
  publish(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<PipelinedAck>;
}

interface Pending {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs;
  deadline: number;
  resolve: (ack: PipelinedAck) => void;
  reject: (err: unknown) => void;
}

const pipelines = new WeakMap<NatsConnection, JsPipeline>();
const decoder = new TextDecoder();

/** The pipeline of a connection, created on first use (one per connection). */
export function jsPipeline(nc: NatsConnection): JsPipeline {
  let p = pipelines.get(nc);
  if (p === undefined) {
    p = createJsPipeline(nc);
    pipelines.set(nc, p);
  }
  return p;
}

function createJsPipeline(nc: NatsConnection): JsPipeline {
  const inboxPrefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  const prefix = `${createInbox(inboxPrefix)}.`;
  const pending = new Map<number, Pending>();
  let next = 0;
  let queue: number[] = [];
  let flushScheduled = false;
  let sub: Subscription | undefined;
  let sweeper: ReturnType<typeof setInterval> | undefined;

  const settle = (token: number): Pending | undefined => {
    const p = pending.get(token);
    if (p !== undefined) pending.delete(token);
    if (pending.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
    return p;
  };

  const onReply = (err: Error | null, m: Msg): void => {
    const token = Number(m.subject.slice(prefix.length));
    const p = settle(token);
    if (p === undefined) return; // timed out already
    if (err !== null) return p.reject(err);
    if (m.data.length === 0 && m.headers?.code === 503) return p.reject(new natsErrors.NoRespondersError(p.subject));
    try {
      const v = JSON.parse(decoder.decode(m.data)) as { stream?: string; seq?: number; duplicate?: boolean; error?: ConstructorParameters<typeof JetStreamApiError>[0] };
      if (v.error !== undefined) return p.reject(new JetStreamApiError(v.error));
      if (typeof v.stream !== "string" || v.stream === "") return p.reject(new Error("invalid ack response"));
      p.resolve({ stream: v.stream, seq: v.seq ?? 0, duplicate: v.duplicate === true });
    } catch (e) {
      p.reject(e);
    }
  };

  let watching = false;
  const ensureSubscribed = (): void => {
    if (sub !== undefined && !sub.isClosed()) return;
    sub = nc.subscribe(`${prefix}*`, { callback: onReply });
    if (watching) return;
    watching = true;
    // Permission errors come asynchronously on the status stream: fail the publishes they concern.
    void (async () => {
      for await (const s of nc.status()) {
        const e = (s as { error?: unknown }).error;
        if (!(e instanceof PermissionViolationError)) continue;
        const all = e.operation === "subscription" && e.subject.startsWith(prefix.slice(0, -1));
        for (const [token, p] of [...pending]) if (all || p.subject === e.subject) settle(token)?.reject(e);
      }
    })().catch(() => undefined);
  };

  const sweep = (): void => {
    const now = Date.now();
    for (const [token, p] of pending) if (p.deadline <= now) settle(token)?.reject(new natsErrors.TimeoutError());
  };

  const flush = (): void => {
    flushScheduled = false;
    const tokens = queue;
    queue = [];
    for (const token of tokens) {
      const p = pending.get(token);
      if (p === undefined) continue;
      try {
        nc.publish(p.subject, p.data, { reply: `${prefix}${token}`, headers: p.headers });
      } catch (err) {
        settle(token)?.reject(err);
      }
    }
  };

  return {
    publish(subject, data, headers, timeoutMs) {
      return new Promise<PipelinedAck>((resolve, reject) => {
        try {
          ensureSubscribed();
        } catch (err) {
          reject(err);
          return;
        }
        const token = next++;
        pending.set(token, { subject, data, headers, deadline: Date.now() + timeoutMs, resolve, reject });
        if (sweeper === undefined) {
          sweeper = setInterval(sweep, 50);
          sweeper.unref();
        }
        queue.push(token);
        if (!flushScheduled) {
          flushScheduled = true;
          // After the current turn's I/O callbacks: everything queued meanwhile is one write.
          setImmediate(flush);
        }
      });
    },
  };
}
