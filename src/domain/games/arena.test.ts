import { describe, expect, it } from "vitest";
import { createRng } from "../../engine/index.js";
import { alphaBetaAgent, randomAgent } from "./agents.js";
import { arenaDecision, checkArenaPolicy, DEFAULT_ARENA_POLICY, forgettingAlarms, runArena, sprtBounds, sprtLlr, type ArenaPolicy } from "./arena.js";
import { createConnectFour } from "./connect-four.js";
import { expectedScore } from "./elo.js";
import type { Tally } from "./match.js";

const sprtPolicy: ArenaPolicy = { ...DEFAULT_ARENA_POLICY, rule: "sprt", maxGames: 100_000, sprt: { elo0: 0, elo1: 50, alpha: 0.05, beta: 0.05, minGames: 10 } };

/** Plays simulated games (win/draw/loss from a true Elo difference, 20% draws) until the SPRT decides. */
function simulate(trueElo: number, seed: string, policy = sprtPolicy): { verdict: string; games: number } {
  const rng = createRng(seed);
  const s = expectedScore(trueElo);
  const draw = 0.2;
  // P(win) + P(draw)/2 = s with P(draw) = 0.2 (valid for scores in [0.1, 0.9]).
  const win = s - draw / 2;
  let t: Tally = { wins: 0, draws: 0, losses: 0 };
  for (;;) {
    const u = rng.next();
    t = u < win ? { ...t, wins: t.wins + 1 } : u < win + draw ? { ...t, draws: t.draws + 1 } : { ...t, losses: t.losses + 1 };
    const d = arenaDecision(policy, t);
    if (d.verdict !== "continue") return { verdict: d.verdict, games: d.games };
  }
}

describe("SPRT gate", () => {
  it("has Wald's bounds and the normal-approximation LLR of the documented formula", () => {
    const [lo, hi] = sprtBounds({ elo0: 0, elo1: 35, alpha: 0.05, beta: 0.1 });
    expect(lo).toBeCloseTo(Math.log(0.1 / 0.95), 12);
    expect(hi).toBeCloseTo(Math.log(0.9 / 0.05), 12);
    // By hand: 30 W, 10 D, 20 L; variance from 30.5/10.5/20.5 pseudo-counts.
    const t = { wins: 30, draws: 10, losses: 20 };
    const n = 60;
    const mean = 35 / 60;
    const m = 61.5;
    const pm = (30.5 + 0.5 * 10.5) / m;
    const variance = (30.5 * (1 - pm) ** 2 + 10.5 * (0.5 - pm) ** 2 + 20.5 * pm ** 2) / m;
    const s0 = 0.5;
    const s1 = 1 / (1 + 10 ** (-35 / 400));
    expect(sprtLlr(t, { elo0: 0, elo1: 35, alpha: 0.05, beta: 0.05 })).toBeCloseTo((n * (s1 - s0) * (2 * mean - s0 - s1)) / (2 * variance), 12);
    expect(sprtLlr({ wins: 0, draws: 0, losses: 0 }, sprtPolicy.sprt)).toBe(0);
    // A score exactly between s0 and s1 is no evidence either way.
    expect(Number.isFinite(sprtLlr({ wins: 5, draws: 0, losses: 0 }, sprtPolicy.sprt))).toBe(true);
  });

  it("accepts a clearly stronger candidate and rejects a weaker one, both early", () => {
    for (let k = 0; k < 20; k++) {
      const strong = simulate(200, `strong-${k}`);
      expect(strong.verdict).toBe("accept");
      expect(strong.games).toBeLessThan(200);
      const weak = simulate(-100, `weak-${k}`);
      expect(weak.verdict).toBe("reject");
      expect(weak.games).toBeLessThan(200);
    }
  });

  it("errs at about the configured rates at the hypotheses themselves", () => {
    const runs = 300;
    let falseAccepts = 0;
    let falseRejects = 0;
    for (let k = 0; k < runs; k++) {
      if (simulate(0, `h0-${k}`).verdict === "accept") falseAccepts++;
      if (simulate(50, `h1-${k}`).verdict === "reject") falseRejects++;
    }
    // alpha = beta = 0.05; Wald's bounds make the real rates at most about that.
    expect(falseAccepts / runs).toBeLessThan(0.09);
    expect(falseRejects / runs).toBeLessThan(0.09);
  });

  it("does not decide before minGames and rejects at the cap without a decision", () => {
    expect(arenaDecision(sprtPolicy, { wins: 9, draws: 0, losses: 0 }).verdict).toBe("continue");
    const capped = arenaDecision({ ...sprtPolicy, maxGames: 20 }, { wins: 10, draws: 0, losses: 10 });
    expect(capped.verdict).toBe("reject");
    expect(capped.reason).toMatch(/no decision after 20 games/);
    expect(capped.bounds).toEqual(sprtBounds(sprtPolicy.sprt));
    expect(capped.policyVersion).toBe(sprtPolicy.version);
  });
});

