import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Game, Outcome, Player, Symmetry, TokenEncoding } from "./game.js";

/** Board size and line length of a Connect Four variant. */
export interface ConnectFourOptions {
  /** Height of the board. Default 6. */
  readonly rows?: number;
  /** Width of the board (= number of moves). Default 7, at most 9 (one digit per move). */
  readonly cols?: number;
  /** Stones in a line that win. Default 4. */
  readonly connect?: number;
}

/**
 * One Connect Four position. Immutable: `apply` returns a new one. Cells are row-major with row 0
 * at the bottom; 0 = empty, 1 = a stone of the first player, 2 = of the second.
 */
export class ConnectFourState {
  constructor(
    readonly board: Int8Array,
    /** Stones per column. */
    readonly heights: Int8Array,
    readonly ply: number,
    /** 0 while nobody has a line, else the cell value (1 or 2) of the player who made one. */
    readonly winner: 0 | 1 | 2,
  ) {}
}

/** Cell characters of the text form: empty, first player, second player. */
const CELL_CHARS = [".", "x", "o"] as const;

/** Token ids of {@link ConnectFour.encode}. */
export const CONNECT_FOUR_TOKENS = { empty: 0, mine: 1, theirs: 2, firstToMove: 3, secondToMove: 4 } as const;

/**
 * Connect Four on a rows×cols board (default 6×7): players drop stones into columns; the first to
 * line up `connect` stones horizontally, vertically or diagonally wins; a full board is a draw.
 * Moves are columns 0..cols−1 (text: 1-based digits, "4" = the middle column of 7).
 */
export class ConnectFour implements Game<ConnectFourState> {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly connect: number;
  readonly numMoves: number;
  readonly tokens: TokenEncoding;
  readonly symmetries: readonly Symmetry<ConnectFourState>[];
  /** Every line of `connect` cells on the board, flattened (`connect` cell indices per window). */
  private readonly windows: Int32Array;
  /**
   * Bonus of a stone per column for the heuristic (distance from the nearer edge: central columns
   * take part in more lines). Integers, so mirrored positions score exactly the same.
   */
  private readonly columnWeight: Int32Array;

  constructor(options: ConnectFourOptions = {}) {
    const rows = options.rows ?? 6;
    const cols = options.cols ?? 7;
    const connect = options.connect ?? 4;
    for (const [k, v, lo, hi] of [
      ["rows", rows, 2, 16],
      ["cols", cols, 2, 9],
      ["connect", connect, 2, 16],
    ] as const) {
      if (!Number.isInteger(v) || v < lo || v > hi) throw new AutodidactError(`Connect Four ${k} must be an integer in ${lo}..${hi}, got ${v}`, Code.InvalidArgument);
    }
    if (connect > Math.max(rows, cols)) throw new AutodidactError(`Connect Four: a line of ${connect} does not fit a ${rows}x${cols} board`, Code.InvalidArgument);
    this.rows = rows;
    this.cols = cols;
    this.connect = connect;
    this.numMoves = cols;
    this.name = connect === 4 ? `connect4-${rows}x${cols}` : `connect${connect}-${rows}x${cols}`;
    this.tokens = { length: rows * cols + 1, vocabulary: ["empty", "mine", "theirs", "first-to-move", "second-to-move"], grid: { rows, cols } };
    this.windows = lineWindows(rows, cols, connect);
    this.columnWeight = Int32Array.from({ length: cols }, (_, c) => Math.min(c, cols - 1 - c));
    this.symmetries = [
      { name: "identity", state: (s) => s, move: (m) => m },
      { name: "mirror", state: (s) => this.mirror(s), move: (m) => cols - 1 - m },
    ];
  }

  initial(): ConnectFourState {
    return new ConnectFourState(new Int8Array(this.rows * this.cols), new Int8Array(this.cols), 0, 0);
  }

  toMove(s: ConnectFourState): Player {
    return (s.ply & 1) as Player;
  }

  ply(s: ConnectFourState): number {
    return s.ply;
  }

  isTerminal(s: ConnectFourState): boolean {
    return s.winner !== 0 || s.ply === this.rows * this.cols;
  }

  legalMoves(s: ConnectFourState): number[] {
    if (this.isTerminal(s)) return [];
    const out: number[] = [];
    for (let c = 0; c < this.cols; c++) if ((s.heights[c] as number) < this.rows) out.push(c);
    return out;
  }

