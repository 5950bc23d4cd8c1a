// The tasks `autodidact demo --task <name>` knows: each is a recipe (the default and the quick one), the
// folder of its shipped base models, and what its demo configuration changes from the defaults.
import { getTaskPack } from "../../src/domain/tasks/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { recipes, type SelfImprovementConfig } from "../experiment/index.js";
import type { DemoConfig } from "./config.js";

/** One task of the demo. */
export interface DemoTask {
  /** The recipe of a full run. */
  readonly recipe: SelfImprovementConfig;
  /** The recipe of `--quick` (same base models, few rounds, samples and steps). */
  readonly quick: SelfImprovementConfig;
  /** Folder of the shipped base models under models/ (`npm run train-base -- <recipe>` re-creates it). */
  readonly baseDir: string;
  /** Changes to the demo's defaults for this task (applied before a config file and --set). */
  readonly config: Partial<Omit<DemoConfig, "recipe" | "baseDir">>;
}

const quickOf = (r: SelfImprovementConfig, evalSize: number): SelfImprovementConfig => ({
  ...r,
  rounds: 2,
  samplesPerRound: 64,
  round: { ...r.round, steps: 40, warmupSteps: 4 },
  evalSize,
});

/**
 * `addition`: reversed addition (Lee et al. 2025), the default. `g2p`: grapheme-to-phoneme on the CMU
 * dictionary (real data): bases know 3..6-letter words; each round labels words one letter longer
 * (fixed step: the lineages' agreement on real words stays far below the addition threshold, so the
 * agreement curriculum would label 7 letters forever); the model critics count an answer as agreeing
 * only when they are sure of every phoneme (two lineages trained on the same words agree on many wrong
 * pronunciations, less surely); the gate tolerates validation noise of 128 words per length.
 */
export const DEMO_TASKS: Readonly<Record<string, DemoTask>> = Object.freeze({
  addition: { recipe: recipes.default, quick: quickOf(recipes.default, 16), baseDir: "addition-base", config: {} },
  g2p: {
    recipe: { ...recipes.g2p, evalSize: 128 },
    quick: quickOf(recipes.g2p, 16),
    baseDir: "g2p-base",
    config: { curriculum: "fixed-step", modelMinLogprob: -0.5, minAccuracyDelta: -0.03, maxLengthRegression: 0.1 },
  },
});

/** The demo task of a name; InvalidArgument naming the known ones. */
export function demoTask(name: string): DemoTask {
  const t = DEMO_TASKS[name];
  if (t === undefined) throw new AutodidactError(`unknown demo task ${JSON.stringify(name)}, known: ${Object.keys(DEMO_TASKS).join(", ")}`, Code.InvalidArgument);
  return t;
}

/** Lowest difficulty of a recipe's task (1 digit for addition, 3 letters for g2p): where labels and anchors start. */
export function taskMinDifficulty(recipe: SelfImprovementConfig): number {
  return getTaskPack(recipe.task).difficulty.min;
}
