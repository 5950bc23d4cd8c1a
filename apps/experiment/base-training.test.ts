import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createModelWorker } from "../../src/engine/index.js";
import { createTaskTokenizer, getTaskPack } from "../../src/domain/tasks/index.js";
import {
  accuracyByLength,
  DEFAULT_RECIPE,
  frontierOf,
  loadBase,
  modelConfig,
  QUICK_RECIPE,
  recipeTask,
  trainBase,
  withGenerator,
} from "./index.js";

const pack = getTaskPack("addition");

describe("frontierOf", () => {
  it("is the longest contiguous run of mastered lengths from 1", () => {
    const acc = [0.99, 0.97, 0.9, 0.99].map((accuracy, i) => ({ length: i + 1, accuracy }));
    expect(frontierOf(acc, 0.95)).toBe(2);
    expect(frontierOf(acc, 0.85)).toBe(4);
  });
});

describe("quick recipe base training", () => {
  it(
    "reaches the stated accuracy on held-out short additions",
    async () => {
      const host = createModelWorker({ name: "experiment-test" });
      try {
        const seed = QUICK_RECIPE.seeds[0] as number;
        const weights = await trainBase({ config: QUICK_RECIPE, seed, host });
        const tokenizer = createTaskTokenizer(pack);
        const mc = modelConfig(QUICK_RECIPE.model, tokenizer);
        const task = recipeTask(QUICK_RECIPE.task);
        const acc = await withGenerator({ name: "t", seed, host, weights }, mc, tokenizer, 2, (g) =>
          accuracyByLength(g, task, [QUICK_RECIPE.baseDigits], 64, QUICK_RECIPE.bos),
        );
        console.log(`quick base accuracy at ${QUICK_RECIPE.baseDigits} digits: ${acc[0]?.accuracy}`);
        // The quick recipe states: >= 90% exact match on held-out problems of its longest base length.
        expect(acc[0]?.accuracy).toBeGreaterThanOrEqual(0.9);
      } finally {
        await host.close();
      }
    },
    600_000,
  );
});

describe("shipped base checkpoints (models/addition-base)", () => {
  it(
    "load with the default recipe's shape; most are exact on their lengths, none two digits further",
    async () => {
      const c = DEFAULT_RECIPE;
      const task = recipeTask(c.task);
      const tokenizer = createTaskTokenizer(task);
      const mc = modelConfig(c.model, tokenizer);
      const host = createModelWorker({ name: "experiment-shipped" });
      let exact = 0;
      try {
        for (const seed of c.seeds) {
          const base = await loadBase(join("models", "addition-base", `lineage-${seed}`), c);
          expect(base.seed).toBe(seed);
          const acc = await withGenerator({ name: `lineage-${seed}`, seed, host, weights: base.weights }, mc, tokenizer, 1, (g) =>
            accuracyByLength(g, task, [c.baseDigits, c.baseDigits + 2], 64, c.bos),
          );
          if ((acc[0]?.accuracy ?? 0) >= 0.95) exact++;
          // The recipe's premise: a frontier the rounds must extend.
          expect(acc[1]?.accuracy).toBeLessThan(0.5);
        }
        // A majority of lineages masters the base lengths, so 2-of-3 votes can agree (README: lineage-2 did not converge).
        expect(exact).toBeGreaterThanOrEqual(Math.ceil(c.seeds.length / 2));
      } finally {
        await host.close();
      }
    },
    600_000,
  );
});
