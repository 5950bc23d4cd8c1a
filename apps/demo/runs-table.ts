// The table of several demo runs (the demo bench: seeds × variants): one row per run from its report.json,
// then per variant the test-frontier gain as min / median / max. Pure, so it is tested without a mesh.
import type { DemoRun } from "../report/types.js";

/** One measured run. */
export interface BenchRow {
  readonly variant: string;
  readonly seed: number;
  readonly baseFrontier: number;
  readonly finalFrontier: number;
  /** Accepted labels right, over every round (monitor side); null when none was accepted. */
  readonly acceptedRight: number | null;
  readonly proposedRight: number | null;
  /** Lowest test accuracy at the end over the base range, and the 1-digit one. */
  readonly baseRangeMin: number | null;
  readonly oneDigit: number | null;
  readonly seconds: number;
  readonly rounds: number;
}

/** A run's row; `baseDigits` is the base range's top. */
export function benchRow(run: DemoRun, baseDigits: number, seed: number): BenchRow {
  const last = run.rounds.at(-1);
  const acc = last?.accuracyByLength ?? run.base.accuracyByLength;
  const share = (right: (r: DemoRun["rounds"][number]) => number, n: (r: DemoRun["rounds"][number]) => number): number | null => {
    const total = run.rounds.reduce((s, r) => s + n(r), 0);
    return total > 0 ? run.rounds.reduce((s, r) => s + right(r), 0) / total : null;
  };
  const base = acc.filter((a) => a.length <= baseDigits).map((a) => a.accuracy);
  return {
    variant: run.name,
    seed,
    baseFrontier: run.base.frontier,
    finalFrontier: last?.frontier ?? run.base.frontier,
    acceptedRight: share((r) => (r.acceptedLabelAccuracy ?? 0) * r.accepted, (r) => r.accepted),
    proposedRight: share((r) => (r.proposedLabelAccuracy ?? 0) * r.proposed, (r) => r.proposed),
    baseRangeMin: base.length > 0 ? Math.min(...base) : null,
    oneDigit: acc.find((a) => a.length === 1)?.accuracy ?? null,
    seconds: run.seconds,
    rounds: run.rounds.length,
  };
}

const pct = (x: number | null): string => (x === null ? "-" : (100 * x).toFixed(1));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The table as Markdown: the runs, then the gain per variant (min / median / max). */
export function formatBench(rows: readonly BenchRow[]): string {
  const head = "| variant | seed | rounds | test frontier base → end | gain | accepted labels right % | proposed right % | base-range min test % | 1-digit test % | wall s |";
  const lines = [head, "|---|---|---|---|---|---|---|---|---|---|"];
  for (const r of rows) {
    lines.push(
      `| ${r.variant} | ${r.seed} | ${r.rounds} | ${r.baseFrontier} → ${r.finalFrontier} | ${r.finalFrontier - r.baseFrontier >= 0 ? "+" : ""}${r.finalFrontier - r.baseFrontier} | ${pct(r.acceptedRight)} | ${pct(r.proposedRight)} | ${pct(r.baseRangeMin)} | ${pct(r.oneDigit)} | ${r.seconds.toFixed(0)} |`,
    );
  }
  lines.push("", "| variant | runs | gain min / median / max | wall s min / median / max |", "|---|---|---|---|");
  for (const v of [...new Set(rows.map((r) => r.variant))]) {
    const mine = rows.filter((r) => r.variant === v);
    const gains = mine.map((r) => r.finalFrontier - r.baseFrontier);
    const secs = mine.map((r) => r.seconds);
    lines.push(`| ${v} | ${mine.length} | ${Math.min(...gains)} / ${median(gains)} / ${Math.max(...gains)} | ${Math.min(...secs).toFixed(0)} / ${median(secs).toFixed(0)} / ${Math.max(...secs).toFixed(0)} |`);
  }
  return lines.join("\n");
}
