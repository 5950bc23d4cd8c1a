import { describe, expect, it } from "vitest";
import { reportFigures } from "./figures.js";
import { sampleReport } from "./test-support.js";
import type { DemoReport, Figure } from "./types.js";

const byId = (figures: readonly Figure[], id: string): Figure => {
  const f = figures.find((x) => x.id === id);
  if (f === undefined) throw new Error(`no figure ${id} among ${figures.map((x) => x.id).join(", ")}`);
  return f;
};
const series = (f: Figure, name: string): Figure["series"][number] => {
  const s = f.series.find((x) => x.name === name);
  if (s === undefined) throw new Error(`figure ${f.id} has no series ${name}`);
  return s;
};

describe("reportFigures", () => {
  const report = sampleReport();
  const figures = reportFigures(report);

  it("has one figure of each kind, with unique ids, and an accuracy figure per run", () => {
    expect(figures.map((f) => f.id)).toEqual(["frontier", "accuracy-default", "accuracy-no-consensus", "accuracy-replace", "samples", "label-accuracy", "loss"]);
  });

  it("frontier: one series per run, the base then every round's frontier", () => {
    const f = byId(figures, "frontier");
    expect(f.series.map((s) => s.name)).toEqual(["default", "no-consensus", "replace"]);
    for (const run of report.runs) {
      expect(series(f, run.name).points).toEqual([[0, run.base.frontier], ...run.rounds.map((r) => [r.round, r.frontier])]);
    }
    // The fixture's runs really differ, so this compares different numbers per run.
    expect(new Set(f.series.map((s) => JSON.stringify(s.points))).size).toBe(3);
  });

  it("accuracy: per run, one series per round (and the base, dashed) of accuracy per length", () => {
    for (const run of report.runs) {
      const f = byId(figures, `accuracy-${run.name}`);
      expect(f.yMin).toBe(0);
      expect(f.yMax).toBe(1);
      expect(series(f, "base")).toEqual({ name: "base", dashed: true, points: run.base.accuracyByLength.map((a) => [a.length, a.accuracy]) });
      for (const r of run.rounds) expect(series(f, `round ${r.round}`).points).toEqual(r.accuracyByLength.map((a) => [a.length, a.accuracy]));
      expect(f.series).toHaveLength(run.rounds.length + 1);
    }
  });

  it("samples: proposed (dashed) and accepted per round for every run", () => {
    const f = byId(figures, "samples");
    for (const run of report.runs) {
      expect(series(f, `${run.name} proposed`).points).toEqual(run.rounds.map((r) => [r.round, r.proposed]));
      expect(series(f, `${run.name} proposed`).dashed).toBe(true);
      expect(series(f, `${run.name} accepted`).points).toEqual(run.rounds.map((r) => [r.round, r.accepted]));
    }
  });

  it("label accuracy: accepted and proposed per round; a null is left out, not drawn as 0", () => {
    const f = byId(figures, "label-accuracy");
    for (const run of report.runs) {
      expect(series(f, `${run.name} accepted`).points).toEqual(run.rounds.filter((r) => r.acceptedLabelAccuracy !== null).map((r) => [r.round, r.acceptedLabelAccuracy]));
      expect(series(f, `${run.name} proposed`).points).toEqual(run.rounds.map((r) => [r.round, r.proposedLabelAccuracy]));
    }
    // The fixture has one null (replace, round 2): that point is missing.
    expect(series(f, "replace accepted").points.map((p) => p[0])).toEqual([1, 3]);
  });

  it("loss: the generator lineage's curve of every round of the default run", () => {
    const f = byId(figures, "loss");
    const run = report.runs[0]!;
    expect(f.series.map((s) => s.name)).toEqual(run.rounds.map((r) => `round ${r.round}`));
    run.rounds.forEach((r, i) => expect(f.series[i]!.points).toEqual(r.lineages.find((l) => l.lineage === "default-gen")!.loss));
  });

  it("loss follows the run's recorded generatorLineage, and the run named default even when it is not first", () => {
    const base = sampleReport();
    const runs = [base.runs[1]!, { ...base.runs[0]!, generatorLineage: "default-b" }];
    const report: DemoReport = { ...base, runs };
    const f = byId(reportFigures(report), "loss");
    expect(f.title).toContain("default-b");
    runs[1]!.rounds.forEach((r, i) => expect(f.series[i]!.points).toEqual(r.lineages.find((l) => l.lineage === "default-b")!.loss));
  });

  it("loss leaves out rounds in which the generator lineage trained nothing", () => {
    const base = sampleReport();
    const run = base.runs[0]!;
    const rounds = run.rounds.map((r) => (r.round === 2 ? { ...r, lineages: r.lineages.map((l) => ({ ...l, loss: [], status: "no_candidate" as const })) } : r));
    const f = byId(reportFigures({ ...base, runs: [{ ...run, rounds }] }), "loss");
    expect(f.series.map((s) => s.name)).toEqual(["round 1", "round 3"]);
  });

  it("gives colliding run names distinct figure ids", () => {
    const base = sampleReport();
    const report: DemoReport = { ...base, runs: [base.runs[0]!, { ...base.runs[1]!, name: "Default!" }] };
    const ids = reportFigures(report).map((f) => f.id);
    expect(ids).toContain("accuracy-default");
    expect(ids).toContain("accuracy-default-2");
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("a report without runs still yields the comparison figures, empty", () => {
    const figures = reportFigures({ ...sampleReport(), runs: [] });
    expect(figures.map((f) => f.id)).toEqual(["frontier", "samples", "label-accuracy"]);
    expect(figures.every((f) => f.series.length === 0)).toBe(true);
  });
});
