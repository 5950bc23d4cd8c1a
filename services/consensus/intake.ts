// The intake: the worker's consumers of verdicts and samples. It holds each sample's messages
// unacked until they decide it from memory (the fast path), or merges them into the shared
// record (the merge path) when they do not within the hold time, under back-pressure, or on stop.
import { trace, type Tracer } from "@opentelemetry/api";
import { consume, type Bus, type BusMessage, type ConsumerSpec } from "../../src/platform/bus/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { ConsensusPolicy } from "../../src/domain/consensus/index.js";
import type { Decided } from "./decisions.js";
import type { LocalView, MemoryDecider } from "./fast-path.js";
import { localView, RecentMap, type Held, type SampleHold } from "./holds.js";
import type { RecordMerger } from "./merge.js";
import { parseMessage, withRetry, type MessageKind, type RetryBounds } from "./messages.js";
import type { PolicyProvider, WorkerCounters, WorkerSettings } from "./worker-options.js";
import { ConsumerWindows } from "./windows.js";

/** Samples remembered as settled (each memory forgets its oldest beyond this). */
const REMEMBERED = 100_000;

/** What an {@link Intake} works with. */
export interface IntakeParts {
  settings: WorkerSettings;
  policyProvider: PolicyProvider;
  memory: MemoryDecider;
  merger: RecordMerger;
  counters: WorkerCounters;
  tracer: Tracer;
  log: Logger;
}

/** The consumers of one worker and the messages they hold, grouped by sample. */
export class Intake {
  readonly windows: ConsumerWindows;
  private readonly holds = new Map<string, SampleHold>();
  /** Samples known to have a KV record: their events go straight to KV. */
  private readonly inKv = new RecentMap<true>(REMEMBERED);
  /**
   * Samples this worker decided and published, with the critics whose votes the decision holds:
   * a vote arriving after an early decision is acked without a KV read, since the stored
   * decision cannot change.
   */
  private readonly decidedHere = new RecentMap<ReadonlySet<string>>(REMEMBERED);
  private stopped = false;
  private readonly parts: IntakeParts;
  private readonly retry: RetryBounds;

  constructor(parts: IntakeParts, bus: Bus) {
    this.parts = parts;
    const { settings, counters, log } = parts;
    this.windows = new ConsumerWindows(settings.concurrency, settings.maxConcurrency, counters, log, (kind) => this.relieve(kind));
    this.retry = { retryForMs: settings.retryForMs, giveUp: () => this.stopped || bus.nc.isClosed(), log };
  }

  /** Starts one consumer per spec; fast (unconfirmed) acks, since the gate is the KV create + msgId. */
  async start(bus: Bus, specs: Record<MessageKind, readonly ConsumerSpec[]>): Promise<void> {
    for (const kind of ["vote", "sample"] as const) {
      for (const spec of specs[kind]) {
        const handle = await consume(bus, spec, (msg) => this.handle(kind, msg), { maxInFlight: this.windows.size[kind], ackMode: "fast", logger: this.parts.log });
        this.windows.handles[kind].push(handle);
      }
    }
  }

  /** Stops taking messages; what is held is merged into KV now rather than after its hold time. */
  beginStop(): void {
    this.stopped = true;
    for (const l of this.holds.values()) {
      l.flushNow = true;
      void this.drive(l);
    }
    this.windows.stop();
  }

  /** Stops the consumers; in-flight messages finish first (unacked ones are redelivered). */
  async stopConsumers(): Promise<void> {
    await Promise.all([...this.windows.handles.vote, ...this.windows.handles.sample].map((h) => h.stop()));
  }

  /** One delivered message: held with its sample; returns (acks) once the sample settled it. */
  private async handle(kind: MessageKind, msg: BusMessage): Promise<void> {
    let parsed: ReturnType<typeof parseMessage>;
    try {
      parsed = parseMessage(msg, kind);
    } catch (err) {
      this.parts.counters.poisoned++;
      throw err;
    }
    const { sampleId, task, event } = parsed;
    const span = trace.getActiveSpan();
    span?.setAttribute("autodidact.sample_id", sampleId);
    span?.setAttribute("autodidact.task", task);
    let l = this.holds.get(sampleId);
    if (l === undefined) {
      l = { sampleId, task, firstSeenAt: Date.now(), held: [], viaKv: this.inKv.has(sampleId), flushNow: this.stopped, running: false };
      this.holds.set(sampleId, l);
    }
    const hold = l;
    const done = new Promise<void>((resolve, reject) => hold.held.push({ kind, event, msg, resolve, reject }));
    this.windows.take(kind);
    void this.drive(hold);
    if (this.windows.full(kind)) this.windows.watchPressure(kind);
    await done;
    if (kind === "vote") this.parts.counters.verdicts++;
    else this.parts.counters.samples++;
  }

