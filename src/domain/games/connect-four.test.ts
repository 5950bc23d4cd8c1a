import { describe, expect, it } from "vitest";
import { createRng } from "../../engine/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { CONNECT_FOUR_TOKENS, createConnectFour, type ConnectFour, type ConnectFourState } from "./connect-four.js";
import { mapPolicy, parseMoves, playMoves } from "./game.js";

const game = createConnectFour();
const play = (moves: string, g: ConnectFour = game): ConnectFourState => playMoves(g, parseMoves(g, moves));
const board = (s: ConnectFourState, g: ConnectFour = game): string[] => g.stateText(s).split("/");

/** Independent line finder: scans every cell in every direction (no incremental bookkeeping). */
function naiveWinner(g: ConnectFour, s: ConnectFourState): 0 | 1 | 2 {
  const at = (r: number, c: number): number => (r >= 0 && r < g.rows && c >= 0 && c < g.cols ? (s.board[r * g.cols + c] as number) : -1);
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const v = at(r, c);
      if (v <= 0) continue;
      for (const [dr, dc] of [
        [0, 1],
        [1, 0],
        [1, 1],
        [1, -1],
      ] as const) {
        let k = 1;
        while (k < g.connect && at(r + dr * k, c + dc * k) === v) k++;
        if (k === g.connect) return v as 1 | 2;
      }
    }
  }
  return 0;
}

function expectCode(f: () => unknown, code: Code, message: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AutodidactError);
    expect((e as AutodidactError).code).toBe(code);
    expect((e as AutodidactError).message).toMatch(message);
    return;
  }
  throw new Error("expected an error");
}

