import { afterAll, describe, expect, it } from "vitest";
import { createModelWorker, createRng, initPolicyValueParams, openPolicyValueNetwork, type PolicyValueNetwork } from "../../engine/index.js";
import { createConnectFour } from "./connect-four.js";
import { uniformEvaluator } from "./evaluator.js";
import { mapPolicy, parseMoves, playMoves } from "./game.js";
import { NetworkEvaluator, policyValueConfigFor, toPolicyValueBatch } from "./network.js";
import { examplesFromRecord, ReplayWindow } from "./replay.js";
import { selfPlay, type GameRecord } from "./self-play.js";

const game = createConnectFour();
const worker = createModelWorker({ name: "games-test" });
afterAll(async () => {
  await worker.close();
});

/** A hand-made record: x wins on the bottom row in 7 plies, with one-hot "visit" targets on the moves played. */
function winRecord(): GameRecord {
  const moves = parseMoves(game, "1122334");
  return { game: game.name, moves, policies: moves.map((m) => Array.from({ length: 7 }, (_, k) => (k === m ? 1 : 0))), rootValues: moves.map(() => 0), outcome: 1 };
}

describe("training examples from game records", () => {
  it("give each position the final outcome from its mover's point of view, and its visit target", () => {
    const ex = examplesFromRecord(game, winRecord());
    expect(ex.map((e) => e.value)).toEqual([1, -1, 1, -1, 1, -1, 1]);
    expect(Array.from(ex[0]!.tokens)).toEqual(Array.from(game.encode(game.initial())));
    expect(Array.from(ex[3]!.tokens)).toEqual(Array.from(game.encode(playMoves(game, parseMoves(game, "112")))));
    expect(ex[6]!.policy[3]).toBe(1);
    expect(Array.from(ex[0]!.legal)).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  it("add the mirror image of every position with its mirrored target", () => {
    const ex = examplesFromRecord(game, winRecord(), { symmetries: true });
    expect(ex.length).toBe(14);
    const mirror = game.symmetries[1]!;
    const s = playMoves(game, parseMoves(game, "112"));
    expect(Array.from(ex[7]!.tokens)).toEqual(Array.from(game.encode(mirror.state(s))));
    expect(Array.from(ex[7]!.policy)).toEqual(Array.from(mapPolicy(mirror, winRecord().policies[3]!)));
    expect(ex[7]!.policy[6 - 1]).toBe(1);
    expect(ex[7]!.value).toBe(-1);
  });

  it("refuse records that do not replay", () => {
    expect(() => examplesFromRecord(game, { ...winRecord(), outcome: -1 })).toThrow(/does not match its moves/);
    expect(() => examplesFromRecord(game, { ...winRecord(), game: "chess" })).toThrow(/record of chess/);
    expect(() => examplesFromRecord(game, { ...winRecord(), moves: [0, 0, 0, 0, 0, 0, 0] })).toThrow(/column 1 is full/);
  });

  it("keep the last `capacity` games in the window and sample from them", async () => {
    const { records } = await selfPlay(game, uniformEvaluator(game), { games: 5, mcts: { simulations: 8 }, seed: 2 });
    const w = new ReplayWindow(game, 3);
    w.add(records.slice(0, 2));
    expect(w.size).toBe(2);
    w.add(records.slice(2));
    expect(w.size).toBe(3);
    const kept = records.slice(2).reduce((n, r) => n + 2 * r.moves.length, 0);
    expect(w.positions).toBe(kept);
    const batch = w.sample(createRng("s"), 50);
    expect(batch.length).toBe(50);
    const allowed = new Set(records.slice(2).flatMap((r) => examplesFromRecord(game, r, { symmetries: true }).map((e) => Array.from(e.tokens).join(""))));
    for (const e of batch) expect(allowed.has(Array.from(e.tokens).join(""))).toBe(true);
    const pv = toPolicyValueBatch(batch);
    expect(pv.batchSize).toBe(50);
    expect(pv.tokens.length).toBe(50 * 43);
    expect(pv.policy.length).toBe(50 * 7);
  });
});

describe("network evaluator", () => {
  let net: PolicyValueNetwork | undefined;
  afterAll(async () => {
    await net?.release();
  });
  it("answers a batch in one run with probabilities over legal moves only, and caches by position", async () => {
    const config = policyValueConfigFor(game, { hidden: 16, blocks: 1, valueHidden: 8 });
    net = await openPolicyValueNetwork(worker, config, initPolicyValueParams(config, 3));
    const ev = new NetworkEvaluator(game, net, { cacheSize: 4 });
    const states = ["", "111111", "44", "1122334".slice(0, 6)].map((m) => playMoves(game, parseMoves(game, m)));
    const out = await ev.evaluate(states);
    expect(out.length).toBe(4);
    for (const [k, e] of out.entries()) {
      expect(Math.abs(e.value)).toBeLessThan(1);
      let sum = 0;
      for (let m = 0; m < 7; m++) {
        if (!game.isLegal(states[k]!, m)) expect(e.policy[m]).toBe(0);
        else expect(e.policy[m]).toBeGreaterThan(0);
        sum += e.policy[m]!;
      }
      expect(sum).toBeCloseTo(1, 5);
    }
    const again = await ev.evaluate([states[2]!, states[0]!]);
    expect(ev.hits).toBe(2);
    expect(again[0]).toBe(out[2]);
    expect(() => new NetworkEvaluator(createConnectFour({ rows: 5, cols: 6 }), net!)).toThrow(/does not fit connect4-5x6/);
  });
});
