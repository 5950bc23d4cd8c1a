// The conductor's round events as progress bars: one bar per phase of a round (proposing, judging,
// training, gating), redrawn from the phase's progress events; the probe's measurements as lines.
import { RoundPhase, type RunEvent } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { createProgressBar, type DemoOutput, type ProgressBar } from "./progress.js";

const LABELS: Partial<Record<RoundPhase, string>> = {
  [RoundPhase.IMPORT]: "importing base models",
  [RoundPhase.PROPOSE]: "proposing",
  [RoundPhase.JUDGE]: "critics judging",
  [RoundPhase.TRAIN]: "training",
  [RoundPhase.GATE]: "monitor gating",
};

/** Draws the phase bars of a run from its events. */
export class PhaseBars {
  readonly #out: DemoOutput;
  #bar: ProgressBar | undefined;
  #phase: RoundPhase = RoundPhase.UNSPECIFIED;
  #total = 0n;
  #detail = "";

  constructor(out: DemoOutput) {
    this.#out = out;
  }

  /** Updates the bars from one event of the run (status and round events are the caller's). */
  onEvent(e: RunEvent): void {
    if (e.event.case === "phaseStarted") {
      this.finish();
      this.#phase = e.event.value;
      if (this.#phase === RoundPhase.IMPORT) this.#out.write(`  ${LABELS[RoundPhase.IMPORT]} (the monitor evaluates and promotes each)\n`);
      return;
    }
    if (e.event.case !== "progress") return;
    const p = e.event.value;
    if (p.phase === RoundPhase.PROBE) {
      this.#out.write(`  round ${e.round}: probe ${p.detail}\n`);
      return;
    }
    if (p.total === 0n) {
      if (p.detail !== "" && p.detail !== this.#detail) this.#out.write(`  round ${e.round}: ${p.detail}\n`);
      this.#detail = p.detail;
      return;
    }
    if (this.#bar === undefined || p.phase !== this.#phase || p.total !== this.#total) {
      // A new phase ends the last bar; a grown total (another lineage reported its steps) redraws this one.
      if (p.phase !== this.#phase) this.finish();
      this.#phase = p.phase;
      this.#total = p.total;
      this.#bar = createProgressBar(this.#out, `round ${e.round}: ${LABELS[p.phase] ?? RoundPhase[p.phase]?.toLowerCase()}`, Number(p.total));
    }
    this.#bar.update(Number(p.done), p.phase === RoundPhase.JUDGE ? "" : p.detail);
  }

  /** Completes the bar in progress, if any. */
  finish(): void {
    this.#bar?.done();
    this.#bar = undefined;
    this.#detail = "";
  }
}
