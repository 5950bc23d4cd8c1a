// What a phase of a round is to the driver: it does its side effects (idempotently: a conductor
// killed mid-phase runs it again), and returns how the run moves on, which the driver persists with
// compare-and-set before the next phase starts.
import type { Bus } from "../../../src/platform/bus/index.js";
import type { Logger } from "../../../src/platform/telemetry/index.js";
import type { Registry } from "../../../src/domain/registry/index.js";
import type { RoundPhase, Run } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import type { BaseImporter } from "../base-import.js";
import type { Peers } from "../peers.js";
import type { EventInit, RunStore } from "../run-store.js";

/** Timings of the driver (flags; tests make them short). */
export interface DriverSettings {
  /** Attempts of a failing phase before the run fails. */
  readonly phaseAttempts: number;
  /** Backoff before the first retry, doubled per attempt up to `retryMaxMs`. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** How often a waiting phase looks again. */
  readonly pollMs: number;
  /** Longest wait for generator and critics to serve the promoted models. */
  readonly serveTimeoutMs: number;
  /** Longest wait for the monitor's gate on a candidate. */
  readonly gateTimeoutMs: number;
  /** Least time between two progress events of a phase. */
  readonly progressEveryMs: number;
}

/** The mesh as phases see it. */
export interface ConductorServices {
  readonly bus: Bus;
  readonly store: RunStore;
  readonly registry: Registry;
  readonly peers: Peers;
  readonly importer: BaseImporter;
  readonly logger: Logger;
  readonly settings: DriverSettings;
}

/** What a phase gets. */
export interface PhaseInput {
  /** The run as persisted when the phase began (its `current` holds what earlier phases recorded). */
  readonly run: Run;
  readonly services: ConductorServices;
  /** Aborted when the conductor loses the run's lease or stops. */
  readonly signal: AbortSignal;
  /** Reports progress inside the phase (an event, at most every `progressEveryMs`). */
  progress(done: number, total: number, detail: string): Promise<void>;
}

/** How the run moves on after a phase. */
export interface PhaseOutcome {
  /**
   * Writes the phase's results into (a copy of) the latest run and sets the next phase or ends the
   * run; returns events beyond the phase change, which the driver records (a finished round).
   */
  apply(run: Run): readonly EventInit[] | void;
}

/** One phase of a round. */
export interface Phase {
  readonly phase: RoundPhase;
  /** Its key in `phase_seconds`. */
  readonly key: string;
  run(input: PhaseInput): Promise<PhaseOutcome>;
}
