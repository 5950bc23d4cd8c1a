import { describe, expect, it } from "vitest";
import { createRng } from "../../engine/index.js";
import { runSearches } from "./agents.js";
import { createConnectFour } from "./connect-four.js";
import { sampleDirichlet } from "./dirichlet.js";
import { CountingEvaluator, uniformEvaluator, type Evaluator } from "./evaluator.js";
import { parseMoves, playMoves } from "./game.js";
import { SearchTree } from "./mcts.js";
import { selfPlay } from "./self-play.js";

const game = createConnectFour();
const uniform = uniformEvaluator(game);
const at = (moves: string) => playMoves(game, parseMoves(game, moves));

async function search(moves: string, simulations: number, evaluator: Evaluator<ReturnType<typeof at>> = uniform): Promise<SearchTree<ReturnType<typeof at>>> {
  const t = new SearchTree(game, at(moves), { simulations });
  await runSearches([t], evaluator);
  return t;
}

describe("PUCT search with a uniform prior and zero value", () => {
  it("finds the one move that wins at once", async () => {
    // x: columns 5, 6, 7 on the bottom row; o: 1, 1, 2. Column 4 wins for x.
    expect(game.stateText(at("516172")).split("/").slice(4)).toEqual(["o......", "oo..xxx"]);
    for (const sims of [16, 50]) {
      const t = await search("516172", sims);
      expect(t.chooseMove(0)).toBe(3);
      expect(t.root.total).toBe(sims);
      const pi = t.visitDistribution();
      expect(pi[3]).toBeGreaterThan(0.75);
    }
  });

  it("finds the one move that blocks the opponent's win", async () => {
    // o: columns 1, 2, 3 on the bottom row; x to move must take column 4.
    expect(game.stateText(at("717263")).split("/").slice(4)).toEqual(["......x", "ooo..xx"]);
    const t = await search("717263", 100);
    expect(t.chooseMove(0)).toBe(3);
    expect(t.visitDistribution()[3]).toBeGreaterThan(0.5);
    // Every other move loses, and the search sees it.
    const block = t.root.q(t.root.moves.indexOf(3), 0);
    for (let i = 0; i < t.root.moves.length; i++) {
      if (t.root.moves[i] === 3) continue;
      expect(t.root.q(i, 0)).toBeLessThan(0);
      expect(t.root.q(i, 0)).toBeLessThan(block);
    }
  });

  it("judges finished games exactly and never sends them to the evaluator", async () => {
    const counting = new CountingEvaluator(uniform);
    const t = await search("516172", 40, counting);
    // The winning child is terminal: its visits needed no evaluation.
    const win = t.root.moves.indexOf(3);
    expect(t.root.q(win, 0)).toBe(1);
    expect(counting.positions).toBeLessThanOrEqual(40 - t.root.visits[win]!);
    expect(t.root.visits[win]).toBeGreaterThan(20);
  });

  it("has a visit distribution that sums to 1 over legal moves and 0 elsewhere", async () => {
    const t = await search("111111", 64);
    const pi = t.visitDistribution();
    expect(pi[0]).toBe(0);
    expect(Array.from(pi).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    t.root.moves.forEach((m, i) => expect(pi[m]).toBeCloseTo(t.root.visits[i]! / (t.root.total - 1), 6));
  });
});

describe("root noise and temperature", () => {
  it("Dirichlet draws are seeded, sum to 1, and have the right mean and variance", () => {
    expect(Array.from(sampleDirichlet(createRng("d"), 0.5, 7))).toEqual(Array.from(sampleDirichlet(createRng("d"), 0.5, 7)));
    expect(Array.from(sampleDirichlet(createRng("d"), 0.5, 7))).not.toEqual(Array.from(sampleDirichlet(createRng("e"), 0.5, 7)));
    for (const alpha of [0.3, 1, 3]) {
      const rng = createRng(`moments-${alpha}`);
      const n = 7;
      const draws = 6000;
      let mean = 0;
      let sq = 0;
      for (let k = 0; k < draws; k++) {
        const d = sampleDirichlet(rng, alpha, n);
        expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
        mean += d[0]!;
        sq += d[0]! ** 2;
      }
      mean /= draws;
      const variance = sq / draws - mean * mean;
      // Dir(α,…,α): E = 1/n, Var = (n − 1) / (n²(nα + 1)).
      const expectedVar = (n - 1) / (n * n * (n * alpha + 1));
      expect(mean).toBeCloseTo(1 / n, 2);
      expect(Math.abs(variance - expectedVar) / expectedVar).toBeLessThan(0.1);
    }
  });

  it("mixes noise into the root priors only, as P = (1 − ε)·P + ε·Dir(α), from the seeded stream", async () => {
    const eps = 0.25;
    const t = new SearchTree(game, game.initial(), { simulations: 30, dirichletEpsilon: eps, dirichletAlpha: 0.8 }, createRng("noise"));
    await runSearches([t], uniform);
    const eta = sampleDirichlet(createRng("noise"), 0.8, 7);
    t.root.priors.forEach((p, i) => expect(p).toBeCloseTo((1 - eps) / 7 + eps * eta[i]!, 12));
    expect(Array.from(t.root.rawPriors)).toEqual(new Array(7).fill(1 / 7));
    // Inner nodes keep their raw priors.
    for (const child of t.root.children) if (child?.expanded) expect(child.priors).toBe(child.rawPriors);
    // Without epsilon there is no noise at all.
    const quiet = new SearchTree(game, game.initial(), { simulations: 30 });
    await runSearches([quiet], uniform);
    expect(quiet.root.priors).toBe(quiet.root.rawPriors);
    expect(() => new SearchTree(game, game.initial(), { simulations: 5, dirichletEpsilon: 0.25 })).toThrow(/needs an rng/);
  });

  it("temperature 0 takes the most visited move; temperature 1 draws ∝ visits; small temperatures sharpen", async () => {
    const t = await search("4", 200);
    const visits = Array.from(t.root.visits);
    const best = t.root.moves[visits.indexOf(Math.max(...visits))];
    expect(t.chooseMove(0)).toBe(best);
    const total = visits.reduce((a, b) => a + b, 0);
    const rng = createRng("temperature");
    const counts = new Array<number>(7).fill(0);
    const draws = 20000;
    for (let k = 0; k < draws; k++) counts[t.chooseMove(1, rng)]!++;
    t.root.moves.forEach((m, i) => expect(Math.abs(counts[m]! / draws - visits[i]! / total)).toBeLessThan(0.015));
    const sharp = new Array<number>(7).fill(0);
    for (let k = 0; k < 2000; k++) sharp[t.chooseMove(0.1, rng)]!++;
    expect(sharp[best!]! / 2000).toBeGreaterThan(counts[best!]! / draws);
    // Same seed, same draws.
    const r1 = createRng("same");
    const r2 = createRng("same");
    expect(Array.from({ length: 50 }, () => t.chooseMove(1, r1))).toEqual(Array.from({ length: 50 }, () => t.chooseMove(1, r2)));
  });

  it("reuses the chosen move's subtree as the next root", async () => {
    const t = await search("", 100);
    const move = t.chooseMove(0);
    const child = t.root.children[t.root.moves.indexOf(move)]!;
    const childVisits = child.total;
    t.advance(move);
    expect(t.root).toBe(child);
    expect(t.root.total).toBe(childVisits);
    await runSearches([t], uniform);
    expect(t.root.total).toBe(100);
  });
});

describe("self-play", () => {
  it("records legal games with their visit distributions and outcomes, deterministically per seed", async () => {
    const options = { games: 6, mcts: { simulations: 24 }, seed: 7, concurrency: 4, lanes: 2, temperatureMoves: 6 };
    const a = await selfPlay(game, uniform, options);
    const b = await selfPlay(game, uniform, { ...options, lanes: 1, concurrency: 3 });
    const c = await selfPlay(game, uniform, { ...options, seed: 8 });
    expect(a.records).toEqual(b.records);
    expect(a.records).not.toEqual(c.records);
    expect(a.stats.games).toBe(6);
    expect(a.stats.positions).toBe(a.records.reduce((n, r) => n + r.moves.length, 0));
    expect(a.stats.evaluations).toBeGreaterThan(0);
    for (const r of a.records) {
      expect(r.game).toBe("connect4-6x7");
      expect(r.policies.length).toBe(r.moves.length);
      const end = playMoves(game, r.moves);
      expect(game.outcome(end)).toBe(r.outcome);
      let s = game.initial();
      r.moves.forEach((m, ply) => {
        const pi = r.policies[ply]!;
        expect(pi.length).toBe(7);
        expect(pi.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
        for (let col = 0; col < 7; col++) if (!game.isLegal(s, col)) expect(pi[col]).toBe(0);
        s = game.apply(s, m);
      });
    }
  });

  it("plays identical games without noise or temperature, and different ones with", async () => {
    const det = await selfPlay(game, uniform, { games: 3, mcts: { simulations: 20, dirichletEpsilon: 0 }, temperatureMoves: 0, seed: 1 });
    expect(det.records[1]!.moves).toEqual(det.records[0]!.moves);
    expect(det.records[2]!.moves).toEqual(det.records[0]!.moves);
    const noisy = await selfPlay(game, uniform, { games: 3, mcts: { simulations: 20 }, seed: 1 });
    expect(new Set(noisy.records.map((r) => r.moves.join(""))).size).toBeGreaterThan(1);
  });

  it("batches the leaves of all games of a lane into one evaluator call per step", async () => {
    const counting = new CountingEvaluator(uniform);
    const r = await selfPlay(game, counting, { games: 8, mcts: { simulations: 16 }, seed: 3, concurrency: 8, lanes: 2 });
    expect(counting.calls).toBe(r.stats.batches);
    expect(counting.positions).toBe(r.stats.evaluations);
    // Up to 4 games per lane: the mean batch is well above one leaf.
    expect(counting.positions / counting.calls).toBeGreaterThan(2);
  });
});
