/**
 * The demo report's data: everything `autodidact demo` measured, as plain JSON. The HTML report, the
 * PNG plots and the JSON file are all rendered from one `DemoReport`, so every figure can be traced
 * back to a number the services recorded.
 */

/** One lineage's outcome in one round: the candidate it trained and what the monitor decided. */
export interface LineageRound {
  readonly lineage: string;
  /** Candidate version the trainer registered (0 when the round produced none). */
  readonly candidateVersion: number;
  /** Version promoted for this lineage after the round (the candidate, or the parent kept). */
  readonly promotedVersion: number;
  readonly status: "promoted" | "rejected" | "rolled_back" | "no_candidate";
  /** One line per failed gate check (empty when promoted). */
  readonly reasons: readonly string[];
  /** Exact-match accuracy per length (digits) of the candidate on held-out real problems. */
  readonly accuracyByLength: readonly { readonly length: number; readonly accuracy: number }[];
  /** Longest length L such that every length from the report's `frontierFrom` to L is >= the threshold. */
  readonly frontier: number;
  /** Training loss curve of the round: [step, loss]. */
  readonly loss: readonly (readonly [number, number])[];
}

/** One self-improvement round of one run. */
export interface DemoRound {
  readonly round: number;
  /** Length (digits) of the problems the generator proposed this round. */
  readonly labelLength: number;
  readonly proposed: number;
  readonly accepted: number;
  /** Verifier accuracy of the accepted labels (monitor-side only), null when none was accepted. */
  readonly acceptedLabelAccuracy: number | null;
  /** Verifier accuracy of every proposed label at the new length, null when none was proposed. */
  readonly proposedLabelAccuracy: number | null;
  /** Accepted samples in the training pool after this round (accumulated or replaced). */
  readonly poolSize: number;
  /** Test-split accuracy per length of the generator lineage's promoted model after the round. */
  readonly accuracyByLength: readonly { readonly length: number; readonly accuracy: number }[];
  /** Test frontier of the generator lineage's promoted model after the round (largest L with every length from `frontierFrom` to L at >= the threshold). */
  readonly frontier: number;
  /** "promoted" when the generator lineage's candidate was promoted, else "rejected" etc. */
  readonly status: LineageRound["status"];
  readonly lineages: readonly LineageRound[];
  readonly seconds: number;
  /**
   * Where the round's seconds went, phase by phase (what to shorten when a run is too slow); absent in
   * reports written before phases were timed.
   */
  readonly phaseSeconds?: RoundPhaseSeconds;
  /** The curriculum's label-free agreement probes after the round (length, share), if it probed. */
  readonly probes?: readonly { readonly length: number; readonly agreement: number }[];
}

/**
 * Wall seconds of a round's phases: waiting for the generator and critics to serve the promoted
 * versions, proposing, the critics' judging, training every lineage, and the monitor's gate.
 */
export interface RoundPhaseSeconds {
  readonly serve: number;
  readonly propose: number;
  readonly judge: number;
  readonly train: number;
  readonly gate: number;
  /** The curriculum's agreement probe after the gate (runs driven by the conductor). */
  readonly probe?: number;
}

/** One run of the experiment (the default, or an ablation). */
export interface DemoRun {
  /** "default", "no-consensus", "replace" (or a user's label). */
  readonly name: string;
  /** What differs in this run, in words ("consensus on, data accumulates"). */
  readonly description: string;
  readonly consensus: boolean;
  readonly data: "accumulate" | "replace";
  /** Frontier and per-length accuracy of the base models (round 0). */
  readonly base: { readonly frontier: number; readonly accuracyByLength: readonly { readonly length: number; readonly accuracy: number }[] };
  readonly rounds: readonly DemoRound[];
  readonly seconds: number;
  /** Where the run's mesh kept its state, logs and NATS store. */
  readonly stateDir: string;
  /** Lineage whose promoted model served the generator (the loss figure follows it); optional, the
   * report falls back to the first lineage listed in the rounds. */
  readonly generatorLineage?: string;
  /**
   * The run's labels regime in words (where validation labels exist; an ablation says so), e.g.
   * "validation 1..6 (base range)"; absent in reports written before runs had one.
   */
  readonly labels?: string;
  /** The run's seed and its id at the conductor. */
  readonly seed?: number;
  readonly runId?: string;
}

/** The whole report: one or more runs of the same configuration. */
export interface DemoReport {
  readonly format: "autodidact.demo-report/1";
  readonly createdAt: string;
  readonly task: string;
  /** The resolved configuration (recipe, rounds, samples, model shape, critics, policy, seeds). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Exact-match accuracy that counts a length as mastered. */
  readonly frontierThreshold: number;
  readonly frontierFrom: number;
  readonly runs: readonly DemoRun[];
  /** The dashboard's address while the mesh ran (may be gone when the report is read). */
  readonly dashboardUrl?: string;
}

/** One figure of the report, as data: the PNG, the SVG in the HTML and the JSON come from this. */
export interface Figure {
  /** Stable id, also the PNG's file name (`<id>.png`). */
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly yMin?: number;
  readonly yMax?: number;
  readonly series: readonly { readonly name: string; readonly points: readonly (readonly [number, number])[]; readonly dashed?: boolean }[];
  /** How series are coloured: distinct hues (default), or a ramp for ordered series such as rounds. */
  readonly colors?: "categorical" | "sequential";
}
