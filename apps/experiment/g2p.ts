import type { TextGenerator } from "../../src/engine/index.js";
import { phonemeErrors, type TaskPack } from "../../src/domain/tasks/index.js";
import { greedyAnswers } from "./base-training.js";

/** Word exact-match and phoneme error rate of one length on a held-out split. */
export interface LengthScore {
  readonly length: number;
  readonly count: number;
  /** Share of words whose phonemes are exactly right. */
  readonly exact: number;
  /** Phoneme (token) edit distance summed over the words, over the summed length of the true answers. */
  readonly per: number;
}

/**
 * Greedy answers of one model scored on the test split per length (reporting only: the test split
 * decides nothing). For g2p the error rate is the phoneme error rate; for any other pack it is the
 * token error rate of its answers.
 */
export async function testScores(generator: TextGenerator, pack: TaskPack, lengths: readonly number[], size: number, bos = true): Promise<LengthScore[]> {
  const sets = lengths.map((d) => pack.heldOut("test", d).slice(0, size));
  const answers = await greedyAnswers(generator, sets.flat().map((e) => e.prompt), pack.maxAnswerLength(Math.max(...lengths)), bos);
  let k = 0;
  return sets.map((set, i) => {
    let exact = 0;
    let errors = 0;
    let phonemes = 0;
    for (const e of set) {
      const a = pack.normalize(answers[k++] as string);
      if (a === e.answer) exact++;
      errors += phonemeErrors(a, e.answer);
      phonemes += e.answer.length;
    }
    return { length: lengths[i] as number, count: set.length, exact: set.length ? exact / set.length : 0, per: phonemes ? errors / phonemes : 0 };
  });
}

/** One line per length: `7: 41.0% words, PER 14.2% (n=256)`. */
export function formatScores(scores: readonly LengthScore[]): string {
  return scores.map((s) => `${s.length}: ${(100 * s.exact).toFixed(1)}% words, PER ${(100 * s.per).toFixed(1)}% (n=${s.count})`).join("\n");
}