  isLegal(s: ConnectFourState, move: number): boolean {
    return Number.isInteger(move) && move >= 0 && move < this.cols && (s.heights[move] as number) < this.rows && !this.isTerminal(s);
  }

  apply(s: ConnectFourState, move: number): ConnectFourState {
    if (!Number.isInteger(move) || move < 0 || move >= this.cols) {
      throw new AutodidactError(`${this.name}: move ${move} is not a column (columns 1..${this.cols}, moves 0..${this.cols - 1})`, Code.InvalidArgument);
    }
    if (this.isTerminal(s)) throw new AutodidactError(`${this.name}: the game is over, no move is legal`, Code.InvalidArgument);
    const row = s.heights[move] as number;
    if (row >= this.rows) throw new AutodidactError(`${this.name}: column ${move + 1} is full`, Code.InvalidArgument);
    const board = s.board.slice();
    const heights = s.heights.slice();
    const stone = ((s.ply & 1) + 1) as 1 | 2;
    board[row * this.cols + move] = stone;
    heights[move] = row + 1;
    const won = this.linesThrough(board, row, move, stone) >= this.connect;
    return new ConnectFourState(board, heights, s.ply + 1, won ? stone : 0);
  }

  outcome(s: ConnectFourState): Outcome | null {
    if (s.winner === 1) return 1;
    if (s.winner === 2) return -1;
    return s.ply === this.rows * this.cols ? 0 : null;
  }

  outcomeForToMove(s: ConnectFourState): Outcome | null {
    const o = this.outcome(s);
    if (o === null || o === 0) return o;
    return this.toMove(s) === 0 ? o : (-o as Outcome);
  }

  encode(s: ConnectFourState): Int32Array {
    const n = this.rows * this.cols;
    const out = new Int32Array(n + 1);
    const mine = ((s.ply & 1) + 1) as 1 | 2;
    for (let i = 0; i < n; i++) {
      const v = s.board[i] as number;
      out[i] = v === 0 ? CONNECT_FOUR_TOKENS.empty : v === mine ? CONNECT_FOUR_TOKENS.mine : CONNECT_FOUR_TOKENS.theirs;
    }
    out[n] = mine === 1 ? CONNECT_FOUR_TOKENS.firstToMove : CONNECT_FOUR_TOKENS.secondToMove;
    return out;
  }

  /** Rows from top to bottom joined by "/", cells "." empty, "x" first player, "o" second. */
  stateText(s: ConnectFourState): string {
    const lines: string[] = [];
    for (let r = this.rows - 1; r >= 0; r--) {
      let line = "";
      for (let c = 0; c < this.cols; c++) line += CELL_CHARS[s.board[r * this.cols + c] as 0 | 1 | 2];
      lines.push(line);
    }
    return lines.join("/");
  }

  parseState(text: string): ConnectFourState {
    const bad = (why: string): AutodidactError => new AutodidactError(`${this.name}: bad position "${text}": ${why}`, Code.InvalidArgument);
    const lines = text.trim().split("/");
    if (lines.length !== this.rows) throw bad(`${lines.length} rows, expected ${this.rows}`);
    const board = new Int8Array(this.rows * this.cols);
    lines.forEach((line, k) => {
      if (line.length !== this.cols) throw bad(`row ${k + 1} from the top has ${line.length} cells, expected ${this.cols}`);
      const r = this.rows - 1 - k;
      for (let c = 0; c < this.cols; c++) {
        const v = CELL_CHARS.indexOf(line[c]!.toLowerCase() as (typeof CELL_CHARS)[number]);
        if (v < 0) throw bad(`unknown cell "${line[c]}" (use . x o)`);
        board[r * this.cols + c] = v;
      }
    });
    const heights = new Int8Array(this.cols);
    let first = 0;
    let second = 0;
    for (let c = 0; c < this.cols; c++) {
      for (let r = 0; r < this.rows; r++) {
        const v = board[r * this.cols + c] as number;
        if (v === 0) continue;
        if (r > 0 && board[(r - 1) * this.cols + c] === 0) throw bad(`a stone floats above an empty cell in column ${c + 1}`);
        heights[c] = r + 1;
        if (v === 1) first++;
        else second++;
      }
    }
    if (first !== second && first !== second + 1) throw bad(`${first} x stones and ${second} o stones (x moves first)`);
    const lines1 = this.countLines(board, 1);
    const lines2 = this.countLines(board, 2);
    if (lines1 > 0 && lines2 > 0) throw bad("both players have a line");
    if (lines1 > 0 && first !== second + 1) throw bad("x has a line but o has moved since");
    if (lines2 > 0 && first !== second) throw bad("o has a line but x has moved since");
    return new ConnectFourState(board, heights, first + second, lines1 > 0 ? 1 : lines2 > 0 ? 2 : 0);
  }

