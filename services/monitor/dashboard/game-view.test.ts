import { describe, expect, it } from "vitest";
import type { GameEvaluation } from "../arena/game-evaluation.js";
import { renderGameSection } from "./game-view.js";
import type { DashboardCheckpoint, DashboardState } from "./view.js";

const evaluation = (version: number, elo: number, arena?: [number, number, number]): GameEvaluation => ({
  task: "connect4",
  game: "connect4-6x7",
  elo,
  eloStderr: 40,
  anchorRatings: { random: 0, "alphabeta-1": 600 },
  anchors: { random: { wins: 20, draws: 0, losses: 0 }, "alphabeta-1": { wins: 12, draws: 0, losses: 8 } },
  ...(arena ? { arena: { promotedVersion: version - 1, tally: { wins: arena[0], draws: arena[1], losses: arena[2] }, decision: { verdict: arena[0] >= 22 ? "accept" : "reject", games: 40, score: 0.5, reason: "", policyVersion: 1 } } } : {}),
  alarms: [],
  passed: true,
  reasons: [],
  arenaPolicyVersion: 1,
  shown: { opponent: "alphabeta-1", modelFirst: true, moves: [3, 3, 3, 2, 3, 2, 3], outcome: 1 },
  anchorSeconds: 1,
  arenaSeconds: 1,
});

const checkpoint = (version: number, status: string, game: GameEvaluation): DashboardCheckpoint =>
  ({
    record: { lineage: "main", version, parentVersion: version - 1, round: version - 1, status, statusReason: "", files: [], manifest: {}, metrics: {}, createdAt: "" },
    evaluation: { game } as never,
    sampleIdsDigest: "",
    sampleCount: 0,
  }) as DashboardCheckpoint;

describe("dashboard game section", () => {
  it("shows Elo per round, the arena's W/D/L per candidate and the promoted model's game as a board", () => {
    const state: DashboardState = {
      lineage: "main",
      promotedVersion: 2,
      checkpoints: [checkpoint(1, "promoted", evaluation(1, 500)), checkpoint(2, "promoted", evaluation(2, 700, [25, 2, 13])), checkpoint(3, "rejected", evaluation(3, 650, [15, 0, 25]))],
      lineageChain: [1, 2],
      generatedAt: "now",
    };
    const html = renderGameSection(state);
    expect(html).toContain("<svg");
    expect(html).toContain("<td>25-2-13</td><td>accept</td>");
    expect(html).toContain("<td>15-0-25</td><td>reject</td>");
    expect(html).toContain("v2 against alphabeta-1");
    // x played column 4 four times: the board's column 4 holds four x's.
    expect(html.match(/x/g)!.length).toBeGreaterThanOrEqual(4);
    expect(renderGameSection({ ...state, checkpoints: [] })).toBe("");
  });
});
