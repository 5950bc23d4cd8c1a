// How long loading a task module adds to a service's start (target < 1 s): each run is a fresh node
// process (tsx loader, cold module cache) that loads the module the way every service does and reports
// the time, so the TypeScript transform, the data files and the pack's checks are all counted.
// `node --import tsx bench/tasks/bench.ts [--runs 10] [module ...]` (default: examples/tasks/number-words.ts).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 10;
const modules = args.filter((a, i) => a !== "--runs" && i !== runsAt + 1);
if (modules.length === 0) modules.push(fileURLToPath(new URL("../../examples/tasks/number-words.ts", import.meta.url)));
const once = fileURLToPath(new URL("./load-once.ts", import.meta.url));

const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const out = execFileSync(process.execPath, ["--import", "tsx", once, ...modules], { encoding: "utf8" });
  times.push((JSON.parse(out.trim().split("\n").pop()!) as { ms: number }).ms);
}
times.sort((a, b) => a - b);
const q = (p: number): number => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
const row = { modules, runs, medianMs: Math.round(q(0.5)), p90Ms: Math.round(q(0.9)), maxMs: Math.round(times[times.length - 1]!), targetMs: 1000, pass: times[times.length - 1]! < 1000 };
process.stdout.write(JSON.stringify(row, null, 2) + "\n");
process.exitCode = row.pass ? 0 : 1;
