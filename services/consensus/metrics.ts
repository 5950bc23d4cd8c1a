import { metrics, type Counter, type Histogram, type Meter, type MeterProvider } from "@opentelemetry/api";
import { DecisionOutcome, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";

/** The consensus worker's counters and histogram. */
export interface ConsensusInstruments {
  meter: Meter;
  decisions: Counter;
  conflicts: Counter;
  decisionSeconds: Histogram;
}

let cache: { provider: MeterProvider; instruments: ConsensusInstruments } | undefined;

/**
 * Consensus metrics, made against whichever meter provider is global right now (telemetry may be
 * set up after this module loads, and instruments made earlier would stay no-ops).
 */
export function consensusInstruments(): ConsensusInstruments {
  const provider = metrics.getMeterProvider();
  if (cache?.provider !== provider) {
    const meter = provider.getMeter("autodidact.consensus");
    cache = {
      provider,
      instruments: {
        meter,
        decisions: meter.createCounter("autodidact.consensus.decisions", {
          description: "Decisions made (won compare-and-set), by task, outcome and whether the sample was accepted",
        }),
        conflicts: meter.createCounter("autodidact.consensus.cas_conflicts", {
          description: "Compare-and-set conflicts on the consensus bucket (workers racing over one sample), retried",
        }),
        decisionSeconds: meter.createHistogram("autodidact.consensus.decision.duration", {
          description: "Time from a sample's first event (vote or sample) to its decision",
          unit: "s",
        }),
      },
    };
  }
  return cache.instruments;
}

/**
 * Counts a decision this worker won the gate for, by task, outcome and acceptance, and its time
 * from the sample's first event (`start`, when known) to `now`.
 */
export function recordDecision(instruments: ConsensusInstruments, decision: Decision, start: number | undefined, now: number): void {
  instruments.decisions.add(1, { task: decision.task, outcome: DecisionOutcome[decision.outcome] ?? "UNSPECIFIED", accepted: decision.accepted });
  if (start !== undefined) instruments.decisionSeconds.record(Math.max(0, now - start) / 1000, { task: decision.task });
}
