import { describe, expect, it } from "vitest";
import type { CheckpointRecord } from "../../../src/domain/registry/index.js";
import { lineChart } from "../../../src/platform/charts/index.js";
import { renderFragment, renderPlots, type DashboardEvaluation, type DashboardState } from "./view.js";

const record = (version: number, round: number, status: CheckpointRecord["status"], reason = ""): CheckpointRecord => ({
  lineage: "main",
  version,
  parentVersion: version - 1,
  round,
  status,
  statusReason: reason,
  files: [],
  manifest: { sampleIdsDigest: `d${version}`, sampleCount: 10 * version },
  metrics: {},
  createdAt: "2026-01-01T00:00:00Z",
});

const evaluation = (version: number, acc: number): DashboardEvaluation => ({
  version,
  task: "addition",
  // The gate's validation numbers differ from the test split's: the plots must show the test split.
  split: "validation",
  perDifficulty: [{ difficulty: 1, count: 4, accuracy: 0.01, loss: 1, calibrationEce: 0.1 }],
  test: {
    perDifficulty: [
      { difficulty: 1, count: 4, accuracy: acc, loss: 0, calibrationEce: 0 },
      { difficulty: 2, count: 4, accuracy: acc / 2, loss: 0, calibrationEce: 0 },
    ],
    accuracy: (acc + acc / 2) / 2,
    frontier: acc >= 0.95 ? 1 : 0,
  },
  accuracy: 0.01,
  loss: 1.5,
  calibrationEce: 0.1,
  overconfidentWrongRate: 0,
  distinctN: { 1: 0.2, 2: 0.5, 3: 0.7 },
  tokenEntropy: 2,
  tailCoverage: 0.4,
  sliceAccuracy: {},
  driftKl: 0.1,
  frontier: 0,
  evalSetDigest: "x",
  alarms: version === 3 ? [{ kind: "tail_loss", stage: "early", metric: "m", value: 0, threshold: 0.5, severity: "critical", message: "<lost>", difficulty: 0 }] : [],
  durationMs: 1,
  labelAccuracy: 0.9,
  labelAccuracyProposed: -1,
  evaluatedAt: "2026-01-01T00:00:00Z",
});

describe("dashboard view", () => {
  it("draws one point per evaluated round per series, skips unknown (-1) values and escapes text", () => {
    const state: DashboardState = {
      lineage: "main",
      promotedVersion: 2,
      checkpoints: [
        { record: record(1, 0, "promoted"), evaluation: evaluation(1, 0.6), sampleIdsDigest: "d1", sampleCount: 10 },
        { record: record(2, 1, "promoted"), evaluation: evaluation(2, 1), sampleIdsDigest: "d2", sampleCount: 20, acceptanceRate: 0.5 },
        { record: record(3, 2, "rejected", "<script>x</script>"), evaluation: evaluation(3, 0.2), sampleIdsDigest: "d3", sampleCount: 30 },
        { record: record(4, 3, "candidate"), sampleIdsDigest: "d4", sampleCount: 40 },
      ],
      lineageChain: [1, 2],
      generatedAt: "now",
    };
    const plots = renderPlots(state);
    const ys = (svg: string, series: string): number[] => [...svg.matchAll(new RegExp(`<circle[^>]*data-series="${series}" data-x="[^"]*" data-y="([^"]*)"`, "g"))].map((m) => Number(m[1]));
    expect(ys(plots.accuracy!, "len 1")).toEqual([0.6, 1, 0.2]);
    expect(ys(plots.accuracy!, "len 2")).toEqual([0.3, 0.5, 0.1]);
    expect(ys(plots.frontier!, "frontier")).toEqual([0, 1, 0]);
    expect(ys(plots.acceptance!, "accepted / proposed")).toEqual([0.5]);
    expect(ys(plots.labels!, "proposed")).toEqual([]);
    expect(ys(plots.alarms!, "critical")).toEqual([0, 0, 1]);
    expect(plots.agreement).toContain("no data yet");
    const html = renderFragment(state);
    expect(html).not.toContain("<script>x");
    expect(html).toContain("&lt;script&gt;x&lt;/script&gt;");
    expect(html).toMatch(/data-version="4" data-status="candidate"/);
    expect(html).toMatch(/<li data-version="1">v1 · round 0 · 10 samples/);
  });

  it("lineChart scales points into the frame", () => {
    const svg = lineChart({ id: "t", title: "t", series: [{ name: "s", points: [[0, 0], [10, 1]] }], width: 200, height: 100, yMin: 0, yMax: 1 });
    const cx = [...svg.matchAll(/<circle cx="([^"]+)" cy="([^"]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(cx).toHaveLength(2);
    expect(cx[0]![0]).toBeLessThan(cx[1]![0]!);
    expect(cx[0]![1]).toBeGreaterThan(cx[1]![1]!); // y grows upwards
    expect(svg).toContain('data-points="2"');
  });

  it("lineChart labels whole-number data with whole-number ticks and fractions with five even ones", () => {
    const ticks = (svg: string): string[] => [...svg.matchAll(/text-anchor="end" class="tick">([^<]+)</g)].map((m) => m[1]!);
    const frontier = lineChart({ id: "f", title: "f", series: [{ name: "s", points: [[0, 7], [1, 8], [2, 13]] }] });
    expect(ticks(frontier)).toEqual(["7", "9", "11", "13"]);
    const accuracy = lineChart({ id: "a", title: "a", series: [{ name: "s", points: [[0, 0.2], [1, 0.9]] }], yMin: 0, yMax: 1 });
    expect(ticks(accuracy)).toHaveLength(5);
  });
});
