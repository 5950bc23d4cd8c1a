// Scores g2p model folders on the test split: word exact-match and phoneme error rate per length
// (reporting only; the test split decides nothing). Prints a markdown table, one row per model.
// Usage: node --import tsx scripts/g2p-eval.ts <model-dir>... [--lengths 3-12] [--size 256]
import { createModelWorker, loadModel, openWeights } from "../src/engine/index.js";
import { createTaskTokenizer, getTaskPack } from "../src/domain/tasks/index.js";
import { testScores, type LengthScore } from "../apps/experiment/index.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = args[i + 1] ?? fallback;
  args.splice(i, 2);
  return value;
};
const [lo, hi] = flag("--lengths", "3-12").split("-").map(Number) as [number, number];
const size = Number(flag("--size", "256"));
if (args.length === 0 || !(lo >= 3 && hi >= lo && hi <= 16) || !(size > 0)) {
  console.error("usage: scripts/g2p-eval.ts <model-dir>... [--lengths 3-12] [--size 256]");
  process.exit(2);
}
const pack = getTaskPack("g2p");
const tokenizer = createTaskTokenizer(pack);
const lengths = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const pct = (x: number): string => (100 * x).toFixed(1);
const rows: string[] = [];
for (const dir of args) {
  const model = await loadModel(dir);
  const host = createModelWorker({ name: "g2p-eval" });
  try {
    const opened = await openWeights(host, { config: model.config, params: model.params, tokenizer }, { intraOpThreads: 1, interOpThreads: 1 });
    const scores: LengthScore[] = await testScores(opened.generator, pack, lengths, size, true);
    await opened.session.release();
    const mid = scores.filter((s) => s.length >= 7 && s.length <= 9);
    const avg = mid.length ? mid.reduce((a, s) => a + s.exact, 0) / mid.length : NaN;
    rows.push(`| ${dir} | ${scores.map((s) => `${pct(s.exact)} / ${pct(s.per)}`).join(" | ")} | ${pct(avg)} |`);
    console.error(`${dir}: done`);
  } finally {
    await host.close();
  }
}
console.log(`test split, ${size} words per length (fewer where the split is smaller); cells: word exact-match % / PER %\n`);
console.log(`| model | ${lengths.join(" | ")} | words 7..9 |`);
console.log(`|---|${lengths.map(() => "---").join("|")}|---|`);
for (const r of rows) console.log(r);
