import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GameRecordSchema } from "../../gen/autodidact/v1/game_pb.js";
import { arenaDecision, DEFAULT_ARENA_POLICY } from "./arena.js";
import { createConnectFour } from "./connect-four.js";
import { getGamePack, isGameTask } from "./game-pack.js";
import { checkGameRecord, gameRecordFromProto, gameRecordToProto, movesText } from "./game-record.js";
import { uniformEvaluator } from "./evaluator.js";
import { selfPlay, type GameRecord } from "./self-play.js";

const game = createConnectFour();

async function records(n: number): Promise<GameRecord[]> {
  const { records: rs } = await selfPlay(game, uniformEvaluator(game), { games: n, mcts: { simulations: 16 }, seed: "record-check" });
  return rs;
}

describe("game records", () => {
  it("accepts real self-play records and survives the wire", async () => {
    for (const r of await records(4)) {
      expect(checkGameRecord(game, r)).toEqual({ ok: true });
      const back = gameRecordFromProto(fromBinary(GameRecordSchema, toBinary(GameRecordSchema, gameRecordToProto(r, 16))));
      expect(back.moves).toEqual(r.moves);
      expect(back.outcome).toBe(r.outcome);
      expect(checkGameRecord(game, back)).toEqual({ ok: true });
    }
  });

  it("rejects illegal moves, wrong outcomes, bad visit distributions, unfinished and degenerate games", async () => {
    const [r] = await records(1);
    const bad = (patch: Partial<GameRecord>): string => {
      const c = checkGameRecord(game, { ...r!, ...patch });
      return c.ok ? "ok" : c.reason;
    };
    expect(bad({ outcome: r!.outcome === 1 ? -1 : 1 })).toMatch(/outcome/);
    expect(bad({ moves: [...r!.moves.slice(0, -1)], policies: r!.policies.slice(0, -1), rootValues: r!.rootValues.slice(0, -1) })).toMatch(/not over/);
    expect(bad({ moves: [9, ...r!.moves.slice(1)] })).toMatch(/illegal/);
    expect(bad({ policies: r!.policies.map((p, i) => (i === 0 ? p.map((x) => x * 2) : p)) })).toMatch(/sums to/);
    expect(bad({ policies: r!.policies.slice(1) })).toMatch(/visit distributions/);
    expect(bad({ game: "connect4-5x6" })).toMatch(/expected connect4-6x7/);
    const oneHot = r!.policies.map((_, i) => Array.from({ length: 7 }, (_, m) => (m === r!.moves[i] ? 1 : 0)));
    expect(bad({ policies: oneHot })).toMatch(/degenerate/);
    // A column filled to the top and played again.
    const full = [0, 0, 0, 0, 0, 0, 0];
    expect(checkGameRecord(game, { game: game.name, moves: full, policies: full.map(() => [1, 0, 0, 0, 0, 0, 0]), rootValues: [], outcome: 0 })).toMatchObject({ ok: false });
    expect(movesText(game, [3, 3, 4])).toBe("445");
  });

  it("knows the built-in game packs", () => {
    expect(isGameTask("connect4")).toBe(true);
    expect(isGameTask("addition")).toBe(false);
    expect(getGamePack("connect4").game.name).toBe("connect4-6x7");
    expect(() => getGamePack("chess")).toThrow(/unknown game/);
  });

  it("the no-gate rule plays its games and then promotes whatever the score", () => {
    const policy = { ...DEFAULT_ARENA_POLICY, rule: "none" as const, maxGames: 10 };
    expect(arenaDecision(policy, { wins: 0, draws: 0, losses: 9 }).verdict).toBe("continue");
    expect(arenaDecision(policy, { wins: 0, draws: 0, losses: 10 }).verdict).toBe("accept");
  });
});