  moveText(m: number): string {
    return String(m + 1);
  }

  parseMove(text: string): number {
    const t = text.trim();
    if (!/^[1-9]$/.test(t) || Number(t) > this.cols) throw new AutodidactError(`${this.name}: "${text}" is not a column 1..${this.cols}`, Code.InvalidArgument);
    return Number(t) - 1;
  }

  key(s: ConnectFourState): string {
    return this.stateText(s);
  }

  /**
   * Sum over every line of `connect` cells that only one player occupies: 4^(k−1) for k of the
   * mover's stones, minus the same for the opponent's, plus per stone its column's distance from
   * the nearer edge. The classic hand-made Connect Four evaluation; integer-valued (mirror images
   * tie exactly) and fixed, so alpha-beta opponents never change.
   */
  heuristic(s: ConnectFourState): number {
    const mine = ((s.ply & 1) + 1) as 1 | 2;
    const w = this.windows;
    const k = this.connect;
    let score = 0;
    for (let i = 0; i < w.length; i += k) {
      let a = 0;
      let b = 0;
      for (let j = 0; j < k; j++) {
        const v = s.board[w[i + j] as number] as number;
        if (v === mine) a++;
        else if (v !== 0) b++;
      }
      if (a > 0 && b === 0) score += 4 ** (a - 1);
      else if (b > 0 && a === 0) score -= 4 ** (b - 1);
    }
    for (let i = 0; i < s.board.length; i++) {
      const v = s.board[i] as number;
      if (v === 0) continue;
      const cw = this.columnWeight[i % this.cols] as number;
      score += v === mine ? cw : -cw;
    }
    return score;
  }

  /** The left-right mirror image of a position. */
  mirror(s: ConnectFourState): ConnectFourState {
    const board = new Int8Array(s.board.length);
    const heights = new Int8Array(this.cols);
    for (let r = 0; r < this.rows; r++) for (let c = 0; c < this.cols; c++) board[r * this.cols + c] = s.board[r * this.cols + this.cols - 1 - c] as number;
    for (let c = 0; c < this.cols; c++) heights[c] = s.heights[this.cols - 1 - c] as number;
    return new ConnectFourState(board, heights, s.ply, s.winner);
  }

  /** Longest line of `stone` through (row, col) over the four directions. */
  private linesThrough(board: Int8Array, row: number, col: number, stone: number): number {
    let best = 0;
    for (const [dr, dc] of DIRECTIONS) {
      let n = 1;
      for (let r = row + dr, c = col + dc; r >= 0 && r < this.rows && c >= 0 && c < this.cols && board[r * this.cols + c] === stone; r += dr, c += dc) n++;
      for (let r = row - dr, c = col - dc; r >= 0 && r < this.rows && c >= 0 && c < this.cols && board[r * this.cols + c] === stone; r -= dr, c -= dc) n++;
      if (n > best) best = n;
    }
    return best;
  }

  /** Number of full lines of `stone` anywhere on the board. */
  private countLines(board: Int8Array, stone: number): number {
    let n = 0;
    const k = this.connect;
    for (let i = 0; i < this.windows.length; i += k) {
      let all = true;
      for (let j = 0; j < k && all; j++) all = board[this.windows[i + j] as number] === stone;
      if (all) n++;
    }
    return n;
  }
}

/** Right, up, up-right, up-left. */
const DIRECTIONS: readonly (readonly [number, number])[] = [
  [0, 1],
  [1, 0],
  [1, 1],
  [1, -1],
];

/** Cell indices of every horizontal, vertical and diagonal line of `k` cells. */
function lineWindows(rows: number, cols: number, k: number): Int32Array {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      for (const [dr, dc] of DIRECTIONS) {
        const er = r + dr * (k - 1);
        const ec = c + dc * (k - 1);
        if (er < 0 || er >= rows || ec < 0 || ec >= cols) continue;
        for (let j = 0; j < k; j++) out.push((r + dr * j) * cols + (c + dc * j));
      }
    }
  }
  return Int32Array.from(out);
}

/** A Connect Four variant (default: the standard 6×7 board, four in a line). */
export function createConnectFour(options: ConnectFourOptions = {}): ConnectFour {
  return new ConnectFour(options);
}
