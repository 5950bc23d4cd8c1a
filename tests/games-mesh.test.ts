// A quick self-play run through the real mesh (nats-server with per-service credentials, every
// service its own process on gRPC port 0, the conductor driving the rounds): a random-weights
// policy/value model plays itself, the rules critic replays every game, consensus decides, the
// trainer trains a candidate on the accepted games, the monitor's arena gate decides and rates it
// against the fixed opponents. Two tiny rounds of Connect Four.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { quickGameConfig } from "../apps/demo/game-config.js";
import { runGameDemo } from "../apps/demo/game-run.js";

describe("game self-play through the mesh", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("plays, judges, decides, trains and gates two rounds of connect4 from random weights", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "games-mesh-"));
    dirs.push(stateDir);
    const config = quickGameConfig("connect4");
    const result = await runGameDemo({ config, stateDir });
    expect(result.status).toBe("SUCCEEDED");
    expect(result.rows.map((r) => r.round).length).toBe(2);
    // The base model (random weights, with search) was rated against the fixed opponents.
    expect(Number.isFinite(result.base?.elo)).toBe(true);
    for (const row of result.rows) {
      expect(row.proposed).toBe(config.gamesPerRound);
      // Real self-play records pass the rules critic: every game accepted.
      expect(row.accepted).toBe(config.gamesPerRound);
      expect(row.candidateVersion).toBeGreaterThan(1);
      expect(["promoted", "rejected"]).toContain(row.status);
      const c = row.candidate!;
      expect(Object.keys(c.anchors)).toEqual(["random", "alphabeta-1-half", "alphabeta-1"]);
      const t = c.arena!.tally;
      expect(t.wins + t.draws + t.losses).toBeGreaterThan(0);
      expect(c.arena!.decision.verdict).toBe(row.status === "promoted" ? "accept" : "reject");
      expect(row.reasons.join(" ")).toMatch(/arena \(policy v\d+, threshold\)/);
      expect(row.positionsPerSecond).toBeGreaterThan(0);
    }
  }, 240_000);
});
