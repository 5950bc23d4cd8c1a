import { createHash } from "node:crypto";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import {
  buildG2pData,
  decodeArpabet,
  G2P_BASE_MAX_LETTERS,
  G2P_MAX_LETTERS,
  G2P_MIN_LETTERS,
  PHONEME_CHARS,
  plausiblePhonemes,
  type G2pData,
  type G2pSplit,
} from "./g2p-data.js";
import { createRng, type Rng } from "./rng.js";
import type { FormatCheck, HeldOutSplit, TaskExample, TaskPack, TaskStream } from "./task-pack.js";
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

/** A seeded stream over a fixed list: a fresh shuffle per pass, so nothing repeats before the list is used up. */
function shuffledStream(rng: Rng, items: readonly string[]): () => string {
  let order: string[] = [];
  let at = 0;
  return () => {
    if (at >= order.length) {
      order = [...items];
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [order[i], order[j]] = [order[j] as string, order[i] as string];
      }
      at = 0;
    }
    return order[at++] as string;
  };
}

const stream = <T>(next: () => T): TaskStream<T> => ({
  next,
  take(count: number): T[] {
    if (!Number.isInteger(count) || count < 0) throw new AutodidactError(`count must be a non-negative integer, got ${count}`, Code.InvalidArgument);
    return Array.from({ length: count }, next);
  },
});

/** Creates the built-in `g2p` pack (3..16 letters; anchor and validation 3..6). `data` defaults to the installed dictionary. */
export function createG2pTask(data: G2pData = buildG2pData()): TaskPack {
  const range = { min: G2P_MIN_LETTERS, max: G2P_MAX_LETTERS };
  const heldOutSize = 256;
  const words = (split: G2pSplit, letters: number): readonly string[] => data.bySplit.get(split)?.get(letters) ?? [];
  const checkDifficulty = (d: number): void => {
    if (!Number.isInteger(d) || d < range.min || d > range.max) throw new AutodidactError(`task g2p: difficulty ${d} is outside ${range.min}..${range.max}`, Code.OutOfRange);
  };
  const promptId = (prompt: string): string => `${G2P}-${createHash("sha256").update(prompt).digest("hex").slice(0, 16)}`;
  const example = (word: string): TaskExample => {
    const prompt = `${word}=`;
    return { id: promptId(prompt), prompt, difficulty: word.length, answer: data.entries.get(word)!.answer, slices: g2pSlices(prompt) };
  };
  const normalize = (completion: string): string => {
    const eos = completion.indexOf(G2P_TOKENIZER.special.eos);
    const cut = eos >= 0 ? completion.slice(0, eos) : completion;
    return cut.split(G2P_TOKENIZER.special.pad).join("").split(G2P_TOKENIZER.special.bos).join("").replace(/\s+/g, "");
  };
  const heldOut = (split: HeldOutSplit, difficulty: number, size?: number): readonly TaskExample[] => {
    if (split !== "validation" && split !== "test") throw new AutodidactError(`task g2p: unknown held-out split ${JSON.stringify(split)} (validation, test)`, Code.InvalidArgument);
    checkDifficulty(difficulty);
    const all = words(split, difficulty).slice(0, heldOutSize);
    if (size === undefined) return all.map(example);
    if (!Number.isInteger(size) || size < 0 || size > all.length) {
      throw new AutodidactError(`task g2p: ${split} split size ${size} must be an integer in 0..${all.length} at difficulty ${difficulty}`, Code.OutOfRange);
    }
    return all.slice(0, size).map(example);
  };
  return {
    name: G2P,
    description: "Grapheme-to-phoneme on the CMU Pronouncing Dictionary: `hello=` → `H^L6<eos>` (HH AH L OW); difficulty = letters.",
    tokenizer: G2P_TOKENIZER,
    difficulty: range,
    sliceNames: G2P_SLICES,
    heldOutSize,
    createPromptSampler({ seed, difficulty }) {
      checkDifficulty(difficulty);
      // Unlabelled pool words; in the base range (no pool) the anchor words, whose answers train anyway.
      const from = difficulty > G2P_BASE_MAX_LETTERS ? words("pool", difficulty) : words("anchor", difficulty);
      if (from.length === 0) throw new AutodidactError(`task g2p: no unlabelled words of ${difficulty} letters`, Code.ResourceExhausted);
      const next = shuffledStream(createRng(G2P, "prompts", String(seed), difficulty), from);
      return stream(() => {
        const word = next();
        return { id: promptId(`${word}=`), prompt: `${word}=`, difficulty };
      });
    },
    createAnchorSource({ seed, minDifficulty, maxDifficulty }) {
      checkDifficulty(minDifficulty);
      checkDifficulty(maxDifficulty);
      if (minDifficulty > maxDifficulty) throw new AutodidactError(`minDifficulty ${minDifficulty} > maxDifficulty ${maxDifficulty}`, Code.InvalidArgument);
      const pool: string[] = [];
      for (let d = minDifficulty; d <= maxDifficulty; d++) pool.push(...words("anchor", d));
      if (pool.length === 0) {
        throw new AutodidactError(`task g2p: no anchor words of ${minDifficulty}..${maxDifficulty} letters (anchor: ${G2P_MIN_LETTERS}..${G2P_BASE_MAX_LETTERS})`, Code.FailedPrecondition);
      }
      const next = shuffledStream(createRng(G2P, "anchor", String(seed), minDifficulty, maxDifficulty), pool);
      return stream(() => example(next()));
    },
    heldOut,
    normalize,
    equivalent: (a, b) => normalize(a) === normalize(b),
    checkFormat: (prompt, completion) => checkG2pFormat(prompt, normalize(completion)),
    lengthFilter(completions, maxShortfall = 3) {
      if (!Number.isInteger(maxShortfall) || maxShortfall < 1) throw new AutodidactError(`maxShortfall must be an integer >= 1, got ${maxShortfall}`, Code.InvalidArgument);
      const lengths = completions.map((c) => [...normalize(c)].length);
      const longest = Math.max(0, ...lengths);
      return lengths.map((len) => longest - len < maxShortfall);
    },
    rareSlices: g2pSlices,
    difficultyOf: (prompt) => parseG2pPrompt(prompt).length,
    promptId,
    maxPromptLength(d) {
      checkDifficulty(d);
      return d + 1;
    },
    maxAnswerLength(d) {
      checkDifficulty(d);
      return plausiblePhonemes(d).max;
    },
    trainingText: (prompt, answer) => `${prompt}${normalize(answer)}${G2P_TOKENIZER.special.eos}`,
    verifier: {
      // Ground truth: the dictionary. Reporting and the monitor only (a run refuses a verifier critic unless trusted).
      solve(prompt) {
        const word = parseG2pPrompt(prompt);
        const e = data.entries.get(word);
        if (e === undefined) throw new AutodidactError(`task g2p: ${JSON.stringify(word)} is not in the dictionary`, Code.NotFound);
        return e.answer;
      },
      check(prompt, completion) {
        const m = PROMPT.exec(prompt);
        const e = m === null ? undefined : data.entries.get(m[1]!);
        return e !== undefined && normalize(completion) === e.answer;
      },
    },
  };
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