describe("threshold gate", () => {
  const p: ArenaPolicy = { ...DEFAULT_ARENA_POLICY, rule: "threshold", maxGames: 40, threshold: 0.55 };
  it("counts draws as half and stops as soon as the result is certain", () => {
    // 22 points of 40 are needed.
    expect(arenaDecision(p, { wins: 21, draws: 2, losses: 0 }).verdict).toBe("accept");
    expect(arenaDecision(p, { wins: 21, draws: 1, losses: 0 }).verdict).toBe("continue");
    // 19 losses: at most 21 points remain possible.
    expect(arenaDecision(p, { wins: 0, draws: 0, losses: 19 }).verdict).toBe("reject");
    expect(arenaDecision(p, { wins: 0, draws: 0, losses: 18 }).verdict).toBe("continue");
    expect(arenaDecision(p, { wins: 22, draws: 0, losses: 18 }).verdict).toBe("accept");
    const d = arenaDecision(p, { wins: 21, draws: 1, losses: 18 });
    expect(d.verdict).toBe("reject");
    expect(d.score).toBeCloseTo(21.5 / 40, 12);
  });

  it("rejects nonsensical policies", () => {
    expect(checkArenaPolicy(DEFAULT_ARENA_POLICY)).toBe(DEFAULT_ARENA_POLICY);
    expect(() => checkArenaPolicy({ ...p, threshold: 1.5 })).toThrow(/threshold must be in/);
    expect(() => checkArenaPolicy({ ...p, sprt: { ...p.sprt, elo1: -5 } })).toThrow(/elo1 .* must exceed elo0/);
    expect(() => checkArenaPolicy({ ...p, rule: "coin" as "sprt" })).toThrow(/rule must be/);
    expect(() => checkArenaPolicy({ ...p, play: { mode: "search", simulations: 0 } })).toThrow(/simulations/);
  });
});

describe("runArena", () => {
  const game = createConnectFour();
  it("promotes a stronger player and stops a weaker one early", async () => {
    const policy: ArenaPolicy = { ...DEFAULT_ARENA_POLICY, rule: "threshold", maxGames: 20, chunk: 4 };
    const up = await runArena(game, alphaBetaAgent(game, 2, 1), randomAgent(game, 1), policy, "arena");
    expect(up.decision.verdict).toBe("accept");
    // 11 points of 20 are certain after 12 games at the latest.
    expect(up.games.length).toBeLessThanOrEqual(12);
    const down = await runArena(game, randomAgent(game, 2), alphaBetaAgent(game, 2, 2), policy, "arena");
    expect(down.decision.verdict).toBe("reject");
    expect(down.games.length).toBeLessThan(20);
    expect(down.tally.wins + down.tally.draws + down.tally.losses).toBe(down.games.length);
    expect(down.games.map((g) => g.index)).toEqual(down.games.map((_, i) => i));
  });
});

describe("forgetting / cycle alarm", () => {
  const promoted = { random: { wins: 40, draws: 0, losses: 0 }, "alphabeta-2": { wins: 28, draws: 0, losses: 12 }, "alphabeta-4": { wins: 10, draws: 0, losses: 30 } };
  it("fires when the arena winner does markedly worse against an opponent the promoted model beat", () => {
    const candidate = { random: { wins: 40, draws: 0, losses: 0 }, "alphabeta-2": { wins: 12, draws: 4, losses: 24 }, "alphabeta-4": { wins: 2, draws: 0, losses: 38 } };
    const alarms = forgettingAlarms({ wins: 26, draws: 0, losses: 14 }, candidate, promoted);
    expect(alarms.map((a) => a.opponent)).toEqual(["alphabeta-2"]);
    expect(alarms[0]!.promotedScore).toBeCloseTo(0.7, 12);
    expect(alarms[0]!.candidateScore).toBeCloseTo(0.35, 12);
    expect(alarms[0]!.z).toBeGreaterThan(1.64);
    expect(alarms[0]!.message).toMatch(/scores 35% against alphabeta-2, which the promoted model beat at 70%/);
  });

  it("stays quiet when the candidate lost the arena, the drop is small or not significant", () => {
    const worse = { "alphabeta-2": { wins: 12, draws: 4, losses: 24 } };
    expect(forgettingAlarms({ wins: 10, draws: 0, losses: 30 }, worse, promoted)).toEqual([]);
    expect(forgettingAlarms({ wins: 20, draws: 0, losses: 20 }, worse, promoted)).toEqual([]);
    expect(forgettingAlarms({ wins: 26, draws: 0, losses: 14 }, { "alphabeta-2": { wins: 25, draws: 0, losses: 15 } }, promoted)).toEqual([]);
    // Same scores on 4 games each: a 0.75 → 0.25 drop is not significant at z 1.64.
    const tiny = { x: { wins: 3, draws: 0, losses: 1 } };
    expect(forgettingAlarms({ wins: 3, draws: 0, losses: 1 }, { x: { wins: 1, draws: 0, losses: 3 } }, tiny)).toEqual([]);
    expect(forgettingAlarms({ wins: 3, draws: 0, losses: 1 }, { x: { wins: 1, draws: 0, losses: 3 } }, tiny, { minZ: 0 })).toHaveLength(1);
    // An opponent the promoted model did not beat cannot be forgotten.
    expect(forgettingAlarms({ wins: 26, draws: 0, losses: 14 }, { "alphabeta-4": { wins: 0, draws: 0, losses: 40 } }, promoted)).toEqual([]);
  });
});
