// Drives one run while this conductor holds its lease: runs the phase the run is at, then persists
// the transition (compare-and-set, conditioned on still being the run's driver and the run being at
// that phase) before the next phase's side effects. A phase that fails is retried with backoff, then
// the run fails with the reason. Pause and cancel requests take effect at the next transition.
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { RoundPhase, RunStatus, type Run } from "../../src/gen/autodidact/v1/conductor_pb.js";
import type { Lease } from "./lease.js";
import { PHASE_TABLE, type ConductorServices, type Phase, type PhaseOutcome } from "./phases/index.js";
import { progressEvent, statusSnapshot, type EventInit } from "./run-store.js";
import { sleep } from "./phases/wait.js";

/** The run moved on without this driver (another conductor drives it, or it is no longer at the phase). */
class NotDriving extends Error {}

const TERMINAL = new Set([RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED]);
const why = (err: unknown): string => (err instanceof AutodidactError ? err.rawMessage : err instanceof Error ? err.message : String(err));

/** Where the driver stands: a phase of a round. */
interface Position {
  readonly round: number;
  readonly phase: RoundPhase;
}

/** Drives one run until it ends, pauses, or the lease is lost. */
export class RunDriver {
  readonly #services: ConductorServices;
  readonly #lease: Lease;
  readonly #id: string;
  #lastProgressAt = 0;
  /** Consecutive UNAVAILABLE failures of the current phase (its backoff). */
  #unavailable = 0;

  constructor(services: ConductorServices, lease: Lease) {
    this.#services = services;
    this.#lease = lease;
    this.#id = lease.runId;
  }

