import { create } from "@bufbuild/protobuf";
import { GameRecordSchema, MoveVisitsSchema, type GameRecord as GameRecordMessage } from "../../gen/autodidact/v1/game_pb.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Game, Outcome } from "./game.js";
import type { GameRecord } from "./self-play.js";

/** Result of {@link checkGameRecord}: the rules critic's verdict on one record. */
export type RecordCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** How far a visit distribution's sum may stray from 1 (float32 on the wire). */
const SUM_TOLERANCE = 1e-3;

/**
 * Replays a self-play record and checks everything the rules decide: the game is the expected one,
 * every move is legal and none follows the end, the game ended, the recorded outcome is the one the
 * moves produce, one visit distribution per move over the whole move space (finite, non-negative,
 * summing to 1, no mass on an illegal move, the played move visited), root values in [-1, 1]; and it
 * is not degenerate (a search that never spread its visits over two moves did not search). Pure.
 */
export function checkGameRecord<S>(game: Game<S>, r: GameRecord): RecordCheck {
  const fail = (reason: string): RecordCheck => ({ ok: false, reason });
  if (r.game !== game.name) return fail(`record of ${JSON.stringify(r.game)}, expected ${game.name}`);
  if (r.moves.length === 0) return fail("record has no moves");
  if (r.policies.length !== r.moves.length) return fail(`${r.moves.length} moves but ${r.policies.length} visit distributions`);
  if (r.rootValues.length !== 0 && r.rootValues.length !== r.moves.length) return fail(`${r.moves.length} moves but ${r.rootValues.length} root values`);
  let s = game.initial();
  let spread = false;
  let choices = false;
  for (let ply = 0; ply < r.moves.length; ply++) {
    const move = r.moves[ply]!;
    if (game.isTerminal(s)) return fail(`move ${ply + 1} is played after the game ended`);
    const legal = game.legalMoves(s);
    if (!Number.isInteger(move) || !game.isLegal(s, move)) return fail(`move ${ply + 1} (${move}) is illegal`);
    const visits = r.policies[ply]!;
    if (visits.length !== game.numMoves) return fail(`visit distribution of move ${ply + 1} has ${visits.length} entries, expected ${game.numMoves}`);
    let sum = 0;
    let positive = 0;
    for (let m = 0; m < visits.length; m++) {
      const p = visits[m]!;
      if (!Number.isFinite(p) || p < 0) return fail(`visit distribution of move ${ply + 1} has a bad entry ${p}`);
      if (p > 1e-6 && !legal.includes(m)) return fail(`visit distribution of move ${ply + 1} visits illegal move ${m}`);
      if (p > 1e-6) positive++;
      sum += p;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) return fail(`visit distribution of move ${ply + 1} sums to ${sum.toFixed(4)}`);
    if (!(visits[move]! > 0)) return fail(`move ${ply + 1} (${move}) was never visited by the search`);
    if (legal.length > 1) choices = true;
    if (positive > 1) spread = true;
    const v = r.rootValues[ply];
    if (v !== undefined && !(Number.isFinite(v) && v >= -1 - 1e-6 && v <= 1 + 1e-6)) return fail(`root value of move ${ply + 1} is ${v}`);
    s = game.apply(s, move);
  }
  const outcome = game.outcome(s);
  if (outcome === null) return fail(`the game is not over after ${r.moves.length} moves`);
  if (outcome !== r.outcome) return fail(`recorded outcome ${r.outcome} but the moves give ${outcome}`);
  if (choices && !spread) return fail("degenerate: no visit distribution spreads over two moves (the search did not search)");
  return { ok: true };
}

/** A record as its wire message (the typed payload of a game task's Sample). */
export function gameRecordToProto(r: GameRecord, simulations: number): GameRecordMessage {
  return create(GameRecordSchema, {
    game: r.game,
    moves: [...r.moves],
    visits: r.policies.map((p) => create(MoveVisitsSchema, { probabilities: [...p] })),
    rootValues: [...r.rootValues],
    outcome: r.outcome,
    simulations,
  });
}

/** A wire record as plain data; InvalidArgument when the outcome is not -1, 0 or +1. */
export function gameRecordFromProto(m: GameRecordMessage): GameRecord {
  if (m.outcome !== 1 && m.outcome !== 0 && m.outcome !== -1) throw new AutodidactError(`game record outcome must be -1, 0 or 1, got ${m.outcome}`, Code.InvalidArgument);
  return {
    game: m.game,
    moves: [...m.moves],
    policies: m.visits.map((v) => [...v.probabilities]),
    rootValues: [...m.rootValues],
    outcome: m.outcome as Outcome,
  };
}

/** The moves of a record as text (Connect Four: "4453…"), the sample's completion. */
export function movesText<S>(game: Game<S>, moves: readonly number[]): string {
  return moves.map((m) => game.moveText(m)).join(game.numMoves <= 9 ? "" : " ");
}

/** A key equal for records with the same moves (duplicate detection). */
export function recordKey(r: Pick<GameRecord, "game" | "moves">): string {
  return `${r.game}:${r.moves.join(",")}`;
}
