// The rules critic's game method: replays every game record (legality, the end, the outcome, the
// visit distributions' shape) and filters repeats of a game already judged under another sample id.
import { checkGameRecord, gameRecordFromProto, movesText, recordKey, type GamePack } from "../../src/domain/games/index.js";
import type { Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { Judge, Judgement } from "./judges.js";

/** Game keys remembered for duplicate detection (oldest forgotten first). */
const DEFAULT_MEMORY = 50_000;

/**
 * Gives a judge (the rules critic) a game method. A record passes when the rules accept it, the
 * sample's completion is its moves' text, and no other sample id carried the same game before
 * (within the last `memory` games this process judged; a redelivered sample keeps its verdict).
 */
export function withGameRules(judge: Judge, options: { memory?: number } = {}): Judge {
  const memory = options.memory ?? DEFAULT_MEMORY;
  const seen = new Map<string, string>();
  const no = (reason: string): Judgement => ({ approve: false, score: 0, reason, modelVersion: "" });
  return {
    ...judge,
    async judgeGame(sample: Sample, pack: GamePack): Promise<Judgement> {
      const record = gameRecordFromProto(sample.game!);
      const check = checkGameRecord(pack.game, record);
      if (!check.ok) return no(check.reason);
      if (sample.completion !== movesText(pack.game, record.moves)) return no("completion is not the text of the record's moves");
      const key = recordKey(record);
      const first = seen.get(key);
      if (first !== undefined && first !== sample.id) return no(`duplicate of game ${first}`);
      if (first === undefined) {
        seen.set(key, sample.id);
        if (seen.size > memory) seen.delete(seen.keys().next().value as string);
      }
      return { approve: true, score: 1, reason: `legal ${record.moves.length}-ply game, outcome ${record.outcome}, visit distributions well-formed`, modelVersion: "" };
    },
  };
}
