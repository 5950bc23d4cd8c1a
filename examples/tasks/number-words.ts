// A task module: the number-words data set (./number-words: pack.json + JSON Lines splits) plus the
// rules only code can give — which words an answer may use, and which problems are rare. Load it in
// every service with `--task-module-dir examples/tasks --task-module examples/tasks/number-words.ts
// --task number-words`, and name it in a run spec (`task: number-words`,
// `taskModule: examples/tasks/number-words.ts`).
//
// The default export is a function of the task API the loader hands over, so this file needs nothing
// from the repository at run time; the type import below is erased when it loads.
import type { FormatCheck, TaskModuleApi, TaskPack } from "../../src/domain/tasks/index.js";

/** Every word an English number 0..999 is written with. */
const WORDS = new Set(
  [
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen",
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred",
  ]
    .join(" ")
    .split(" "),
);

/** Answers are words (a hyphen joins tens and ones) and their count fits the number's digits. */
function checkWords(prompt: string, answer: string): FormatCheck {
  const parts = answer.split(/[ -]/);
  const unknown = parts.find((w) => !WORDS.has(w));
  if (unknown !== undefined) return { ok: false, reason: `"${unknown}" is not a number word` };
  const digits = prompt.length - 1;
  if (parts.length > 2 * digits) return { ok: false, reason: `${parts.length} words for a ${digits}-digit number` };
  if (digits < 3 && parts.includes("hundred")) return { ok: false, reason: "hundred in a number below 100" };
  return { ok: true };
}

/** Rare slices the monitor watches: the teens (irregular words) and round hundreds. */
function rareSlices(prompt: string): string[] {
  const n = Number(prompt.slice(0, -1));
  const tags: string[] = [];
  if (n % 100 >= 11 && n % 100 <= 19) tags.push("teen");
  if (n >= 100 && n % 100 === 0) tags.push("round_hundred");
  return tags;
}

export default function numberWords(api: TaskModuleApi): Promise<TaskPack> {
  return api.loadDatasetPack(new URL("./number-words", import.meta.url), {
    checkFormat: checkWords,
    sliceNames: ["teen", "round_hundred"],
    rareSlices,
  });
}
