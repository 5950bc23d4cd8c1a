import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { CharTokenizerSpec } from "./tokenizer-spec.js";
import type { Rng } from "./rng.js";
import { defineTaskPack, type FormatCheck, type TaskPack } from "./task-pack.js";

/*
 * Reversed multi-digit addition (Lee et al. 2025).
 *
 * Text format (chosen to be trivial for a character tokenizer):
 *   prompt      `<a reversed>+<b reversed>=`   e.g. 12 + 39  →  `21+93=`
 *   completion  `<a+b reversed>` then the end token `<eos>`   →  `15<eos>`
 * Every number is written least-significant digit first, without padding and without leading
 * zeros (so in reversed form the last digit is non-zero unless the number is 0). Operands may have
 * different lengths. Difficulty n = digit count of the longer operand: the sampler draws that
 * operand with exactly n digits, the other with a length uniform in 1..n, on a random side.
 * The answer then has n or n+1 digits (n+1 exactly when the final position carries).
 */

/** Tokenizer of the addition task: digits, `+`, `=`, and pad/bos/eos. */
export const ADDITION_TOKENIZER: CharTokenizerSpec = Object.freeze({
  kind: "char",
  alphabet: Object.freeze(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "="]),
  special: Object.freeze({ pad: "<pad>", bos: "<bos>", eos: "<eos>" }),
}) as CharTokenizerSpec;

/** Rare-slice tags of the addition task (tail metrics for early collapse). */
export const ADDITION_SLICES = Object.freeze([
  /** A run of consecutive carrying positions of length >= max(2, ceil(n/2)). */
  "long_carry_chain",
  /** The answer has n+1 digits because the top position carries. */
  "final_carry",
  /** One operand is 0. */
  "zero_operand",
  /** An operand holds at least max(2, ceil(n/2)) zero digits. */
  "many_zeros",
] as const);

const PROMPT = /^([0-9]+)\+([0-9]+)=$/;

/** Parses a prompt into reversed operand digit strings; InvalidArgument when it is not canonical. */
export function parseAdditionPrompt(prompt: string): { a: string; b: string; n: number } {
  const m = PROMPT.exec(prompt);
  if (m === null) {
    throw new AutodidactError(`addition prompt must look like "21+93=", got ${JSON.stringify(prompt.slice(0, 80))}`, Code.InvalidArgument);
  }
  const a = m[1] as string;
  const b = m[2] as string;
  for (const op of [a, b]) {
    if (op.length > 1 && op.endsWith("0")) {
      throw new AutodidactError(`addition operand ${JSON.stringify(op)} has a leading zero (reversed form ends in 0)`, Code.InvalidArgument);
    }
  }
  return { a, b, n: Math.max(a.length, b.length) };
}

/** Adds two reversed digit strings position by position, reporting each position's carry-out. */
function addReversed(a: string, b: string): { sum: string; carries: boolean[] } {
  const len = Math.max(a.length, b.length);
  let sum = "";
  const carries: boolean[] = [];
  let carry = 0;
  for (let i = 0; i < len; i++) {
    const d = (i < a.length ? a.charCodeAt(i) - 48 : 0) + (i < b.length ? b.charCodeAt(i) - 48 : 0) + carry;
    sum += String(d % 10);
    carry = d >= 10 ? 1 : 0;
    carries.push(carry === 1);
  }
  if (carry === 1) sum += "1";
  return { sum, carries };
}

/** The true reversed sum of an addition prompt (no end token). */
export function solveAddition(prompt: string): string {
  const { a, b } = parseAdditionPrompt(prompt);
  return addReversed(a, b).sum;
}

/** Writes an addition prompt for two non-negative integers (as decimal strings or bigints). */
export function formatAdditionPrompt(a: bigint | string, b: bigint | string): string {
  const rev = (x: bigint | string): string => {
    const s = typeof x === "bigint" ? x.toString() : x;
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new AutodidactError(`not a non-negative integer: ${JSON.stringify(s)}`, Code.InvalidArgument);
    return [...s].reverse().join("");
  };
  return `${rev(a)}+${rev(b)}=`;
}

const atLeastHalf = (n: number): number => Math.max(2, Math.ceil(n / 2));

function additionSlices(prompt: string): string[] {
  const { a, b, n } = parseAdditionPrompt(prompt);
  const { sum, carries } = addReversed(a, b);
  const tags: string[] = [];
  let run = 0;
  let longest = 0;
  for (const c of carries) {
    run = c ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  if (longest >= atLeastHalf(n)) tags.push("long_carry_chain");
  if (sum.length === n + 1) tags.push("final_carry");
  if (a === "0" || b === "0") tags.push("zero_operand");
  const zeros = (s: string): number => [...s].filter((c) => c === "0").length;
  if (Math.max(zeros(a), zeros(b)) >= atLeastHalf(n)) tags.push("many_zeros");
  return tags;
}

function sampleOperand(rng: Rng, length: number): string {
  let s = "";
  for (let i = 0; i < length - 1; i++) s += String(rng.int(0, 9));
  // The most significant digit (last in reversed form) is non-zero unless the number is one digit.
  s += String(length === 1 ? rng.int(0, 9) : rng.int(1, 9));
  return s;
}

function checkAdditionFormat(prompt: string, answer: string): FormatCheck {
  let n: number;
  try {
    n = parseAdditionPrompt(prompt).n;
  } catch (err) {
    return { ok: false, reason: `malformed prompt: ${(err as AutodidactError).rawMessage ?? String(err)}` };
  }
  if (answer.length === 0) return { ok: false, reason: "empty answer" };
  if (!/^[0-9]+$/.test(answer)) return { ok: false, reason: "answer contains a non-digit character" };
  if (answer.length !== n && answer.length !== n + 1) {
    return { ok: false, reason: `answer has ${answer.length} digits; ${n}-digit operands give ${n} or ${n + 1}` };
  }
  if (answer.length > 1 && answer.endsWith("0")) return { ok: false, reason: "answer has a leading zero (reversed form ends in 0)" };
  return { ok: true };
}

/** Creates the built-in `addition` task pack (difficulties 1..128 digits). */
export function createAdditionTask(): TaskPack {
  return defineTaskPack({
    name: "addition",
    description: "Reversed multi-digit addition with a length curriculum (Lee et al. 2025): `21+93=` → `15<eos>`.",
    tokenizer: ADDITION_TOKENIZER,
    difficulty: { min: 1, max: 128 },
    sliceNames: ADDITION_SLICES,
    heldOutSize: 256,
    // Lee et al. drop answers shorter than the longest by 1-2 tokens; valid sums differ by at most
    // one digit (n vs n+1), so 2 drops only answers that cannot both be right.
    defaultMaxShortfall: 2,
    problemSpace: (n) => (n === 1 ? 100 : 10 ** (2 * n) - 10 ** (2 * n - 2)),
    sample(rng, n) {
      const long = sampleOperand(rng, n);
      const short = sampleOperand(rng, rng.int(1, n));
      return rng.next() < 0.5 ? `${long}+${short}=` : `${short}+${long}=`;
    },
    solve: solveAddition,
    checkFormat: checkAdditionFormat,
    rareSlices: additionSlices,
    difficultyOf: (prompt) => parseAdditionPrompt(prompt).n,
    maxPromptLength: (n) => 2 * n + 2,
    maxAnswerLength: (n) => n + 1,
    exposeVerifier: true,
  });
}
