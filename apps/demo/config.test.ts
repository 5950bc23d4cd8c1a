import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { recipes } from "../experiment/index.js";
import { demoMembers, VARIANTS } from "./run-demo.js";
import { overrideRecipe, parseOverride, quickDemoRecipe, resolveDemoConfig } from "./config.js";
import { selectVariants } from "./demo-command.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "demo-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("demo configuration", () => {
  it("parses --set overrides: dotted keys, numbers, lists, JSON and plain strings", () => {
    expect(parseOverride("round.steps=300")).toEqual({ round: { steps: 300 } });
    expect(parseOverride("seeds=4,5,6")).toEqual({ seeds: [4, 5, 6] });
    expect(parseOverride("data=replace")).toEqual({ data: "replace" });
    expect(parseOverride('model={"numLayers":3}')).toEqual({ model: { numLayers: 3 } });
    expect(() => parseOverride("nokey")).toThrow(AutodidactError);
  });

  it("overrides a recipe alone (the train-base and self-improve scripts) and checks the result", () => {
    const width = recipes.default.model.hiddenSize;
    const r = overrideRecipe(recipes.default, [`model.hiddenSize=${2 * width}`, "seeds=[7]"]);
    expect(r.model).toEqual({ ...recipes.default.model, hiddenSize: 2 * width });
    expect(r.seeds).toEqual([7]);
    expect(recipes.default.model.hiddenSize).toBe(width);
    expect(() => overrideRecipe(recipes.default, ["rounds=40"])).toThrow(/maxPositions/);
  });

  it("layers recipe, config file and overrides; recipe fields may be set without the recipe. prefix", async () => {
    const file = join(dir, "run.json");
    await writeFile(file, JSON.stringify({ modelApprovals: 2, recipe: { rounds: 4, round: { steps: 50 } } }));
    const c = await resolveDemoConfig({ quick: true, baseDir: "/b", configFile: file, overrides: ["samplesPerRound=32", "round.lr=0.002"] });
    expect(c.modelApprovals).toBe(2);
    expect(c.recipe.rounds).toBe(4);
    expect(c.recipe.samplesPerRound).toBe(32);
    expect(c.recipe.round.steps).toBe(50);
    expect(c.recipe.round.lr).toBe(0.002);
    // Untouched fields keep the quick recipe's values.
    expect(c.recipe.round.batchSize).toBe(quickDemoRecipe().round.batchSize);
    // --quick runs the default recipe's models (the shipped bases), only smaller.
    expect(c.recipe.model).toEqual(recipes.default.model);
    expect(c.recipe.baseDigits).toBe(recipes.default.baseDigits);
  });

  it("refuses a bad configuration with InvalidArgument naming the field, before anything starts", async () => {
    const bad = async (overrides: string[]): Promise<AutodidactError> => {
      try {
        await resolveDemoConfig({ quick: true, baseDir: "/b", overrides });
      } catch (err) {
        return err as AutodidactError;
      }
      throw new Error(`accepted ${overrides.join(" ")}`);
    };
    for (const [o, field] of [
      [["modelApprovals=3"], "modelApprovals"],
      [["seeds=[1]"], "seeds"],
      [["samplesPerRound=0"], "samplesPerRound"],
      [["round.lr=-1"], "round.lr"],
      [["advance=sometimes"], "advance"],
    ] as const) {
      const err = await bad([...o]);
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toContain(field);
    }
    const missing = await resolveDemoConfig({ quick: true, baseDir: "/b", configFile: join(dir, "nope.json"), overrides: [] }).catch((e: AutodidactError) => e);
    expect((missing as AutodidactError).code).toBe(Code.InvalidArgument);
  });

  it("selects the runs from the flags", () => {
    expect(selectVariants({ consensus: true }).map((v) => v.name)).toEqual(["default"]);
    expect(selectVariants({ consensus: false }).map((v) => v.name)).toEqual(["no-consensus"]);
    expect(selectVariants({ consensus: true, replace: true }).map((v) => v.name)).toEqual(["replace"]);
    expect(selectVariants({ consensus: true, all: true }).map((v) => v.name)).toEqual(["default", "no-consensus", "replace"]);
  });

  it("builds the mesh: model critics for every lineage but the generator's, vetoes, a trainer per lineage; the ablation only an accept-all critic", async () => {
    const c = await resolveDemoConfig({ quick: true, baseDir: "/b", overrides: ["seeds=7,8,9,10"] });
    const names = demoMembers(c, VARIANTS.default, "/s").map((m) => m.name);
    expect(names).toEqual([
      "generator",
      "critic-lineage-8",
      "critic-lineage-9",
      "critic-lineage-10",
      "critic-rules",
      "critic-novelty",
      "trainer-lineage-7",
      "trainer-lineage-8",
      "trainer-lineage-9",
      "trainer-lineage-10",
      "monitor",
    ]);
    const ablation = demoMembers(c, VARIANTS["no-consensus"], "/s");
    expect(ablation.filter((m) => m.kind === "critic").map((m) => m.name)).toEqual(["critic-accept-all"]);
    const trainer = demoMembers(c, VARIANTS.replace, "/s").find((m) => m.name === "trainer-lineage-7")!;
    expect(trainer.args).toEqual(expect.arrayContaining(["--mix", "replace", "--anchor-max-difficulty", String(c.recipe.baseDigits)]));
  });
});
