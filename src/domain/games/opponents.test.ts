import { describe, expect, it } from "vitest";
import { alphaBetaAgent, anchorLadder, mctsAgent, mixedAgent, policyAgent, randomAgent, type Agent } from "./agents.js";
import { AlphaBetaSearch, WIN_SCORE } from "./alpha-beta.js";
import { createConnectFour, type ConnectFourState } from "./connect-four.js";
import { uniformEvaluator } from "./evaluator.js";
import { parseMoves, playMoves } from "./game.js";
import { playMatch } from "./match.js";

const game = createConnectFour();
const at = (moves: string): ConnectFourState => playMoves(game, parseMoves(game, moves));

describe("fixed alpha-beta opponents", () => {
  it("depth 1 takes an immediate win, depth 2 blocks, depth 3 sees a lost double threat", () => {
    const win = new AlphaBetaSearch(game, 1).bestMoves(at("516172"));
    expect(win.moves).toEqual([3]);
    expect(win.score).toBe(WIN_SCORE - 1);
    // Depth 2 sees the reply that would win and blocks it. (Depth 1 blocks here too, but only
    // because the heuristic dislikes the opponent's open three.)
    const block = new AlphaBetaSearch(game, 2).bestMoves(at("717263"));
    expect(block.moves).toEqual([3]);
    // A double threat (o has 2, 3, 4 with 1 and 5 open) is lost whatever x does, and depth 3 knows it.
    const lost = new AlphaBetaSearch(game, 3).bestMoves(at("727364"));
    expect(game.stateText(at("727364")).split("/").slice(4)).toEqual(["......x", ".ooo.xx"]);
    expect(lost.score).toBe(-(WIN_SCORE - 2));
  });

  it("scores exactly like plain negamax (pruning changes nothing but the node count)", () => {
    const plain = (s: ConnectFourState, depth: number, ply: number): number => {
      const o = game.outcomeForToMove(s);
      if (o !== null) return o === 0 ? 0 : o * (WIN_SCORE - ply);
      if (depth === 0) return game.heuristic(s);
      return Math.max(...game.legalMoves(s).map((m) => -plain(game.apply(s, m), depth - 1, ply + 1)));
    };
    for (const moves of ["", "44", "4433", "3452", "717263", "12121"]) {
      const s = at(moves);
      for (const depth of [1, 2, 3]) {
        const ab = new AlphaBetaSearch(game, depth);
        const r = ab.bestMoves(s);
        const scores = game.legalMoves(s).map((m) => -plain(game.apply(s, m), depth - 1, 1));
        const best = Math.max(...scores);
        expect(r.score).toBe(best);
        expect(r.moves).toEqual(game.legalMoves(s).filter((_, i) => scores[i] === best));
      }
    }
  });

  it("breaks ties from its seed: the same seed replays the same games, another seed varies them", async () => {
    // From the empty board the mirror-symmetric columns tie at every depth.
    expect(new AlphaBetaSearch(game, 2).bestMoves(game.initial()).moves.length).toBeGreaterThan(1);
    const m1 = await playMatch(game, alphaBetaAgent(game, 2, 1), alphaBetaAgent(game, 2, 2), { games: 4, seed: 3, openingPlies: 0 });
    const m2 = await playMatch(game, alphaBetaAgent(game, 2, 1), alphaBetaAgent(game, 2, 2), { games: 4, seed: 3, openingPlies: 0 });
    const m3 = await playMatch(game, alphaBetaAgent(game, 2, 5), alphaBetaAgent(game, 2, 6), { games: 4, seed: 3, openingPlies: 0 });
    expect(m1.games.map((g) => g.moves)).toEqual(m2.games.map((g) => g.moves));
    expect(m1.games.map((g) => g.moves)).not.toEqual(m3.games.map((g) => g.moves));
  });

  it("form a ladder: every depth crushes random play and the deeper search wins more", async () => {
    const random = randomAgent(game, 1);
    for (const depth of [1, 2]) {
      const r = await playMatch(game, alphaBetaAgent(game, depth, 1), random, { games: 10, seed: 1 });
      expect(r.score).toBeGreaterThanOrEqual(0.9);
    }
    const r = await playMatch(game, alphaBetaAgent(game, 4, 1), alphaBetaAgent(game, 1, 2), { games: 10, seed: 2 });
    expect(r.score).toBeGreaterThan(0.6);
  });
});

