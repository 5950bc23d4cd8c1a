// Reading whole JetStream streams for the end-of-run checks of the chaos run and the fuzz run.
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { Bus } from "../../src/platform/bus/index.js";

/** One stored message of a stream, as the checks need it. */
export interface StoredMessage {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  /** `Nats-Msg-Id` of the publish, when it had one. */
  readonly msgId: string | undefined;
}

/**
 * Every message a stream holds right now, in sequence order, read with an ephemeral consumer that
 * acknowledges nothing (so it disturbs no durable). Exists because the invariants are about what
 * the streams recorded, not about what any one service believes it did.
 */
export async function readStream(bus: Bus, stream: string, filterSubject?: string): Promise<StoredMessage[]> {
  const info = await bus.jsm.streams.info(stream);
  const out: StoredMessage[] = [];
  if (info.state.messages === 0) return out;
  const ci = await bus.jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    inactive_threshold: nanos(60_000),
    ...(filterSubject !== undefined ? { filter_subject: filterSubject } : {}),
  });
  try {
    const consumer = await bus.js.consumers.get(stream, ci.name);
    for (let idle = 0; idle < 3; ) {
      const batch = await consumer.fetch({ max_messages: 2_000, expires: 2_000 });
      let got = 0;
      let done = false;
      for await (const m of batch) {
        got++;
        const id = m.headers?.has("Nats-Msg-Id") ? m.headers.get("Nats-Msg-Id") : undefined;
        out.push({ subject: m.subject, seq: m.seq, data: m.data, msgId: id === "" ? undefined : id });
        if (m.info.pending === 0) done = true;
      }
      if (done) break;
      idle = got === 0 ? idle + 1 : 0;
    }
  } finally {
    await bus.jsm.consumers.delete(stream, ci.name).catch(() => undefined);
  }
  return out;
}
