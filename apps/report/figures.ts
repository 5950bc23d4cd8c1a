import type { DemoReport, DemoRun, Figure } from "./types.js";

type Point = readonly [number, number];
type FigureSeries = Figure["series"][number];

/** A file-name-safe form of a run name, used in figure ids (`accuracy-<slug>`). */
export function slug(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return s || "run";
}

/** Slugs of the report's runs, made unique (a suffix `-2`, `-3` ... on collisions), in run order. */
export function runSlugs(report: DemoReport): string[] {
  const seen = new Map<string, number>();
  return report.runs.map((r) => {
    const base = slug(r.name);
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}-${n}`;
  });
}

/** The run the single-run figures follow: the one named "default", else the first. */
export function defaultRun(report: DemoReport): DemoRun | undefined {
  return report.runs.find((r) => r.name === "default") ?? report.runs[0];
}

/**
 * The generator lineage of a run: `generatorLineage` when the driver recorded it, else the first
 * lineage listed in the run's rounds.
 */
export function generatorLineageOf(run: DemoRun): string | undefined {
  return run.generatorLineage ?? run.rounds.find((r) => r.lineages.length > 0)?.lineages[0]?.lineage;
}

const accuracyPoints = (acc: DemoRun["base"]["accuracyByLength"]): Point[] =>
  [...acc].sort((a, b) => a.length - b.length).map((a) => [a.length, a.accuracy] as const);

const present = (points: readonly (readonly [number, number | null])[]): Point[] =>
  points.filter((p): p is readonly [number, number] => p[1] !== null);

/**
 * The report's figures as data. Every point is a number the report holds (no smoothing, no
 * interpolation); a null (nothing accepted, nothing proposed) is left out rather than drawn as 0.
 *
 * - `frontier`: frontier per round, one series per run (round 0 = the base models).
 * - `accuracy-<run>`: test-split accuracy per length, one series per round (base dashed), per run.
 * - `samples`: proposed (dashed) and accepted counts per round, per run.
 * - `label-accuracy`: verifier accuracy of accepted and of proposed (dashed) labels per round, per run.
 * - `loss`: training loss curve of each round of the default run's generator lineage (rounds that
 *   trained it; a round without a candidate has no curve).
 */
export function reportFigures(report: DemoReport): Figure[] {
  const slugs = runSlugs(report);
  const figures: Figure[] = [];
  figures.push({
    id: "frontier",
    title: `Test-split frontier per round (accuracy >= ${report.frontierThreshold})`,
    xLabel: "round",
    yLabel: "frontier (digits)",
    series: report.runs.map((run) => ({
      name: run.name,
      points: [[0, run.base.frontier] as const, ...run.rounds.map((r) => [r.round, r.frontier] as const)],
    })),
  });
  report.runs.forEach((run, i) => {
    const series: FigureSeries[] = [
      { name: "base", points: accuracyPoints(run.base.accuracyByLength), dashed: true },
      ...run.rounds.map((r) => ({ name: `round ${r.round}`, points: accuracyPoints(r.accuracyByLength) })),
    ];
    figures.push({
      id: `accuracy-${slugs[i]}`,
      title: `Test-split accuracy per length (${run.name})`,
      xLabel: "length (digits)",
      yLabel: "exact-match accuracy",
      yMin: 0,
      yMax: 1,
      colors: "sequential",
      series,
    });
  });
  figures.push({
    id: "samples",
    title: "Proposed and accepted samples per round",
    xLabel: "round",
    yLabel: "samples",
    yMin: 0,
    series: report.runs.flatMap((run) => [
      { name: `${run.name} proposed`, points: run.rounds.map((r) => [r.round, r.proposed] as const), dashed: true },
      { name: `${run.name} accepted`, points: run.rounds.map((r) => [r.round, r.accepted] as const) },
    ]),
  });
  figures.push({
    id: "label-accuracy",
    title: "Label accuracy: accepted vs proposed",
    xLabel: "round",
    yLabel: "label accuracy (verifier)",
    yMin: 0,
    yMax: 1,
    series: report.runs.flatMap((run) => [
      { name: `${run.name} proposed`, points: present(run.rounds.map((r) => [r.round, r.proposedLabelAccuracy] as const)), dashed: true },
      { name: `${run.name} accepted`, points: present(run.rounds.map((r) => [r.round, r.acceptedLabelAccuracy] as const)) },
    ]),
  });
  const run = defaultRun(report);
  if (run !== undefined) {
    const lineage = generatorLineageOf(run);
    figures.push({
      id: "loss",
      title: `Training loss per round (${run.name}${lineage === undefined ? "" : `, lineage ${lineage}`})`,
      xLabel: "step",
      yLabel: "loss",
      colors: "sequential",
      // Rounds in which the lineage trained nothing (no candidate) have no curve and no legend entry.
      series: run.rounds
        .map((r) => ({ name: `round ${r.round}`, points: (r.lineages.find((l) => l.lineage === lineage)?.loss ?? []).map(([s, l]) => [s, l] as const) }))
        .filter((s) => s.points.length > 0),
    });
  }
  return figures;
}
