// The intake's consumer windows: how many messages of each kind the worker takes at once, how
// many it holds, and what it does when held messages fill a window (widen it, then flush).
import type { ConsumerHandle } from "../../src/platform/bus/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { Held } from "./holds.js";
import type { MessageKind } from "./messages.js";
import type { WorkerCounters } from "./worker-options.js";

/** How long a full consumer may go without a settled message before it counts as stalled, in ms. */
const STALL_MS = 100;

/**
 * The windows of one worker's consumers. The sample window is a quarter of the verdict window;
 * both double together (up to `maxConcurrency` verdicts) when a full consumer stalls on samples
 * that cannot be decided yet; at the widest, `relieve(kind)` is asked to flush held samples.
 */
export class ConsumerWindows {
  /** Messages of each kind this worker takes at once: its consumers' in-flight caps. */
  readonly size: Record<MessageKind, number>;
  /** The consumers of each kind, whose caps follow {@link size}. */
  readonly handles: Record<MessageKind, ConsumerHandle[]> = { vote: [], sample: [] };
  /** Messages of each kind waiting in this worker (held or being stored), against its window. */
  readonly held: Record<MessageKind, number> = { vote: 0, sample: 0 };
  /** Messages settled so far: a full consumer that makes no progress is stalled by held messages. */
  private progress = 0;
  private readonly pressureTimers: Partial<Record<MessageKind, ReturnType<typeof setTimeout>>> = {};
  private stopped = false;
  private readonly maxConcurrency: number;
  private readonly counters: WorkerCounters;
  private readonly log: Logger;
  private readonly relieve: (kind: MessageKind) => void;

  constructor(concurrency: number, maxConcurrency: number, counters: WorkerCounters, log: Logger, relieve: (kind: MessageKind) => void) {
    this.size = { vote: concurrency, sample: Math.max(1, Math.ceil(concurrency / 4)) };
    this.maxConcurrency = maxConcurrency;
    this.counters = counters;
    this.log = log;
    this.relieve = relieve;
  }

  /** Messages held right now, of both kinds. */
  get heldTotal(): number {
    return this.held.vote + this.held.sample;
  }

  /** A message of this kind is now held. */
  take(kind: MessageKind): void {
    this.held[kind]++;
  }

  /** Acks (or, with `err`, fails) a batch of held messages and counts them as progress. */
  settle(batch: readonly Held[], err?: unknown): void {
    this.progress += batch.length;
    for (const h of batch) {
      this.held[h.kind]--;
      if (err === undefined) h.resolve();
      else h.reject(err);
    }
  }

  /**
   * A consumer of this kind pulls nothing until some of its held messages settle (it stops pulling
   * a little below its window, so a count against the window alone would miss it).
   */
  full(kind: MessageKind): boolean {
    return this.held[kind] >= this.size[kind] || this.handles[kind].some((h) => h.waitingForCapacity);
  }

  /**
   * Doubles both windows (up to `maxConcurrency` verdicts) so the votes a held sample waits for
   * can come in; false when they are as wide as allowed.
   */
  widen(): boolean {
    if (this.size.vote >= this.maxConcurrency) return false;
    this.size.vote = Math.min(this.maxConcurrency, this.size.vote * 2);
    this.size.sample = Math.max(1, Math.ceil(this.size.vote / 4));
    for (const h of this.handles.vote) h.setMaxInFlight(this.size.vote);
    for (const h of this.handles.sample) h.setMaxInFlight(this.size.sample);
    this.counters.widened++;
    this.log.info("consumer windows widened: critics run apart", { verdicts: this.size.vote, samples: this.size.sample, held: this.heldTotal });
    return true;
  }

  /**
   * A full consumer pulls nothing new. When it stays full with no message settled for 100 ms, the
   * windows widen, or at their widest held samples are flushed into KV to make room, so held
   * messages never stall the stream until their hold time. Watches until the consumer has room.
   */
  watchPressure(kind: MessageKind): void {
    if (this.pressureTimers[kind] !== undefined) return;
    const seen = this.progress;
    this.pressureTimers[kind] = setTimeout(() => {
      this.pressureTimers[kind] = undefined;
      if (this.stopped || !this.full(kind)) return;
      // A full samples window with room for verdicts only waits for the critics (slower than the
      // generator): the votes it waits for still come in. Stalled means no verdict can come in.
      const stalled = this.progress === seen && (kind === "vote" || this.full("vote"));
      if (stalled && !this.widen()) this.relieve(kind);
      this.watchPressure(kind);
    }, STALL_MS);
  }

  /** No more widening or flushing: the worker stops. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.pressureTimers.vote);
    clearTimeout(this.pressureTimers.sample);
  }
}