  /**
   * Drives one sample's held messages: decided from memory when they suffice (one KV create),
   * otherwise held until more arrive or the hold time passes, then merged into the shared record
   * with compare-and-set. A message resolves (is acked) only once its event is stored in KV.
   */
  private async drive(l: SampleHold): Promise<void> {
    if (l.running) return;
    l.running = true;
    try {
      while (l.held.length > 0 && (await this.step(l)));
    } finally {
      l.running = false;
      if (l.held.length === 0) {
        if (l.timer !== undefined) clearTimeout(l.timer);
        if (this.holds.get(l.sampleId) === l) this.holds.delete(l.sampleId);
      }
    }
  }

  /** Settles what it can of a sample's held messages; false when they wait for more (or the timer). */
  private async step(l: SampleHold): Promise<boolean> {
    const voters = this.decidedHere.get(l.sampleId);
    if (voters !== undefined) {
      const batch = l.held.splice(0);
      for (const h of batch) if (h.event.kind === "vote" && !voters.has(h.event.verdict.criticId)) this.parts.counters.lateVotes++;
      this.windows.settle(batch);
      return true;
    }
    if (l.viaKv || l.flushNow || this.stopped) {
      await this.merge(l);
      return true;
    }
    if (l.policy === undefined) {
      try {
        l.policy = await this.parts.policyProvider(l.task);
      } catch {
        // The KV path reports (and retries) the missing policy.
        l.viaKv = true;
        return true;
      }
    }
    const policy = l.policy;
    const now = Date.now();
    const { view, ev } = localView(l, policy, now, this.parts.log);
    if (ev.state === "decided" && view.sample !== undefined) {
      await this.decide(l, view, policy, ev, now);
      return true;
    }
    if (l.timer === undefined) {
      const delay = Math.max(0, Math.min(this.parts.settings.flushAfterMs, policy.timeoutMs / 4));
      l.timer = setTimeout(() => {
        l.flushNow = true;
        void this.drive(l);
      }, delay);
    }
    return false;
  }

  /** The fast path for a decidable sample; back to the merge path when its key already exists. */
  private async decide(l: SampleHold, view: LocalView, policy: ConsensusPolicy, ev: Decided, now: number): Promise<void> {
    const batch = l.held.splice(0);
    let created = false;
    try {
      created = await this.parts.tracer.startActiveSpan("consensus decide", async (s) => {
        try {
          return await withRetry(batch[0]!.msg, () => this.parts.memory.decide(view, policy, ev, now), this.retry);
        } finally {
          s.end();
        }
      });
    } catch (err) {
      this.windows.settle(batch, err);
      return;
    }
    this.inKv.remember(l.sampleId, true);
    if (created) {
      this.decidedHere.remember(l.sampleId, new Set(view.votes.map((v) => v.criticId)));
      this.windows.settle(batch);
    } else {
      l.viaKv = true;
      l.held.unshift(...batch);
    }
  }

  /** The merge path: every held message of the sample into the shared record at once. */
  private async merge(l: SampleHold): Promise<void> {
    const batch: Held[] = l.held.splice(0);
    this.parts.counters.merged++;
    try {
      await this.parts.tracer.startActiveSpan("consensus record votes", async (s) => {
        try {
          await withRetry(batch[0]!.msg, () => this.parts.merger.touch(l.sampleId, l.task, batch.map((h) => h.event)), this.retry);
        } finally {
          s.end();
        }
      });
      this.inKv.remember(l.sampleId, true);
      this.windows.settle(batch);
    } catch (err) {
      this.windows.settle(batch, err);
    }
  }

  /** Stalled at the widest windows: the oldest quarter of the held samples go to KV at once. */
  private relieve(kind: MessageKind): void {
    // One at a time would throttle the stream to one sample per tick.
    let budget = Math.max(1, Math.ceil(this.windows.held[kind] / 4));
    for (const other of this.holds.values()) {
      if (budget <= 0) break;
      if (other.viaKv || other.flushNow || !other.held.some((h) => h.kind === kind)) continue;
      other.flushNow = true;
      budget -= other.held.length;
      void this.drive(other);
    }
  }
}
