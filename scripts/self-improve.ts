// Runs the in-process self-improvement recipe and prints the per-round table.
// Usage: node --import tsx scripts/self-improve.ts [default|quick|g2p|g2p-quick] [--no-consensus] [--replace]
//        [--lora] [--base models/addition-base] [--json FILE] [--save DIR (final lineages as model folders)]
//        [--set key=value (dotted keys, JSON or comma lists)]...
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { overrideRecipe } from "../apps/demo/index.js";
import { formatRound, loadBase, recipes, runSelfImprovement, saveBase, type SelfImprovementConfig } from "../apps/experiment/index.js";

const args = process.argv.slice(2);
const name = args[0] && !args[0].startsWith("--") ? args.shift()! : "default";
let config: SelfImprovementConfig = structuredClone(recipes[name as keyof typeof recipes] ?? recipes.default) as SelfImprovementConfig;
let json: string | undefined;
let baseDir: string | undefined;
let saveDir: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--no-consensus") config = { ...config, vote: false, lengthFilter: false };
  else if (a === "--replace") config = { ...config, data: "replace" };
  else if (a === "--lora") config = { ...config, mode: "lora", lora: { rank: 16, alpha: 32, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"] } };
  else if (a === "--json") json = args[++i];
  else if (a === "--base") baseDir = args[++i];
  else if (a === "--save") saveDir = args[++i];
  else if (a === "--set") config = overrideRecipe(config, [args[++i]!]);
  else throw new Error(`unknown argument ${a}`);
}
console.log(`recipe ${name}: ${JSON.stringify(config)}`);
const baseWeights = baseDir === undefined ? undefined : await Promise.all(config.seeds.map(async (seed) => (await loadBase(join(baseDir!, `lineage-${seed}`), config)).weights));
let last = 0;
const result = await runSelfImprovement(config, {
  ...(baseWeights ? { baseWeights } : {}),
  onRound: (r) => console.log(formatRound(r)),
  ...(saveDir !== undefined
    ? { onDone: async (ls) => void (await Promise.all(ls.map((l) => saveBase(join(saveDir!, l.name), { config, seed: l.seed, weights: l.weights, frontier: 0 })))) }
    : {}),
  onStep: (lineage, step, total, loss) => {
    if (Date.now() - last > 15000 || step === total) {
      last = Date.now();
      console.log(`  ${lineage} step ${step}/${total} loss ${loss.toFixed(4)}`);
    }
  },
});
console.log(`base frontier ${result.baseFrontier} -> final ${result.finalFrontier}, wall ${result.wallSeconds.toFixed(0)}s`);
if (json) await writeFile(json, JSON.stringify(result, null, 2));