describe("the anchor ladder", () => {
  it("a mixed agent takes each move from one of its two players, in the given proportion", async () => {
    const first: Agent<ConnectFourState> = { name: "first", selectMoves: (states) => Promise.resolve(states.map(() => 0)) };
    const last: Agent<ConnectFourState> = { name: "last", selectMoves: (states) => Promise.resolve(states.map(() => 6)) };
    const mix = mixedAgent("mix", first, last, 0.25, 1);
    const moves = await mix.selectMoves(Array.from({ length: 4000 }, () => game.initial()));
    const share = moves.filter((m) => m === 0).length / moves.length;
    expect(new Set(moves)).toEqual(new Set([0, 6]));
    expect(share).toBeGreaterThan(0.22);
    expect(share).toBeLessThan(0.28);
    expect(() => mixedAgent("bad", first, last, 1.5, 1)).toThrow(/pA must be in \[0, 1\]/);
  });

  it("names its rungs weakest first, and each rung beats the one below", async () => {
    const ladder = anchorLadder(game, 1);
    expect(ladder.map((a) => a.name)).toEqual(["random", "alphabeta-1-half", "alphabeta-1", "alphabeta-2", "alphabeta-4"]);
    for (let i = 0; i + 1 < 4; i++) {
      const r = await playMatch(game, ladder[i + 1]!, ladder[i]!, { games: 10, seed: `ladder-${i}` });
      expect(r.score).toBeGreaterThan(0.5);
    }
  });
});

describe("matches", () => {
  it("alternate colours over paired random openings and tally for the first agent", async () => {
    const a = alphaBetaAgent(game, 2, 1);
    const b = randomAgent(game, 2);
    const r = await playMatch(game, a, b, { games: 6, seed: 9, openingPlies: 2 });
    expect(r.a).toBe("alphabeta-2");
    expect(r.b).toBe("random");
    expect(r.games.map((g) => g.aFirst)).toEqual([true, false, true, false, true, false]);
    for (let k = 0; k < 6; k += 2) expect(r.games[k]!.moves.slice(0, 2)).toEqual(r.games[k + 1]!.moves.slice(0, 2));
    expect(r.games[0]!.moves.slice(0, 2)).not.toEqual(r.games[2]!.moves.slice(0, 2));
    for (const g of r.games) {
      const end = playMoves(game, g.moves);
      expect(game.outcome(end)).toBe(g.outcome);
      expect(g.scoreA).toBe(((g.aFirst ? g.outcome : -g.outcome) + 1) / 2);
    }
    expect(r.wins + r.draws + r.losses).toBe(6);
    expect(r.score).toBe((r.wins + r.draws / 2) / 6);
  });

  it("refuses an agent's illegal move", async () => {
    const cheater: Agent<ConnectFourState> = { name: "cheater", selectMoves: (states) => Promise.resolve(states.map(() => 9)) };
    await expect(playMatch(game, cheater, randomAgent(game, 1), { games: 2, seed: 1 })).rejects.toThrow(/cheater chose illegal move 9/);
  });

  it("search and policy agents play legal games; the searching agent beats the raw uniform policy", async () => {
    const uniform = uniformEvaluator(game);
    const searcher = mctsAgent(game, uniform, "uniform-mcts", { mcts: { simulations: 64 } });
    const raw = policyAgent(game, uniform, "uniform-policy");
    const r = await playMatch(game, searcher, raw, { games: 10, seed: 4 });
    expect(r.score).toBeGreaterThan(0.7);
  });
});
