// The demo's per-round table, printed row by row as the conductor finishes rounds: the length
// labelled, proposals and acceptances, label accuracy (accepted / proposed, judged on the monitor's
// side), the generator's test-split accuracy per length, the test frontier and the gate.
import type { DemoRound, DemoRun } from "../report/types.js";
import { pct, type DemoOutput } from "./progress.js";

type Accuracy = DemoRun["base"]["accuracyByLength"];

/** One printed row. */
export interface RowView {
  readonly round: number;
  readonly labelLength: number | null;
  readonly proposed: number | null;
  readonly accepted: number | null;
  readonly acc: number | null;
  readonly propAcc: number | null;
  readonly accuracy: Accuracy;
  readonly frontier: number;
  readonly status: string;
}

/** The header: one column per length of the test split. */
export function printHeader(out: DemoOutput, lengths: readonly number[]): void {
  const head = ["round", "len", "proposed", "accepted", "label acc % (acc/prop)", ...lengths.map((l) => `${l}d`), "frontier", "gate"];
  out.write(`\n${head.map((h, i) => (i === 4 ? h.padEnd(22) : h.padStart(i < 4 ? 8 : 4))).join(" ")}\n`);
}

/** One row; accuracies in whole percent on the test split. */
export function printRow(out: DemoOutput, lengths: readonly number[], v: RowView): void {
  const acc = new Map(v.accuracy.map((a) => [a.length, a.accuracy]));
  const cells = [
    String(v.round).padStart(8),
    (v.labelLength === null ? "-" : String(v.labelLength)).padStart(8),
    (v.proposed === null ? "-" : String(v.proposed)).padStart(8),
    (v.accepted === null ? "-" : String(v.accepted)).padStart(8),
    (v.acc === null && v.propAcc === null ? "-" : `${pct(v.acc)} / ${pct(v.propAcc)}`).padEnd(22),
    ...lengths.map((l) => pct(acc.get(l)).padStart(4)),
    String(v.frontier).padStart(4),
    v.status,
  ];
  out.write(`${cells.join(" ")}\n`);
}

/** The row of a finished round: gate outcome per lineage (P promoted, R rejected, - none), the probes, the time. */
export function roundRow(r: DemoRound, probes: string): RowView {
  const gates = r.lineages.map((l) => (l.status === "promoted" ? "P" : l.status === "rejected" ? "R" : "-")).join("");
  const p = r.phaseSeconds;
  const time = `${r.seconds.toFixed(0)}s${p ? ` (train ${p.train.toFixed(0)}, gate ${p.gate.toFixed(0)})` : ""}`;
  return {
    round: r.round,
    labelLength: r.labelLength,
    proposed: r.proposed,
    accepted: r.accepted,
    acc: r.acceptedLabelAccuracy,
    propAcc: r.proposedLabelAccuracy,
    accuracy: r.accuracyByLength,
    frontier: r.frontier,
    status: `${gates} ${time}${probes ? ` agree ${probes}` : ""}`,
  };
}

/** The run's closing lines: test frontier before → after, per-length test accuracy at the end, label accuracy. */
export function printSummary(out: DemoOutput, run: DemoRun): void {
  const last = run.rounds.at(-1);
  const final = last?.frontier ?? run.base.frontier;
  const acc = (last?.accuracyByLength ?? run.base.accuracyByLength).map((a) => `${a.length}:${pct(a.accuracy)}`).join(" ");
  const labelled = run.rounds.reduce((n, r) => n + r.accepted, 0);
  const right = run.rounds.reduce((n, r) => n + (r.acceptedLabelAccuracy ?? 0) * r.accepted, 0);
  const proposed = run.rounds.reduce((n, r) => n + r.proposed, 0);
  const rightProposed = run.rounds.reduce((n, r) => n + (r.proposedLabelAccuracy ?? 0) * r.proposed, 0);
  out.write(
    `run ${run.name}${run.labels ? ` [${run.labels}]` : ""}: test frontier ${run.base.frontier} -> ${final} (${final - run.base.frontier >= 0 ? "+" : ""}${final - run.base.frontier}) in ${run.seconds.toFixed(0)} s; ` +
      `accepted labels ${pct(labelled > 0 ? right / labelled : null)} % right of ${labelled}, proposed ${pct(proposed > 0 ? rightProposed / proposed : null)} % of ${proposed}\n` +
      `  test accuracy per length at the end (%): ${acc}\n`,
  );
}
