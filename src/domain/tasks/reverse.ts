import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { CharTokenizerSpec } from "./tokenizer-spec.js";
import { defineTaskPack, type FormatCheck, type TaskPack } from "./task-pack.js";

/*
 * String reversal: prompt `<letters>=`, completion the letters reversed then `<eos>`
 * (`abc=` → `cba<eos>`). Difficulty = string length. A second, tiny task that proves the task-pack
 * interface is not addition-shaped, and gives tests a cheap alternative.
 */

/** Tokenizer of the reverse task: lowercase letters, `=`, and pad/bos/eos. */
export const REVERSE_TOKENIZER: CharTokenizerSpec = Object.freeze({
  kind: "char",
  alphabet: Object.freeze([..."abcdefghijklmnopqrstuvwxyz", "="]),
  special: Object.freeze({ pad: "<pad>", bos: "<bos>", eos: "<eos>" }),
}) as CharTokenizerSpec;

/** Rare-slice tags of the reverse task: palindromes, and runs of >= 3 identical letters. */
export const REVERSE_SLICES = Object.freeze(["palindrome", "letter_run"] as const);

const PROMPT = /^([a-z]+)=$/;

function parseReversePrompt(prompt: string): string {
  const m = PROMPT.exec(prompt);
  if (m === null) {
    throw new AutodidactError(`reverse prompt must look like "abc=", got ${JSON.stringify(prompt.slice(0, 80))}`, Code.InvalidArgument);
  }
  return m[1] as string;
}

function checkReverseFormat(prompt: string, answer: string): FormatCheck {
  let text: string;
  try {
    text = parseReversePrompt(prompt);
  } catch (err) {
    return { ok: false, reason: `malformed prompt: ${(err as AutodidactError).rawMessage}` };
  }
  if (!/^[a-z]*$/.test(answer)) return { ok: false, reason: "answer contains a character that is not a lowercase letter" };
  if (answer.length !== text.length) return { ok: false, reason: `answer has ${answer.length} letters, the input has ${text.length}` };
  return { ok: true };
}

/** Creates the built-in `reverse` task pack (lengths 1..64). */
export function createReverseTask(): TaskPack {
  return defineTaskPack({
    name: "reverse",
    description: "Reverse a string of lowercase letters: `abc=` → `cba<eos>`; difficulty = length.",
    tokenizer: REVERSE_TOKENIZER,
    difficulty: { min: 1, max: 64 },
    sliceNames: REVERSE_SLICES,
    heldOutSize: 128,
    defaultMaxShortfall: 1,
    problemSpace: (n) => 26 ** n,
    sample(rng, n) {
      let s = "";
      for (let i = 0; i < n; i++) s += String.fromCharCode(97 + rng.int(0, 25));
      return `${s}=`;
    },
    solve: (prompt) => [...parseReversePrompt(prompt)].reverse().join(""),
    checkFormat: checkReverseFormat,
    rareSlices(prompt) {
      const text = parseReversePrompt(prompt);
      const tags: string[] = [];
      if (text.length > 1 && [...text].reverse().join("") === text) tags.push("palindrome");
      if (/([a-z])\1\1/.test(text)) tags.push("letter_run");
      return tags;
    },
    difficultyOf: (prompt) => parseReversePrompt(prompt).length,
    maxPromptLength: (n) => n + 1,
    maxAnswerLength: (n) => n,
    exposeVerifier: true,
  });
}
