// The RUNS stream: every run's events on `runs.<id>.events`, published with message id `<id>:<seq>`
// (a re-publish after a crash is dropped inside the duplicate window; watchers skip a sequence number
// they have seen, so a later one is harmless too), replayed and followed by WatchRun.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import type { Bus } from "../../src/platform/bus/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import { RunEventSchema, type RunEvent } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";

/** Tells a watch whether the run is over once every event up to `lastSeq` was delivered. */
export type RunOver = (lastSeq: bigint) => Promise<boolean>;

/** Publishes and follows run events. */
export class RunEventLog {
  readonly #bus: Bus;
  readonly #logger: Logger;

  constructor(bus: Bus, logger: Logger) {
    this.#bus = bus;
    this.#logger = logger;
  }

  /** Publishes events in order, each with its message id; throws when one cannot be published. */
  async publish(events: readonly RunEvent[]): Promise<void> {
    for (const e of events) {
      await this.#bus.publish(Subjects.runEvents(e.runId), toBinary(RunEventSchema, e), { msgId: `${e.runId}:${e.seq}` });
    }
  }

  /**
   * The events of a run from sequence `fromSeq` (0 = the first), then live ones, each sequence once,
   * until `over` says the run ended (checked after each event and every `pollMs`) or `signal` aborts.
   */
  async *watch(runId: string, fromSeq: bigint, over: RunOver, signal: AbortSignal, pollMs = 1_000): AsyncIterable<RunEvent> {
    // One subject as a string: a single filter_subject, which servers before 2.10 understand.
    const consumer = await this.#bus.js.consumers.get(Streams.Runs, { filter_subjects: Subjects.runEvents(runId), deliver_policy: DeliverPolicy.All });
    const messages: ConsumerMessages = await consumer.consume();
    let last = fromSeq > 0n ? fromSeq - 1n : 0n;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      void messages.close().catch(() => undefined);
    };
    const check = async (): Promise<void> => {
      try {
        if (await over(last)) close();
      } catch (err) {
        this.#logger.debug("run watch check failed", { runId, error: String(err) });
      }
    };
    signal.addEventListener("abort", close, { once: true });
    const timer = setInterval(() => void check(), pollMs);
    try {
      await check();
      for await (const m of messages) {
        let event: RunEvent;
        try {
          event = fromBinary(RunEventSchema, m.data);
        } catch {
          continue;
        }
        if (event.seq <= last) continue;
        last = event.seq;
        yield event;
        await check();
      }
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", close);
      close();
    }
  }
}
