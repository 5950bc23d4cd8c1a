import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Rng } from "../../engine/index.js";
import { mapPolicy, type Game } from "./game.js";
import type { GameRecord } from "./self-play.js";

/** One training position: the network's input and its two targets. */
export interface TrainingExample {
  /** {@link Game.encode} of the position. */
  readonly tokens: Int32Array;
  /** 1 for legal moves (the policy is a softmax over these only). */
  readonly legal: Uint8Array;
  /** The search's visit distribution (zero outside `legal`). */
  readonly policy: Float32Array;
  /** Final outcome for the player to move: +1 won, 0 draw, −1 lost. */
  readonly value: number;
}

/**
 * The training positions of a game record, replayed move by move; with `symmetries`, each
 * position also appears under every symmetry of the game (board and visit distribution mapped
 * together). Throws InvalidArgument if the record is not a legal game of `game`.
 */
export function examplesFromRecord<S>(game: Game<S>, record: GameRecord, options: { symmetries?: boolean } = {}): TrainingExample[] {
  if (record.game !== game.name) throw new AutodidactError(`record of ${record.game} given to ${game.name}`, Code.InvalidArgument);
  if (record.policies.length !== record.moves.length) throw new AutodidactError(`record has ${record.moves.length} moves but ${record.policies.length} policies`, Code.InvalidArgument);
  const syms = options.symmetries ? game.symmetries : game.symmetries.slice(0, 1);
  const out: TrainingExample[] = [];
  let s = game.initial();
  record.moves.forEach((move, ply) => {
    const forFirst = record.outcome;
    const value = game.toMove(s) === 0 ? forFirst : -forFirst;
    const policy = record.policies[ply]!;
    if (policy.length !== game.numMoves) throw new AutodidactError(`policy of ply ${ply} has ${policy.length} entries, expected ${game.numMoves}`, Code.InvalidArgument);
    for (const sym of syms) {
      const t = sym.state(s);
      const legal = new Uint8Array(game.numMoves);
      for (const m of game.legalMoves(t)) legal[m] = 1;
      out.push({ tokens: game.encode(t), legal, policy: mapPolicy(sym, policy), value });
    }
    s = game.apply(s, move);
  });
  if (game.outcome(s) !== record.outcome) throw new AutodidactError(`record's outcome ${record.outcome} does not match its moves`, Code.InvalidArgument);
  return out;
}

/**
 * The trainer's window of recent self-play: the positions of the last `capacity` games (oldest
 * games drop out first, as in Leela Zero's and KataGo's windows), sampled uniformly.
 */
export class ReplayWindow<S> {
  /** Positions of the games in the window, oldest first. */
  private readonly examples: TrainingExample[] = [];
  /** Positions per game, oldest first. */
  private readonly lengths: number[] = [];

  constructor(
    private readonly game: Game<S>,
    /** Games kept. */
    readonly capacity: number,
    private readonly symmetries = true,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new AutodidactError(`window capacity must be a positive integer, got ${capacity}`, Code.InvalidArgument);
  }

  /** Adds games, dropping the oldest beyond capacity. */
  add(records: readonly GameRecord[]): void {
    for (const r of records) {
      const ex = examplesFromRecord(this.game, r, { symmetries: this.symmetries });
      this.examples.push(...ex);
      this.lengths.push(ex.length);
    }
    const drop = this.lengths.length - this.capacity;
    if (drop > 0) this.examples.splice(0, this.lengths.splice(0, drop).reduce((a, b) => a + b, 0));
  }

  /** Positions in the window (symmetric copies included). */
  get positions(): number {
    return this.examples.length;
  }

  /** Games in the window. */
  get size(): number {
    return this.lengths.length;
  }

  /** `n` positions drawn uniformly with replacement. */
  sample(rng: Rng, n: number): TrainingExample[] {
    if (this.examples.length === 0) throw new AutodidactError("the replay window is empty", Code.FailedPrecondition);
    return Array.from({ length: n }, () => this.examples[rng.int(this.examples.length)]!);
  }
}
