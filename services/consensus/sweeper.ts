// The sweeper: decides samples whose timeout passed and publishes decisions left unpublished
// (by this worker, or by one that crashed), every `sweepIntervalMs`; now and then it scans the
// whole ledger for samples other workers left behind.
import { defaultTextMapGetter, propagation, ROOT_CONTEXT, type Tracer } from "@opentelemetry/api";
import { consumerLag, type Bus, type ConsumerSpec } from "../../src/platform/bus/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { DueWork } from "./due-work.js";
import type { ConsensusLedger } from "./ledger.js";
import type { RecordMerger } from "./merge.js";
import { clockStart } from "./record.js";
import type { WorkerSettings } from "./worker-options.js";

/** What a {@link Sweeper} works with. */
export interface SweeperParts {
  bus: Bus;
  settings: WorkerSettings;
  ledger: ConsensusLedger;
  due: DueWork;
  merger: RecordMerger;
  /** The verdict consumers: timeouts wait until their backlog is drained. */
  verdictSpecs: readonly ConsumerSpec[];
  tracer: Tracer;
  log: Logger;
}

/** Runs one worker's sweeps, one at a time. */
export class Sweeper {
  private readonly parts: SweeperParts;
  /** The sweep running or last run (sweeps queue behind it). */
  private sweeping: Promise<number> | undefined;
  /** When the whole ledger was last scanned (0: never, so the first sweep scans it). */
  private lastFullScan = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(parts: SweeperParts) {
    this.parts = parts;
  }

  /** Sweeps every `sweepIntervalMs`, scanning the whole ledger every `fullScanIntervalMs`. */
  start(): void {
    const { settings, log } = this.parts;
    this.timer = setInterval(() => {
      if (this.stopped) return;
      this.sweep(Date.now() - this.lastFullScan >= settings.fullScanIntervalMs).catch((err: unknown) => log.warn("sweep failed", { error: String(err) }));
    }, settings.sweepIntervalMs);
    this.timer.unref();
  }

  /** Handles due work now (after any sweep under way); returns how many decisions it made or published. */
  sweep(full = false): Promise<number> {
    const run = (this.sweeping ?? Promise.resolve(0)).catch(() => 0).then(() => this.sweepOnce(full));
    this.sweeping = run;
    return run;
  }

  /** No more sweeps start; a sweep under way stops at its next sample. */
  halt(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** Resolves once the sweep under way (if any) ended. */
  async idle(): Promise<void> {
    await this.sweeping?.catch(() => undefined);
  }

  private async sweepOnce(full: boolean): Promise<number> {
    const { due, log, settings } = this.parts;
    let handled = 0;
    const now = Date.now();
    if (full) await this.scanLedger(now);
    // Votes still queued for this worker may belong to samples whose timeout passed while we were
    // behind (or disconnected): decide timeouts only once the verdict backlog is drained.
    const caughtUp = due.anyOverdue(now) && (await this.verdictsDrained());
    for (const [sampleId, deadline] of [...due.deadlines]) {
      if (this.stopped || !caughtUp) break;
      if (deadline > now) continue;
      try {
        if (await this.settle(sampleId)) handled++;
      } catch (err) {
        log.warn("sweep could not settle a sample", { sampleId, error: String(err) });
      }
    }
    for (const [sampleId, decidedAt] of [...due.unpublished]) {
      if (this.stopped) break;
      if (now - decidedAt < settings.republishGraceMs) continue;
      try {
        if (await this.settle(sampleId)) handled++;
      } catch (err) {
        log.warn("sweep could not publish a decision", { sampleId, error: String(err) });
      }
    }
    return handled;
  }

  /** Puts every open sample and unpublished decision of this worker's tasks on the to-do list. */
  private async scanLedger(now: number): Promise<void> {
    const { ledger, due, settings } = this.parts;
    this.lastFullScan = now;
    for (const k of await ledger.keys()) {
      const current = await ledger.read(k);
      if (current === null) continue;
      const r = current.record;
      // Another task's samples are settled by that task's workers, whose backlog we cannot see.
      if (settings.tasks !== undefined && !settings.tasks.includes(r.task)) continue;
      if (r.decision !== undefined) {
        if (!r.published) due.unpublishedSince(k, r.decidedAt ?? 0);
        continue;
      }
      const s = clockStart(r);
      if (s !== undefined) due.open(k, s + r.policy.timeoutMs);
    }
  }

  private async verdictsDrained(): Promise<boolean> {
    const { bus, verdictSpecs } = this.parts;
    try {
      const lags = await Promise.all(verdictSpecs.map((s) => consumerLag(bus, s.stream, s.durable)));
      return lags.every((l) => l.pending === 0);
    } catch {
      return false;
    }
  }

  /** A sweeper step for one sample, inside the sample's own trace when it has one. */
  private async settle(sampleId: string): Promise<boolean> {
    const { ledger, merger, tracer } = this.parts;
    const current = await ledger.read(sampleId);
    const carrier = current?.record.trace === undefined ? {} : { traceparent: current.record.trace };
    const parent = propagation.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
    return tracer.startActiveSpan("consensus sweep", { attributes: { "autodidact.sample_id": sampleId } }, parent, async (span) => {
      try {
        return await merger.touch(sampleId, "", []);
      } finally {
        span.end();
      }
    });
  }
}