describe("Connect Four rules on hand-checked positions", () => {
  it("a row of four on the bottom wins for the first player", () => {
    const s = play("1122334");
    expect(board(s).slice(4)).toEqual(["ooo....", "xxxx..."]);
    expect(game.isTerminal(s)).toBe(true);
    expect(game.outcome(s)).toBe(1);
    // The player to move (o) has lost.
    expect(game.toMove(s)).toBe(1);
    expect(game.outcomeForToMove(s)).toBe(-1);
    expect(game.legalMoves(s)).toEqual([]);
    // Three in a row is not yet a win.
    expect(game.outcome(play("112233"))).toBeNull();
  });

  it("a column of four wins, and the second player can win too", () => {
    const s = play("1212121");
    expect(board(s).slice(2)).toEqual(["x......", "xo.....", "xo.....", "xo....."]);
    expect(game.outcome(s)).toBe(1);
    const o = play("71212121");
    expect(board(o).slice(2)).toEqual(["o......", "ox.....", "ox.....", "ox....x"]);
    expect(game.outcome(o)).toBe(-1);
    expect(game.toMove(o)).toBe(0);
    expect(game.outcomeForToMove(o)).toBe(-1);
  });

  it("both diagonals win", () => {
    const up = play("12234334744");
    expect(board(up).slice(2)).toEqual(["...x...", "..xo...", ".xoo...", "xoox..x"]);
    expect(game.outcome(up)).toBe(1);
    expect(game.outcome(play("1223433474"))).toBeNull();
    const down = play("76654554144");
    expect(board(down).slice(2)).toEqual(["...x...", "...ox..", "...oox.", "x..xoox"]);
    expect(game.outcome(down)).toBe(1);
  });

  it("a full board without a line is a draw", () => {
    const s = play("347565311355762544356643327467177426111222");
    expect(board(s)).toEqual(["xoxooox", "oxoooxo", "xoxxooo", "xxooxxx", "xoxxoox", "oxxooxx"]);
    expect(naiveWinner(game, s)).toBe(0);
    expect(game.isTerminal(s)).toBe(true);
    expect(game.outcome(s)).toBe(0);
    expect(game.outcomeForToMove(s)).toBe(0);
    expect(game.legalMoves(s)).toEqual([]);
  });

  it("refuses illegal moves with clear errors", () => {
    expectCode(() => game.apply(game.initial(), 7), Code.InvalidArgument, /move 7 is not a column \(columns 1\.\.7/);
    expectCode(() => game.apply(game.initial(), -1), Code.InvalidArgument, /not a column/);
    expectCode(() => game.apply(game.initial(), 2.5), Code.InvalidArgument, /not a column/);
    const full = play("111111");
    expect(game.isLegal(full, 0)).toBe(false);
    expect(game.legalMoves(full)).toEqual([1, 2, 3, 4, 5, 6]);
    expectCode(() => game.apply(full, 0), Code.InvalidArgument, /column 1 is full/);
    expectCode(() => game.apply(play("1122334"), 5), Code.InvalidArgument, /the game is over/);
    expectCode(() => game.parseMove("8"), Code.InvalidArgument, /"8" is not a column 1\.\.7/);
    expectCode(() => game.parseMove("x"), Code.InvalidArgument, /not a column/);
  });

  it("reads and writes positions as text and rejects impossible ones", () => {
    const s = play("44355");
    const text = game.stateText(s);
    expect(text).toBe("......./......./......./......./...ox../..xxo..");
    const back = game.parseState(text);
    expect(game.stateText(back)).toBe(text);
    expect(back.ply).toBe(5);
    expect(Array.from(back.heights)).toEqual(Array.from(s.heights));
    expect(game.toMove(back)).toBe(1);
    expect(game.parseState(game.stateText(play("1122334"))).winner).toBe(1);
    expectCode(() => game.parseState("......./......./......./......./...x.../......."), Code.InvalidArgument, /floats above an empty cell/);
    expectCode(() => game.parseState("......./......./......./......./......./xx....."), Code.InvalidArgument, /2 x stones and 0 o stones/);
    expectCode(() => game.parseState("......./......./......./......./......./"), Code.InvalidArgument, /row 6 from the top has 0 cells/);
    expectCode(() => game.parseState("......./......./......./......./......./...z..."), Code.InvalidArgument, /unknown cell/);
    expectCode(() => game.parseState("......./......./......./......./oooo.../xxxx..."), Code.InvalidArgument, /both players have a line/);
    expectCode(() => game.parseState("......./......./......./......./ooo..../xxxx.o."), Code.InvalidArgument, /x has a line but o has moved since/);
  });

  it("finds every line the independent scanner finds, over random games on three board sizes", () => {
    for (const g of [game, createConnectFour({ rows: 5, cols: 6 }), createConnectFour({ rows: 4, cols: 5 })]) {
      const rng = createRng(`lines-${g.name}`);
      const seen = { 0: 0, 1: 0, [-1]: 0 } as Record<number, number>;
      for (let k = 0; k < 300; k++) {
        let s = g.initial();
        while (!g.isTerminal(s)) {
          // Before the end nobody has a line.
          expect(naiveWinner(g, s)).toBe(0);
          const legal = g.legalMoves(s);
          s = g.apply(s, legal[rng.int(legal.length)]!);
        }
        const w = naiveWinner(g, s);
        expect(g.outcome(s)).toBe(w === 1 ? 1 : w === 2 ? -1 : 0);
        seen[g.outcome(s)!]!++;
      }
      expect(seen[1]).toBeGreaterThan(0);
      expect(seen[-1]).toBeGreaterThan(0);
    }
  });
});

describe("Connect Four encoding and symmetry", () => {
  it("encodes cells from the point of view of the player to move, then whose turn it is", () => {
    const s = play("4");
    const t = game.encode(s);
    expect(t.length).toBe(game.tokens.length);
    expect(t.length).toBe(43);
    // o to move: x's stone in the middle of the bottom row is "theirs".
    expect(t[3]).toBe(CONNECT_FOUR_TOKENS.theirs);
    expect(t[42]).toBe(CONNECT_FOUR_TOKENS.secondToMove);
    expect(Array.from(t.subarray(0, 42)).filter((v) => v !== CONNECT_FOUR_TOKENS.empty)).toEqual([CONNECT_FOUR_TOKENS.theirs]);
    const s2 = game.apply(s, 3);
    const t2 = game.encode(s2);
    expect(t2[3]).toBe(CONNECT_FOUR_TOKENS.mine);
    expect(t2[10]).toBe(CONNECT_FOUR_TOKENS.theirs);
    expect(t2[42]).toBe(CONNECT_FOUR_TOKENS.firstToMove);
    expect(game.tokens.vocabulary[CONNECT_FOUR_TOKENS.mine]).toBe("mine");
  });

  it("the mirror maps play onto play: mirror(apply(s, m)) = apply(mirror(s), mirror(m)), outcomes kept", () => {
    const mirror = game.symmetries[1]!;
    expect(game.symmetries[0]!.name).toBe("identity");
    expect(mirror.name).toBe("mirror");
    const rng = createRng("mirror");
    for (let k = 0; k < 50; k++) {
      let s = game.initial();
      while (!game.isTerminal(s)) {
        const legal = game.legalMoves(s);
        const m = legal[rng.int(legal.length)]!;
        const next = game.apply(s, m);
        const viaMirror = game.apply(mirror.state(s), mirror.move(m));
        expect(game.stateText(viaMirror)).toBe(game.stateText(mirror.state(next)));
        expect(game.outcome(viaMirror)).toBe(game.outcome(next));
        expect(game.heuristic(mirror.state(s))).toBe(game.heuristic(s));
        s = next;
      }
    }
    expect(board(mirror.state(play("1122334"))).slice(4)).toEqual(["....ooo", "...xxxx"]);
    expect(Array.from(mapPolicy(mirror, [0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0]))).toEqual(Array.from(Float32Array.from([0, 0.05, 0.05, 0.1, 0.1, 0.2, 0.5])));
  });

  it("the heuristic prefers the mover's open three and the centre", () => {
    const xThree = play("112237");
    expect(board(xThree).slice(4)).toEqual(["oo.....", "xxx...o"]);
    // x to move with an open three on the bottom row: good for x.
    expect(game.heuristic(xThree)).toBeGreaterThan(0);
    // The same stones seen by o (after x passes a harmless stone elsewhere) are bad for o.
    expect(game.heuristic(game.apply(xThree, 6))).toBeLessThan(0);
    // o to move after x took the centre: bad for o; worse than after x took an edge.
    expect(game.heuristic(play("4"))).toBeLessThan(0);
    expect(game.heuristic(play("1"))).toBeGreaterThan(game.heuristic(play("4")));
  });

  it("variants are named by their size and validated", () => {
    expect(createConnectFour({ rows: 5, cols: 6 }).name).toBe("connect4-5x6");
    expect(createConnectFour({ rows: 4, cols: 5, connect: 3 }).name).toBe("connect3-4x5");
    expect(() => createConnectFour({ cols: 10 })).toThrow(/cols must be an integer in 2\.\.9/);
    expect(() => createConnectFour({ rows: 3, cols: 3, connect: 4 })).toThrow(/does not fit/);
  });
});
