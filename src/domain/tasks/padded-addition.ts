import { AutodidactError, Code } from "../../platform/errors/index.js";
import { ADDITION_SLICES, ADDITION_TOKENIZER, createAdditionTask } from "./addition.js";
import { defineTaskPack, type FormatCheck, type TaskPack } from "./task-pack.js";
import type { Rng } from "./rng.js";

/*
 * Reversed addition with equal-length, zero-padded operands and an (n+1)-digit answer:
 *   n = 3:  12 + 9  →  prompt `210+900=`, completion `1200<eos>` (reversed 0021)
 * Every digit of every problem of length n sits at a fixed offset from the `+` and `=`, which a
 * NoPE model finds far more easily than the aligned-by-counting unpadded form. A
 * built-in task (`getTaskPack("addition-padded")`), so every service of the mesh can run it.
 */

/** Name of the padded variant of the addition task. */
export const PADDED_ADDITION = "addition-padded";

const PROMPT = /^([0-9]+)\+([0-9]+)=$/;

function parse(prompt: string): { a: string; b: string; n: number } {
  const m = PROMPT.exec(prompt);
  if (m === null || (m[1] as string).length !== (m[2] as string).length) {
    throw new AutodidactError(`padded addition prompt must look like "210+900=", got ${JSON.stringify(prompt.slice(0, 80))}`, Code.InvalidArgument);
  }
  return { a: m[1] as string, b: m[2] as string, n: (m[1] as string).length };
}

function solve(prompt: string): string {
  const { a, b, n } = parse(prompt);
  let out = "";
  let carry = 0;
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - 48 + (b.charCodeAt(i) - 48) + carry;
    out += String(d % 10);
    carry = d >= 10 ? 1 : 0;
  }
  return out + String(carry);
}

function digits(rng: Rng, length: number, n: number): string {
  let s = "";
  for (let i = 0; i < length - 1; i++) s += String(rng.int(0, 9));
  s += String(length === 1 ? rng.int(0, 9) : rng.int(1, 9));
  return s.padEnd(n, "0");
}

function checkFormat(prompt: string, answer: string): FormatCheck {
  let n: number;
  try {
    n = parse(prompt).n;
  } catch {
    return { ok: false, reason: "malformed prompt" };
  }
  if (!/^[0-9]+$/.test(answer)) return { ok: false, reason: "answer contains a non-digit character" };
  if (answer.length !== n + 1) return { ok: false, reason: `answer has ${answer.length} digits; padded ${n}-digit operands give ${n + 1}` };
  if (!/[01]$/.test(answer)) return { ok: false, reason: "the top digit of a padded sum is 0 or 1" };
  return { ok: true };
}

/** Creates the padded addition task pack (same tokenizer, slices and difficulty as `addition`). */
export function createPaddedAdditionTask(): TaskPack {
  const plain = createAdditionTask();
  const unpad = (prompt: string): string => {
    const { a, b } = parse(prompt);
    const strip = (s: string): string => s.replace(/0+$/, "") || "0";
    return `${strip(a)}+${strip(b)}=`;
  };
  return defineTaskPack({
    name: PADDED_ADDITION,
    description: "Reversed addition, operands zero-padded to n digits, answer n+1 digits: `210+900=` → `1200<eos>`.",
    tokenizer: ADDITION_TOKENIZER,
    difficulty: plain.difficulty,
    sliceNames: ADDITION_SLICES,
    heldOutSize: plain.heldOutSize,
    defaultMaxShortfall: 1,
    problemSpace: (n) => (n === 1 ? 100 : 10 ** (2 * n) - 10 ** (2 * n - 2)),
    sample(rng, n) {
      const long = digits(rng, n, n);
      const short = digits(rng, rng.int(1, n), n);
      return rng.next() < 0.5 ? `${long}+${short}=` : `${short}+${long}=`;
    },
    solve,
    checkFormat,
    rareSlices: (prompt) => plain.rareSlices(unpad(prompt)),
    difficultyOf: (prompt) => parse(prompt).n,
    maxPromptLength: (n) => 2 * n + 2,
    maxAnswerLength: (n) => n + 1,
    exposeVerifier: true,
  });
}
