import { describe, expect, it } from "vitest";
import type { DemoRun } from "../report/types.js";
import { benchRow, formatBench } from "./runs-table.js";

const acc = (xs: number[]): { length: number; accuracy: number }[] => xs.map((accuracy, i) => ({ length: i + 1, accuracy }));

function run(name: string, final: number, oneDigit: number): DemoRun {
  const round = (r: number, accepted: number, accRight: number) => ({
    round: r,
    labelLength: 6 + r,
    proposed: 100,
    accepted,
    acceptedLabelAccuracy: accRight,
    proposedLabelAccuracy: 0.5,
    poolSize: 0,
    accuracyByLength: acc([oneDigit, 1, 1, 1, 1, 0.99, 0.97, 0.2]),
    frontier: final,
    status: "promoted" as const,
    lineages: [],
    seconds: 10,
  });
  return { name, description: "", consensus: true, data: "accumulate", base: { frontier: 6, accuracyByLength: acc([1, 1, 1, 1, 1, 1, 0.5]) }, rounds: [round(1, 50, 1), round(2, 150, 0.96)], seconds: 600, stateDir: "/s" };
}

describe("the demo bench's table", () => {
  it("weights label accuracy by labels, takes the base range at the end, and the gain per variant", () => {
    const row = benchRow(run("default", 7, 0.9), 6, 1);
    expect(row.acceptedRight).toBeCloseTo((50 + 0.96 * 150) / 200, 12);
    expect(row.proposedRight).toBeCloseTo(0.5, 12);
    expect(row.baseRangeMin).toBe(0.9);
    expect(row.oneDigit).toBe(0.9);
    expect(row.finalFrontier - row.baseFrontier).toBe(1);
    const table = formatBench([row, benchRow(run("default", 12, 1), 6, 2), benchRow(run("default", 9, 1), 6, 3)]);
    expect(table).toContain("| default | 3 | 1 / 3 / 6 | 600 / 600 / 600 |");
    expect(table).toContain("| default | 1 | 2 | 6 → 7 | +1 | 97.0 | 50.0 | 90.0 | 90.0 | 600 |");
  });
});
