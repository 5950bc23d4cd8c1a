/**
 * The shape every built-in game has: two players alternate on one board, everything is visible,
 * and a finished game is a win for one side or a draw. Search (PUCT, alpha-beta), self-play,
 * matches and the network's encoding are written against this interface only, so a second game
 * is one new file, not a change to them.
 *
 * Moves are integers in [0, numMoves): the network's policy head has one logit per move, and a
 * visit distribution is a plain array indexed by move.
 */

/** 0 = the player who moves first, 1 = the other one. */
export type Player = 0 | 1;

/** Absolute result of a finished game: +1 the first player won, −1 the second won, 0 draw. */
export type Outcome = 1 | 0 | -1;

/**
 * A symmetry of the game: a board transformation that maps legal play onto legal play with the
 * same outcome (Connect Four's left-right mirror). Training data is multiplied through them.
 */
export interface Symmetry<S> {
  readonly name: string;
  /** The transformed position. */
  state(s: S): S;
  /** Where a move lands under the transformation. */
  move(m: number): number;
}

/** How a position becomes the engine's input: a fixed-length token sequence over a small vocabulary. */
export interface TokenEncoding {
  /** Number of tokens of every encoded position. */
  readonly length: number;
  /** Token names by id; ids are the positions in this list. */
  readonly vocabulary: readonly string[];
  /** When the first rows×cols tokens are a board (row-major): lets a network convolve over it. */
  readonly grid?: { readonly rows: number; readonly cols: number };
}

/** A two-player, zero-sum, perfect-information game with a fixed move space. */
export interface Game<S> {
  /** Stable name with the variant, e.g. `connect4-6x7`; records and checkpoints carry it. */
  readonly name: string;
  /** Size of the move space (the policy head's width). */
  readonly numMoves: number;
  readonly tokens: TokenEncoding;
  /** The board transformations that preserve play; the first is always the identity. */
  readonly symmetries: readonly Symmetry<S>[];
  /** The start position. */
  initial(): S;
  /** Who moves in `s` (meaningless but defined when the game is over). */
  toMove(s: S): Player;
  /** Number of moves played to reach `s`. */
  ply(s: S): number;
  /** Legal moves in ascending order; empty when the game is over. */
  legalMoves(s: S): number[];
  isLegal(s: S, move: number): boolean;
  /** The position after `move`; throws InvalidArgument naming the reason when it is illegal. */
  apply(s: S, move: number): S;
  isTerminal(s: S): boolean;
  /** Absolute outcome of a finished game; null while it runs. */
  outcome(s: S): Outcome | null;
  /**
   * Outcome of a finished game for the player to move there (who did not make the last move):
   * −1 if the opponent just won, 0 for a draw; null while it runs.
   */
  outcomeForToMove(s: S): Outcome | null;
  /** Tokens of the position from the point of view of the player to move (see {@link tokens}). */
  encode(s: S): Int32Array;
  /** A compact, human-readable text of the position; {@link parseState} reads it back. */
  stateText(s: S): string;
  /** Reads {@link stateText}'s form; InvalidArgument when the text is no reachable-looking position. */
  parseState(text: string): S;
  /** Text of one move (Connect Four: the 1-based column). */
  moveText(m: number): string;
  /** Reads {@link moveText}'s form; InvalidArgument for anything else. */
  parseMove(text: string): number;
  /** A string equal for equal positions (caches, repetition checks). */
  key(s: S): string;
  /**
   * A static evaluation for the player to move (positive = good for them), for fixed-depth
   * alpha-beta opponents. Not a probability; only its order matters. Terminal positions are
   * scored by the search itself.
   */
  heuristic(s: S): number;
}

/** A policy over the full move space carried through a symmetry: out[sym.move(m)] = policy[m]. */
export function mapPolicy<S>(sym: Symmetry<S>, policy: ArrayLike<number>): Float32Array {
  const out = new Float32Array(policy.length);
  for (let m = 0; m < policy.length; m++) out[sym.move(m)] = policy[m] as number;
  return out;
}

/** The state after playing `moves` from the start (each checked like {@link Game.apply}). */
export function playMoves<S>(game: Game<S>, moves: readonly number[], from: S = game.initial()): S {
  let s = from;
  for (const m of moves) s = game.apply(s, m);
  return s;
}

/** Moves written as text (Connect Four: "4453" = columns 4, 4, 5, 3), parsed move by move. */
export function parseMoves<S>(game: Game<S>, text: string): number[] {
  const parts = game.numMoves <= 9 ? [...text.replace(/[\s,]/g, "")] : text.split(/[\s,]+/).filter((p) => p !== "");
  return parts.map((p) => game.parseMove(p));
}

/** The other player. */
export function opponent(p: Player): Player {
  return p === 0 ? 1 : 0;
}
