import { AutodidactError, Code } from "../../platform/errors/index.js";
import {
  buildG2pData,
  decodeArpabet,
  G2P_MAX_LETTERS,
  G2P_MIN_LETTERS,
  PHONEME_CHARS,
  plausiblePhonemes,
  type G2pData,
  type G2pSplit,
} from "./g2p-data.js";
import { defineDatasetPack, type DatasetPack, type DatasetRow } from "./dataset/index.js";
import type { FormatCheck } from "./task-pack.js";
import type { CharTokenizerSpec } from "./tokenizer-spec.js";

/*
 * Grapheme-to-phoneme on the CMU Pronouncing Dictionary: prompt `<word>=`, completion its phonemes,
 * one character per ARPAbet phoneme (see g2p-data.ts), then `<eos>`: `hello=` → `H^L6<eos>`
 * (HH AH L OW). Difficulty = letters. Real labels for training exist only for 3..6 letters (the
 * anchor split); longer words come from an unlabelled pool the generator proposes from; the test
 * split (every length) and the validation split (base range) are held out from both.
 */

/** Name of the built-in g2p pack. */
export const G2P = "g2p";

/** Tokenizer of the g2p task: lowercase letters and `=` (prompt), the 39 phoneme characters (answer), pad/bos/eos. */
export const G2P_TOKENIZER: CharTokenizerSpec = Object.freeze({
  kind: "char",
  alphabet: Object.freeze([..."abcdefghijklmnopqrstuvwxyz", "=", ...PHONEME_CHARS]),
  special: Object.freeze({ pad: "<pad>", bos: "<bos>", eos: "<eos>" }),
}) as CharTokenizerSpec;

/** Rare-slice tags of g2p: spellings whose sound is not letter by letter. */
export const G2P_SLICES = Object.freeze(["gh", "ph", "double_letter", "final_e"] as const);

const PROMPT = /^([a-z]+)=$/;
const PHONEME_SET = new Set(PHONEME_CHARS);

function parseG2pPrompt(prompt: string): string {
  const m = PROMPT.exec(prompt);
  if (m === null || m[1]!.length < G2P_MIN_LETTERS || m[1]!.length > G2P_MAX_LETTERS) {
    throw new AutodidactError(
      `g2p prompt must be a word of ${G2P_MIN_LETTERS}..${G2P_MAX_LETTERS} lowercase letters then "=", got ${JSON.stringify(prompt.slice(0, 80))}`,
      Code.InvalidArgument,
    );
  }
  return m[1]!;
}

/** The rules critic's verdict on a normalized answer: known phonemes only, a plausible count for the word. */
export function checkG2pFormat(prompt: string, answer: string): FormatCheck {
  let word: string;
  try {
    word = parseG2pPrompt(prompt);
  } catch (err) {
    return { ok: false, reason: `malformed prompt: ${(err as AutodidactError).rawMessage}` };
  }
  if (answer.length === 0) return { ok: false, reason: "empty answer" };
  const unknown = [...answer].find((c) => !PHONEME_SET.has(c));
  if (unknown !== undefined) return { ok: false, reason: `answer holds ${JSON.stringify(unknown)}, not one of the 39 ARPAbet phonemes` };
  const { min, max } = plausiblePhonemes(word.length);
  if (answer.length < min || answer.length > max) {
    return { ok: false, reason: `${answer.length} phonemes for a ${word.length}-letter word (plausible: ${min}..${max})` };
  }
  // Any phoneme four times in a row is no English pronunciation (a decoder stuck in a loop).
  if (/(.)\1\1\1/.test(answer)) return { ok: false, reason: "a phoneme repeated four times" };
  return { ok: true };
}

function g2pSlices(prompt: string): string[] {
  const word = parseG2pPrompt(prompt);
  const tags: string[] = [];
  if (word.includes("gh")) tags.push("gh");
  if (word.includes("ph")) tags.push("ph");
  if (/([a-z])\1/.test(word)) tags.push("double_letter");
  if (word.endsWith("e")) tags.push("final_e");
  return tags;
}

/**
 * Creates the built-in `g2p` pack (3..16 letters; anchor and validation 3..6) as a data-set pack: the
 * dictionary's splits become its rows; pool rows keep their answers as hidden ground truth (the
 * verifier: monitor and reports only). `data` defaults to the installed dictionary.
 */
export function createG2pTask(data: G2pData = buildG2pData()): DatasetPack {
  const rows = (split: G2pSplit): DatasetRow[] => {
    const out: DatasetRow[] = [];
    for (const [letters, words] of [...(data.bySplit.get(split) ?? new Map<number, readonly string[]>())].sort((a, b) => a[0] - b[0])) {
      for (const word of words) out.push({ prompt: `${word}=`, answer: data.entries.get(word)!.answer, difficulty: letters, source: `cmudict:${word}` });
    }
    return out;
  };
  return defineDatasetPack({
    name: G2P,
    version: "1.0.0",
    description: "Grapheme-to-phoneme on the CMU Pronouncing Dictionary: `hello=` → `H^L6<eos>` (HH AH L OW); difficulty = letters.",
    splits: { anchor: rows("anchor"), validation: rows("validation"), test: rows("test"), pool: rows("pool") },
    difficulty: (prompt) => parseG2pPrompt(prompt).length,
    tokenizer: G2P_TOKENIZER,
    answerWhitespace: "remove",
    heldOutSize: 256,
    checkFormat: checkG2pFormat,
    sliceNames: G2P_SLICES,
    rareSlices: g2pSlices,
    maxAnswerLength: (letters) => plausiblePhonemes(letters).max,
    // Pronunciations of one word differ in length by a phoneme or two (a schwa, a glide): a longer gap is a dropped syllable.
    defaultMaxShortfall: 3,
  });
}

/** Phoneme error rate of one answer: edit distance (in phonemes) to the truth over the truth's length. */
export function phonemeErrors(answer: string, truth: string): number {
  const a = [...answer];
  const t = [...truth];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === t[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[t.length]!;
}

/** An answer string as ARPAbet, for reports (re-exported for apps). */
export const g2pAsArpabet = decodeArpabet;
