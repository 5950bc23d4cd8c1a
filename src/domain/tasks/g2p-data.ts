import { hash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { AutodidactError, Code } from "../../platform/errors/index.js";

/*
 * The grapheme-to-phoneme data: the CMU Pronouncing Dictionary (npm `cmu-pronouncing-dictionary`,
 * ISC licence) turned into word → phoneme-string pairs with named splits. Built at load time from
 * the installed package, deterministically: the same package version gives the same splits on every
 * machine, because a word's split depends only on the SHA-256 of the word.
 */

/** The 39 ARPAbet phonemes (stress digits stripped), each written as one character of the task's alphabet. */
export const ARPABET_TO_CHAR: Readonly<Record<string, string>> = Object.freeze({
  AA: "A", AE: "@", AH: "^", AO: "O", AW: "1", AY: "2", EH: "E", ER: "3", EY: "4", IH: "I", IY: "5",
  OW: "6", OY: "7", UH: "U", UW: "8",
  B: "B", CH: "C", D: "D", DH: "9", F: "F", G: "G", HH: "H", JH: "J", K: "K", L: "L", M: "M", N: "N",
  NG: "X", P: "P", R: "R", S: "S", SH: "Q", T: "T", TH: "0", V: "V", W: "W", Y: "Y", Z: "Z", ZH: "#",
});

const CHAR_TO_ARPABET: ReadonlyMap<string, string> = new Map(Object.entries(ARPABET_TO_CHAR).map(([p, c]) => [c, p]));

/** The phoneme characters, in a fixed order (the answer half of the tokenizer's alphabet). */
export const PHONEME_CHARS: readonly string[] = Object.freeze(Object.values(ARPABET_TO_CHAR));

/** Shortest and longest words kept (letters). */
export const G2P_MIN_LETTERS = 3;
export const G2P_MAX_LETTERS = 16;
/** Longest word with real labels for training and validation (the base range is 3..this). */
export const G2P_BASE_MAX_LETTERS = 6;

/** Writes an ARPAbet pronunciation (`HH AH0 L OW1`, stress digits allowed) as the task's answer string (`H^L6`). */
export function encodeArpabet(pronunciation: string): string {
  return pronunciation
    .trim()
    .split(/\s+/)
    .map((p) => {
      const c = ARPABET_TO_CHAR[p.replace(/[0-2]$/, "")];
      if (c === undefined) throw new AutodidactError(`not an ARPAbet phoneme: ${JSON.stringify(p)}`, Code.InvalidArgument);
      return c;
    })
    .join("");
}

/** Writes an answer string back as space-separated ARPAbet, for people (`H^L6` → `HH AH L OW`); `?` for unknown characters. */
export function decodeArpabet(answer: string): string {
  return [...answer].map((c) => CHAR_TO_ARPABET.get(c) ?? "?").join(" ");
}

/**
 * Bounds on the number of phonemes of a word of `letters` letters: the rules critic's plausible
 * length, also applied to the data (the few dictionary entries outside it are acronyms spelled out,
 * like `aaa` → `triple a`, which a spelling-to-sound task should not learn).
 */
export function plausiblePhonemes(letters: number): { min: number; max: number } {
  return { min: Math.max(1, Math.ceil(letters / 3)), max: letters + 1 };
}

/** Which named split a word belongs to. */
export type G2pSplit = "anchor" | "validation" | "test" | "pool";

/** One dictionary word with its (first) pronunciation as an answer string, and its split. */
export interface G2pEntry {
  readonly word: string;
  readonly answer: string;
  readonly split: G2pSplit;
}

/** The cleaned dictionary, by split and length, plus the counts of what was dropped and why. */
export interface G2pData {
  /** Every kept word → its entry (the ground truth; only the verifier and held-out sets read it). */
  readonly entries: ReadonlyMap<string, G2pEntry>;
  /** split → letters → words, each list sorted by content hash (a fixed, seed-independent order). */
  readonly bySplit: ReadonlyMap<G2pSplit, ReadonlyMap<number, readonly string[]>>;
  readonly dropped: { readonly notAlphabetic: number; readonly length: number; readonly annotated: number; readonly implausible: number; readonly variants: number };
}

/** Position of a word in [0, 1) by the SHA-256 of its content: the split rule and the fixed order. */
export function wordHash(word: string): number {
  // One-shot crypto.hash: the same digest as createHash, several times faster over 117k words.
  return parseInt(hash("sha256", `g2p:${word}`, "hex").slice(0, 8), 16) / 2 ** 32;
}

/**
 * The split of a word: 10 % test at every length; in the base range 10 % validation and 80 % anchor;
 * beyond it the other 90 % are the unlabelled pool (their answers are never shown to a decision).
 */
export function splitOf(word: string, u: number = wordHash(word)): G2pSplit {
  if (u < 0.1) return "test";
  if (word.length > G2P_BASE_MAX_LETTERS) return "pool";
  return u < 0.2 ? "validation" : "anchor";
}

/** Reads the dictionary object from the installed package without evaluating its 3.5 MB module. */
function readDictionary(): Record<string, string> {
  const require = createRequire(import.meta.url);
  let text: string;
  try {
    text = readFileSync(require.resolve("cmu-pronouncing-dictionary"), "utf8");
  } catch (cause) {
    throw new AutodidactError("task g2p needs the npm package cmu-pronouncing-dictionary (npm install)", Code.FailedPrecondition, { cause });
  }
  const start = text.indexOf("= {") + 2; // after `export const dictionary`, past the JSDoc type
  const end = text.lastIndexOf("}");
  try {
    return JSON.parse(text.slice(start, end + 1)) as Record<string, string>;
  } catch (cause) {
    throw new AutodidactError("cmu-pronouncing-dictionary: unexpected file format (want the 3.0.0 package)", Code.FailedPrecondition, { cause });
  }
}

/** Cleans the dictionary and splits it (see the module comment); pure given the raw entries. */
export function buildG2pData(raw: Readonly<Record<string, string>> = readDictionary()): G2pData {
  const dropped = { notAlphabetic: 0, length: 0, annotated: 0, implausible: 0, variants: 0 };
  const entries = new Map<string, G2pEntry>();
  const hashes = new Map<string, number>();
  for (const [key, pronunciation] of Object.entries(raw)) {
    if (/\(\d+\)$/.test(key)) {
      dropped.variants++;
      continue;
    }
    if (!/^[a-z]+$/.test(key)) {
      dropped.notAlphabetic++;
      continue;
    }
    if (key.length < G2P_MIN_LETTERS || key.length > G2P_MAX_LETTERS) {
      dropped.length++;
      continue;
    }
    if (pronunciation.includes("#")) {
      dropped.annotated++;
      continue;
    }
    const answer = encodeArpabet(pronunciation);
    const bounds = plausiblePhonemes(key.length);
    if (answer.length < bounds.min || answer.length > bounds.max) {
      dropped.implausible++;
      continue;
    }
    const u = wordHash(key);
    hashes.set(key, u);
    entries.set(key, { word: key, answer, split: splitOf(key, u) });
  }
  const bySplit = new Map<G2pSplit, Map<number, string[]>>();
  for (const e of entries.values()) {
    let byLength = bySplit.get(e.split);
    if (byLength === undefined) bySplit.set(e.split, (byLength = new Map()));
    let list = byLength.get(e.word.length);
    if (list === undefined) byLength.set(e.word.length, (list = []));
    list.push(e.word);
  }
  for (const byLength of bySplit.values()) for (const list of byLength.values()) list.sort((a, b) => (hashes.get(a) as number) - (hashes.get(b) as number) || (a < b ? -1 : 1));
  return { entries, bySplit, dropped };
}
