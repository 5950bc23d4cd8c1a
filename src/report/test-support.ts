// A small hand-built DemoReport for the report's tests: three runs (default, no-consensus, replace)
// of three rounds, two lineages each, with numbers chosen so no two series coincide.
import type { DemoReport, DemoRound, DemoRun, LineageRound } from "./types.js";

const acc = (values: readonly number[]): { length: number; accuracy: number }[] => values.map((accuracy, i) => ({ length: i + 1, accuracy }));

function lineage(name: string, round: number, accuracy: readonly number[], frontier: number, status: LineageRound["status"], lossScale: number): LineageRound {
  return {
    lineage: name,
    candidateVersion: round + 1,
    promotedVersion: status === "promoted" ? round + 1 : round,
    status,
    reasons: status === "promoted" ? [] : [`accuracy at length ${frontier} fell below the parent's`],
    accuracyByLength: acc(accuracy),
    frontier,
    loss: Array.from({ length: 12 }, (_, s) => [s * 10, Number((lossScale * Math.exp(-s / 4) + 0.05 * round).toFixed(4))] as const),
  };
}

function run(name: string, consensus: boolean, data: DemoRun["data"], shift: number, gain: number): DemoRun {
  const rounds: DemoRound[] = [1, 2, 3].map((round) => {
    // Lengths up to `reach` are mastered, the next one half-way, the rest barely.
    const reach = 3 + Math.floor(round * gain);
    const accuracy = [1, 2, 3, 4, 5, 6, 7].map((len) => (len <= reach ? 0.99 - 0.003 * len : len === reach + 1 ? 0.6 - shift / 2 : 0.1 - shift / 10));
    const f = reach;
    const proposed = 200 + 10 * round;
    const accepted = consensus ? 150 + 7 * round - Math.round(shift * 40) : proposed;
    const status: LineageRound["status"] = round === 3 && shift > 0 ? "rejected" : "promoted";
    return {
      round,
      labelLength: 3 + round,
      proposed,
      accepted,
      acceptedLabelAccuracy: round === 2 && name === "replace" ? null : Number((0.97 - shift * 0.3 - 0.01 * round).toFixed(3)),
      proposedLabelAccuracy: Number((0.8 - shift * 0.2 - 0.05 * round).toFixed(3)),
      poolSize: data === "accumulate" ? accepted * round : accepted,
      accuracyByLength: acc(accuracy),
      frontier: f,
      status,
      lineages: [lineage(`${name}-gen`, round, accuracy, f, status, 2 + shift + round * 0.3), lineage(`${name}-b`, round, accuracy.map((a) => a * 0.9), f - 1, "rejected", 3)],
      seconds: 30 + round,
    };
  });
  return {
    name,
    description: `consensus ${consensus ? "on" : "off"}, data ${data === "accumulate" ? "accumulates" : "is replaced"}`,
    consensus,
    data,
    base: { frontier: 3, accuracyByLength: acc([1, 0.99, 0.96, 0.2, 0.01, 0, 0]) },
    rounds,
    seconds: 100 + shift * 10,
    stateDir: `/tmp/autodidact-demo/${name}`,
  };
}

/** The report the tests render: three runs side by side, a dashboard URL, a nested config. */
export function sampleReport(): DemoReport {
  return {
    format: "autodidact.demo-report/1",
    createdAt: "2026-11-25T09:00:00.000Z",
    task: "addition-reversed",
    config: { recipe: "quick", rounds: 3, samples: 200, model: { layers: 2, dModel: 64 }, critics: ["sympy-check", "self-consistency"], seeds: [1, 2] },
    frontierThreshold: 0.95,
    frontierFrom: 1,
    runs: [run("default", true, "accumulate", 0, 1), run("no-consensus", false, "accumulate", 0.5, 0), run("replace", true, "replace", 0.25, 0.5)],
    dashboardUrl: "http://127.0.0.1:8787/",
  };
}
