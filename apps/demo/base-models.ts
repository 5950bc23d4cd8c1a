import { access } from "node:fs/promises";
import { join } from "node:path";
import { createModelWorker } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { loadBase, saveBase, trainBase } from "../experiment/index.js";
import { createProgressBar, type DemoOutput } from "./progress.js";
import { lineageName, type DemoConfig } from "./config.js";

const exists = async (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Makes sure every lineage has a base model in `config.baseDir/lineage-<seed>/`: loads (and checks
 * the shape of) the ones there, trains the missing ones on real 1..baseDigits problems (concurrently,
 * one worker thread each, with a progress bar per lineage) and saves them, so the next run loads.
 * Returns the folder of each lineage's base model.
 */
export async function ensureBaseModels(config: DemoConfig, out: DemoOutput): Promise<Map<number, string>> {
  const dirs = new Map<number, string>();
  const missing: number[] = [];
  for (const seed of config.recipe.seeds) {
    const dir = join(config.baseDir, lineageName(seed));
    dirs.set(seed, dir);
    if (await exists(join(dir, "model.safetensors"))) {
      try {
        await loadBase(dir, config.recipe);
      } catch (cause) {
        throw new AutodidactError(`base model ${dir} does not fit the recipe (delete it to re-train, or pass --base)`, Code.FailedPrecondition, { cause });
      }
    } else missing.push(seed);
  }
  if (missing.length === 0) return dirs;
  out.write(`training base models for ${missing.map(lineageName).join(", ")} on real 1..${config.recipe.baseDigits}-digit problems (${config.recipe.base.steps} steps each)\n`);
  await Promise.all(
    missing.map(async (seed) => {
      const host = createModelWorker({ name: `base-${seed}` });
      const bar = createProgressBar(out, `base ${lineageName(seed)}`, config.recipe.base.steps);
      try {
        const weights = await trainBase({ config: config.recipe, seed, host, onStep: (s, _total, loss) => bar.update(s, `loss ${loss.toFixed(3)}`) });
        bar.done();
        await saveBase(dirs.get(seed)!, { config: config.recipe, seed, weights, frontier: 0 });
      } finally {
        await host.close();
      }
    }),
  );
  return dirs;
}
