// Trains base models for any task pack — your own task module or data-set folder included — on its
// anchor data (the labelled split that trains), sized from the pack's tokenizer and longest problem,
// one independently seeded lineage per seed, saved as model folders `autodidact models import` takes.
// Usage: node --import tsx scripts/train-task-base.ts --task-module ./my-task --out models/my-task-base
//        [--task <name>] [--seeds 1,2] [--steps 2000] [--batch-size 32] [--lr 1e-3] [--hidden 64] [--layers 2]
import { dirname, join, resolve } from "node:path";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { createModelWorker, createTransformerConfig, initParameters, saveModel } from "../src/engine/index.js";
import { createTaskTokenizer, getTaskPack, loadTaskModules, taskIdentity, type DatasetPack, type TaskPack } from "../src/domain/tasks/index.js";
import { toExample, trainPhase } from "../apps/experiment/index.js";

const options = defineOptions({
  taskModule: serviceOptions.taskModule,
  taskModuleDir: serviceOptions.taskModuleDir,
  task: { type: "string", help: "task pack name (default: the last module's pack)" },
  out: { type: "string", help: "folder for lineage-<seed>/ model folders", required: true },
  seeds: { type: "list", help: "one lineage per seed", default: ["1", "2"] },
  steps: { type: "int", help: "optimizer steps per lineage", default: 2000, min: 1 },
  batchSize: { type: "int", help: "examples per step", default: 32, min: 1 },
  lr: { type: "float", help: "peak learning rate", default: 1e-3, min: 0 },
  hidden: { type: "int", help: "hidden size", default: 64, min: 8 },
  layers: { type: "int", help: "transformer layers", default: 2, min: 1 },
});
const parsed = options.parse(process.argv.slice(2), process.env);
if (parsed.help) {
  process.stdout.write(options.help({ usage: "node --import tsx scripts/train-task-base.ts [options]", description: "Base models of a task pack, trained on its anchor data." }) + "\n");
  process.exit(0);
}
const o = parsed.values;
const modules = o.taskModule.map((m) => resolve(m));
const loaded = await loadTaskModules({ modules, dirs: o.taskModuleDir.length > 0 ? o.taskModuleDir : modules.map((m) => (m.endsWith("pack.json") || !/\.[cm]?[jt]s$/.test(m) ? dirname(m) : dirname(m))) });
const pack: TaskPack = getTaskPack(o.task ?? loaded[loaded.length - 1]?.name ?? "addition");
const tokenizer = createTaskTokenizer(pack);
const anchorDifficulties = typeof (pack as DatasetPack).counts === "function" ? [...(pack as DatasetPack).counts().anchor.keys()] : [pack.difficulty.min, pack.difficulty.max];
const [minDifficulty, maxDifficulty] = [Math.min(...anchorDifficulties), Math.max(...anchorDifficulties)];
let longest = 0;
for (let d = pack.difficulty.min; d <= pack.difficulty.max; d++) longest = Math.max(longest, pack.maxPromptLength(d) + pack.maxAnswerLength(d));
const config = createTransformerConfig({ vocabSize: tokenizer.vocabSize, numLayers: o.layers, hiddenSize: o.hidden, numHeads: Math.max(1, o.hidden / 32), intermediateSize: 4 * o.hidden, maxPositions: longest + 4, positional: "rotary" });
const phase = { steps: o.steps, batchSize: o.batchSize, lr: o.lr, warmupSteps: Math.min(100, Math.floor(o.steps / 10)), decayShare: 0.3, weightDecay: 0.01 };
console.log(`task ${pack.name}: anchor difficulties ${minDifficulty}..${maxDifficulty}, vocabulary ${tokenizer.vocabSize}, context ${config.maxPositions}`);
const started = Date.now();
await Promise.all(
  o.seeds.map(async (s) => {
    const seed = Number(s);
    const host = createModelWorker({ name: `train-task-base-${seed}` });
    try {
      const anchor = pack.createAnchorSource({ seed: `base:${seed}`, minDifficulty, maxDifficulty });
      let last = 0;
      const weights = await trainPhase({
        host,
        config,
        weights: initParameters(config, seed),
        phase,
        padId: tokenizer.padId ?? 0,
        nextBatch: () => anchor.take(o.batchSize).map((e) => toExample(tokenizer, e.prompt, e.answer, tokenizer.bosId !== null)),
        seed,
        onStep: (step, total, loss) => {
          if (Date.now() - last > 15_000 || step === total) {
            last = Date.now();
            console.log(`lineage-${seed} step ${step}/${total} loss ${loss.toFixed(4)}`);
          }
        },
      });
      const dir = join(o.out, `lineage-${seed}`);
      const id = taskIdentity(pack.name);
      await saveModel(dir, { config, params: weights, tokenizer, metadata: { task: pack.name, taskVersion: id.version, taskDigest: id.digest, lineage: `lineage-${seed}`, seed: String(seed) } });
      console.log(`lineage-${seed} -> ${dir}`);
    } finally {
      await host.close();
    }
  }),
);
console.log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