  /** Drives the run; resolves when it stops driving (never rejects). */
  async drive(): Promise<void> {
    const signal = this.#lease.signal;
    const log = this.#services.logger;
    try {
      await this.#services.store.republish(this.#id);
      let run = await this.#claim();
      while (run !== undefined && !signal.aborted) run = await this.#step(run);
    } catch (err) {
      if (!(err instanceof NotDriving) && !signal.aborted) log.error("driving a run stopped", { run: this.#id, error: why(err) });
    }
  }

  /** Makes this conductor the run's driver (PENDING becomes RUNNING); undefined when there is nothing to drive. */
  async #claim(): Promise<Run | undefined> {
    const run = await this.#services.store.update(this.#id, (r) => {
      if (r.status !== RunStatus.PENDING && r.status !== RunStatus.RUNNING) return undefined;
      const events: EventInit[] = [];
      const started = r.status === RunStatus.PENDING;
      r.driver = this.#lease.holder;
      if (started) {
        r.status = RunStatus.RUNNING;
        r.message = "";
        events.push(statusSnapshot(r));
      }
      if (r.current?.phaseStartedAt === undefined && r.current !== undefined) r.current.phaseStartedAt = timestampFromMs(Date.now());
      return events;
    });
    return run.status === RunStatus.RUNNING && run.driver === this.#lease.holder ? run : undefined;
  }

  /** Runs the run's phase and persists its outcome (or its failure); the run as written, or undefined to stop. */
  async #step(run: Run): Promise<Run | undefined> {
    if (run.requestedStatus !== RunStatus.UNSPECIFIED) return this.#settle(run);
    const phase = PHASE_TABLE.get(run.phase);
    if (phase === undefined) return undefined;
    const at: Position = { round: run.round, phase: run.phase };
    let outcome: PhaseOutcome;
    try {
      outcome = await phase.run({ run, services: this.#services, signal: this.#lease.signal, progress: (d, t, detail) => this.#progress(at, d, t, detail) });
    } catch (err) {
      if (this.#lease.signal.aborted || err instanceof NotDriving) return undefined;
      return this.#failed(at, phase, err);
    }
    this.#unavailable = 0;
    return this.#commit(at, phase, outcome);
  }

  /** Persists a phase's outcome: its results, the next phase (with its start time), and a pending pause or cancel. */
  async #commit(at: Position, phase: Phase, outcome: PhaseOutcome): Promise<Run | undefined> {
    const written = await this.#services.store.update(this.#id, (r) => {
      this.#check(r, at);
      const now = Date.now();
      const cur = r.current;
      if (cur !== undefined) {
        const began = cur.phaseStartedAt === undefined ? now : timestampMs(cur.phaseStartedAt);
        cur.phaseSeconds[phase.key] = (cur.phaseSeconds[phase.key] ?? 0) + (now - began) / 1000;
        r.seconds += (now - began) / 1000;
      }
      const events: EventInit[] = [...(outcome.apply(r) ?? [])];
      if (r.status !== RunStatus.RUNNING) return events;
      if (r.current !== undefined && (r.phase !== at.phase || r.round !== at.round)) {
        r.current.phaseStartedAt = timestampFromMs(now);
        r.current.attempts = 0;
        r.message = "";
        events.push({ event: { case: "phaseStarted", value: r.phase }, round: r.round });
      }
      events.push(...this.#applyRequest(r));
      return events;
    });
    return written.status === RunStatus.RUNNING ? written : undefined;
  }

  /** A pending pause or cancel, made effective; the events of it. */
  #applyRequest(r: Run): EventInit[] {
    if (r.requestedStatus === RunStatus.UNSPECIFIED) return [];
    r.status = r.requestedStatus;
    r.requestedStatus = RunStatus.UNSPECIFIED;
    r.message = r.status === RunStatus.PAUSED ? `paused before round ${r.round}'s ${RoundPhase[r.phase]}` : `cancelled before round ${r.round}'s ${RoundPhase[r.phase]}`;
    r.driver = "";
    return [statusSnapshot(r)];
  }

  /** A pause or cancel asked for while no phase ran (at the start of driving). */
  async #settle(run: Run): Promise<undefined> {
    await this.#services.store.update(this.#id, (r) => {
      this.#check(r, run);
      return this.#applyRequest(r);
    });
    return undefined;
  }

  /**
   * A failed phase: retried after a backoff, or the run fails once its attempts are used up. A service
   * that cannot be reached (UNAVAILABLE: starting, restarting) uses up no attempt: the phase waits for it.
   */
  async #failed(at: Position, phase: Phase, err: unknown): Promise<Run | undefined> {
    const s = this.#services.settings;
    if (err instanceof AutodidactError && err.code === Code.Unavailable) return this.#waitForPeer(at, phase, err);
    this.#unavailable = 0;
    this.#services.logger.warn("phase failed", { run: this.#id, round: at.round, phase: phase.key, error: why(err) });
    const written = await this.#services.store.update(this.#id, (r) => {
      this.#check(r, at);
      const cur = r.current;
      const attempts = (cur?.attempts ?? 0) + 1;
      if (cur !== undefined) cur.attempts = attempts;
      if (attempts < s.phaseAttempts && r.requestedStatus === RunStatus.UNSPECIFIED) {
        r.message = `round ${at.round} ${phase.key} failed (attempt ${attempts} of ${s.phaseAttempts}), retrying: ${why(err)}`;
        return [progressEvent(at.phase, 0, 0, r.message)];
      }
      if (r.requestedStatus !== RunStatus.UNSPECIFIED) return this.#applyRequest(r);
      r.status = RunStatus.FAILED;
      r.message = `round ${at.round} ${phase.key} failed after ${attempts} attempts: ${why(err)}`;
      r.driver = "";
      return [statusSnapshot(r)];
    });
    if (written.status !== RunStatus.RUNNING) return undefined;
    const attempts = written.current?.attempts ?? 1;
    await sleep(Math.min(s.retryMaxMs, s.retryBaseMs * 2 ** (attempts - 1)), this.#lease.signal);
    return this.#lease.signal.aborted ? undefined : written;
  }

  /** Retries a phase whose peer is unreachable after a growing pause, saying what it waits for (once per message). */
  async #waitForPeer(at: Position, phase: Phase, err: AutodidactError): Promise<Run | undefined> {
    const s = this.#services.settings;
    const message = `round ${at.round} ${phase.key} waits for a service that cannot be reached: ${err.rawMessage}`;
    const written = await this.#services.store.update(this.#id, (r) => {
      this.#check(r, at);
      // Nothing is in flight while it waits: a pause or cancel takes effect now.
      if (r.requestedStatus !== RunStatus.UNSPECIFIED) return this.#applyRequest(r);
      if (r.message === message) return undefined;
      r.message = message;
      return [progressEvent(at.phase, 0, 0, message)];
    });
    if (written.status !== RunStatus.RUNNING) return undefined;
    await sleep(Math.min(s.retryMaxMs, s.retryBaseMs * 2 ** Math.min(this.#unavailable++, 8)), this.#lease.signal);
    return this.#lease.signal.aborted ? undefined : written;
  }

  /** A progress event of the running phase, at most every `progressEveryMs` (the last one always). Never throws. */
  async #progress(at: Position, done: number, total: number, detail: string): Promise<void> {
    const now = Date.now();
    if (now - this.#lastProgressAt < this.#services.settings.progressEveryMs && (total === 0 || done < total)) return;
    this.#lastProgressAt = now;
    try {
      await this.#services.store.update(this.#id, (r) => {
        this.#check(r, at);
        return [progressEvent(at.phase, done, total, detail)];
      });
    } catch (err) {
      if (err instanceof NotDriving) throw err;
      this.#services.logger.debug("could not record progress", { run: this.#id, error: why(err) });
    }
  }

  /** Refuses to write unless this conductor still drives the run and the run is still where the driver is. */
  #check(r: Run, at: Position): void {
    if (r.driver !== this.#lease.holder || r.status !== RunStatus.RUNNING || TERMINAL.has(r.status)) throw new NotDriving(`run ${r.id} is driven by ${r.driver || "nobody"} (${RunStatus[r.status]})`);
    if (r.round !== at.round || r.phase !== at.phase) throw new NotDriving(`run ${r.id} moved on to round ${r.round} ${RoundPhase[r.phase]}`);
  }
}
