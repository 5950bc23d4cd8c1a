import { describe, expect, it } from "vitest";
import { createRng } from "../../engine/index.js";
import { Code } from "../../platform/errors/index.js";
import { eloFromScore, expectedScore, fitElo, type PairResult } from "./elo.js";

const byName = (ratings: ReturnType<typeof fitElo>): Record<string, (typeof ratings)[number]> => Object.fromEntries(ratings.map((r) => [r.name, r]));

describe("Elo from match results", () => {
  it("expected score and its inverse", () => {
    expect(expectedScore(0)).toBe(0.5);
    expect(expectedScore(400)).toBeCloseTo(10 / 11, 12);
    for (const d of [-500, -35, 0, 120, 800]) expect(eloFromScore(expectedScore(d))).toBeCloseTo(d, 8);
    expect(eloFromScore(1)).toBe(Infinity);
    expect(eloFromScore(0)).toBe(-Infinity);
  });

  it("one player against the anchor: the rating whose expected score is the observed one", () => {
    const results: PairResult[] = [{ a: "model", b: "random", wins: 30, draws: 0, losses: 10 }];
    const exact = byName(fitElo(results, { fixed: { random: 0 }, priorDraws: 0 }));
    expect(exact.random!.elo).toBe(0);
    expect(exact.random!.fixed).toBe(true);
    expect(exact.model!.elo).toBeCloseTo(eloFromScore(0.75), 6);
    // Fisher information of n games at p: n·p(1−p) per natural unit².
    expect(exact.model!.stderr).toBeCloseTo(400 / Math.LN10 / Math.sqrt(40 * 0.75 * 0.25), 6);
    expect(exact.model!.games).toBe(40);
    // Draws count half; one virtual draw by default keeps a perfect record finite.
    const withDraws = byName(fitElo([{ a: "model", b: "random", wins: 20, draws: 20, losses: 0 }], { fixed: { random: 0 }, priorDraws: 0 }));
    expect(withDraws.model!.elo).toBeCloseTo(eloFromScore(0.75), 6);
    const perfect = byName(fitElo([{ a: "model", b: "random", wins: 40, draws: 0, losses: 0 }], { fixed: { random: 0 } }));
    expect(perfect.model!.elo).toBeCloseTo(eloFromScore(40.5 / 41), 6);
    // Results may name the anchor first.
    const flipped = byName(fitElo([{ a: "random", b: "model", wins: 10, draws: 0, losses: 30 }], { fixed: { random: 0 }, priorDraws: 0 }));
    expect(flipped.model!.elo).toBeCloseTo(eloFromScore(0.75), 6);
  });

  it("fixed anchors keep their ratings; ratings chain through players who never met the anchor", () => {
    const mid = byName(
      fitElo(
        [
          { a: "model", b: "low", wins: 10, draws: 0, losses: 10 },
          { a: "model", b: "high", wins: 10, draws: 0, losses: 10 },
        ],
        { fixed: { low: 0, high: 400 }, priorDraws: 0 },
      ),
    );
    expect(mid.model!.elo).toBeCloseTo(200, 6);
    expect(mid.high!.elo).toBe(400);
    const chain = byName(
      fitElo(
        [
          { a: "x", b: "random", wins: 30, draws: 0, losses: 10 },
          { a: "y", b: "x", wins: 30, draws: 0, losses: 10 },
        ],
        { fixed: { random: 0 }, priorDraws: 0 },
      ),
    );
    expect(chain.x!.elo).toBeCloseTo(eloFromScore(0.75), 5);
    expect(chain.y!.elo).toBeCloseTo(2 * eloFromScore(0.75), 5);
    expect(chain.y!.stderr).toBeGreaterThan(chain.x!.stderr);
  });

  it("recovers simulated ratings within three standard errors", () => {
    const truth: Record<string, number> = { random: 0, a: 150, b: 400, c: 650 };
    const rng = createRng("elo-sim");
    const names = Object.keys(truth);
    const results: PairResult[] = [];
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const p = expectedScore(truth[names[i]!]! - truth[names[j]!]!);
        let wins = 0;
        for (let k = 0; k < 300; k++) if (rng.next() < p) wins++;
        results.push({ a: names[i]!, b: names[j]!, wins, draws: 0, losses: 300 - wins });
      }
    }
    const fit = byName(fitElo(results, { fixed: { random: 0 } }));
    for (const n of ["a", "b", "c"]) {
      expect(fit[n]!.stderr).toBeGreaterThan(0);
      expect(Math.abs(fit[n]!.elo - truth[n]!)).toBeLessThan(3 * fit[n]!.stderr);
    }
  });

  it("refuses what it cannot rate", () => {
    expect(() => fitElo([{ a: "x", b: "y", wins: 1, draws: 0, losses: 1 }], { fixed: { random: 0 } })).toThrow(expect.objectContaining({ code: Code.FailedPrecondition }));
    expect(() => fitElo([], { fixed: {} })).toThrow(/at least one fixed player/);
    expect(() => fitElo([{ a: "x", b: "random", wins: -1, draws: 0, losses: 1 }], { fixed: { random: 0 } })).toThrow(/non-negative integers/);
    expect(() => fitElo([{ a: "x", b: "x", wins: 1, draws: 0, losses: 1 }], { fixed: { x: 0 } })).toThrow(/against itself/);
  });
});
