// Writes the number-words example data set (deterministic): `node make-data.mjs` in this folder.
// English words for 0..999; difficulty = digits. Labelled anchor rows only up to 2 digits, so the
// loop must teach itself 3-digit numbers from the unlabelled pool; validation and test at every length.
import { writeFileSync } from "node:fs";

const ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"];
const TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const words = (n) => {
  if (n < 20) return ONES[n];
  if (n < 100) return TENS[Math.floor(n / 10)] + (n % 10 ? `-${ONES[n % 10]}` : "");
  return `${ONES[Math.floor(n / 100)]} hundred` + (n % 100 ? ` ${words(n % 100)}` : "");
};
let state = 20261206;
const rand = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
const shuffle = (xs) => xs.map((x) => [rand(), x]).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
// Per digit count: how many rows go to anchor, validation, test; the rest is the unlabelled pool.
const PLAN = { 1: [4, 2, 2], 2: [60, 10, 10], 3: [0, 40, 40] };
const out = { anchor: [], validation: [], test: [], pool: [] };
for (const [digits, [a, v, t]] of Object.entries(PLAN)) {
  const lo = digits === "1" ? 0 : 10 ** (digits - 1);
  const ns = shuffle(Array.from({ length: 10 ** digits - lo }, (_, i) => lo + i));
  const row = (n, labelled) => ({ prompt: `${n}=`, ...(labelled ? { answer: words(n) } : {}), difficulty: Number(digits) });
  out.anchor.push(...ns.slice(0, a).map((n) => row(n, true)));
  out.validation.push(...ns.slice(a, a + v).map((n) => row(n, true)));
  out.test.push(...ns.slice(a + v, a + v + t).map((n) => row(n, true)));
  out.pool.push(...ns.slice(a + v + t).map((n) => row(n, false)));
}
for (const [split, rows] of Object.entries(out)) writeFileSync(`${split}.jsonl`, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
