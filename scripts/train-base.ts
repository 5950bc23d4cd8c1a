// Re-creates the shipped base models of the addition recipe: one independently seeded lineage per
// recipe seed, trained on real 1..baseDigits-digit problems, checked on held-out problems, saved
// with the engine's saveModel into <out>/lineage-<seed>/.
// Usage: node --import tsx scripts/train-base.ts [default|quick|g2p|g2p-quick] [--out models/addition-base]
//        [--set key=value]... (recipe overrides as in the demo, e.g. --set model.hiddenSize=128 --set seeds=[7])
import { join } from "node:path";
import { overrideRecipe } from "../apps/demo/index.js";
import { createModelWorker } from "../src/engine/index.js";
import { createTaskTokenizer } from "../src/domain/tasks/index.js";
import { accuracyByLength, formatScores, frontierOf, modelConfig, recipes, recipeTask, saveBase, testScores, trainBase, withGenerator } from "../apps/experiment/index.js";

const args = process.argv.slice(2);
const name = (args[0] && !args[0].startsWith("--") ? args.shift()! : "default") as keyof typeof recipes;
if (recipes[name] === undefined) throw new Error(`unknown recipe ${name}`);
const outIdx = args.indexOf("--out");
const defaultOut: Record<string, string> = { default: "addition-base", g2p: "g2p-base", "g2p-quick": "g2p-base-quick" };
const out = outIdx >= 0 ? args[outIdx + 1]! : join("models", defaultOut[name] ?? `addition-base-${name}`);
const config = overrideRecipe(recipes[name], args.flatMap((a, i) => (args[i - 1] === "--set" ? [a] : [])));
const pack = recipeTask(config.task);
const tokenizer = createTaskTokenizer(pack);
const mc = modelConfig(config.model, tokenizer);
const started = Date.now();
await Promise.all(
  config.seeds.map(async (seed) => {
    const host = createModelWorker({ name: `train-base-${seed}` });
    try {
      let last = 0;
      const weights = await trainBase({
        config,
        seed,
        host,
        onStep: (s, total, loss) => {
          if (Date.now() - last > 20000 || s === total) {
            last = Date.now();
            console.log(`lineage-${seed} step ${s}/${total} loss ${loss.toFixed(4)}`);
          }
        },
      });
      const lineage = { name: `lineage-${seed}`, seed, host, weights };
      const top = Math.min(config.baseDigits + (pack.name === "g2p" ? 3 : 2), pack.difficulty.max);
      const lengths = Array.from({ length: top - pack.difficulty.min + 1 }, (_, i) => pack.difficulty.min + i);
      const acc = await withGenerator(lineage, mc, tokenizer, config.threads, (g) => accuracyByLength(g, pack, lengths, config.evalSize, config.bos));
      if (pack.name === "g2p") {
        // Test split, exact match and phoneme error rate per length (reported, never used to decide).
        const scores = await withGenerator(lineage, mc, tokenizer, config.threads, (g) => testScores(g, pack, lengths, config.evalSize, config.bos));
        console.log(`${lineage.name} test split:\n${formatScores(scores)}`);
      }
      const frontier = frontierOf(acc, config.frontierThreshold, config.frontierFrom);
      const dir = join(out, lineage.name);
      await saveBase(dir, { config, seed, weights, frontier });
      console.log(`${lineage.name}: frontier ${frontier}, accuracy ${acc.map((a) => `${a.length}:${(100 * a.accuracy).toFixed(0)}%`).join(" ")} -> ${dir}`);
    } finally {
      await host.close();
    }
  }),
);
console.log(`done in ${((Date.now() - started) / 1000).toFixed(0)}s`);
