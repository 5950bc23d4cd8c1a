import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { recipes } from "../experiment/index.js";
import { demoMembers } from "./members.js";
import { overrideRecipe, parseOverride, quickDemoRecipe, resolveDemoConfig } from "./config.js";
import { selectVariants, VARIANTS } from "./variants.js";
import { demoRunSpec, longestLength } from "./run-spec.js";
import { CurriculumPolicy_Kind } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { TimeoutOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";

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
      [["curriculum=sometimes"], "curriculum"],
      [["seed=-1"], "seed"],
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
    expect(selectVariants({ consensus: true, labels: "validation-all" }).map((v) => v.name)).toEqual(["validation-all"]);
    expect(selectVariants({ consensus: false, labels: "validation-all" })[0]).toMatchObject({ name: "no-consensus-validation-all", consensus: false, labels: "all" });
    expect(selectVariants({ consensus: true, all: true }).map((v) => v.name)).toEqual(["default", "no-consensus", "validation-all"]);
  });

  it("builds the mesh: model critics for every lineage but the generator's, vetoes, a trainer per lineage, monitor, conductor; the ablation an accept-all critic beside the model critics", async () => {
    const c = await resolveDemoConfig({ quick: true, baseDir: "/b", overrides: ["seeds=7,8,9,10", "noveltyCritic=true"] });
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
      "conductor",
    ]);
    const ablation = demoMembers(c, VARIANTS["no-consensus"], "/s");
    expect(ablation.filter((m) => m.kind === "critic").map((m) => m.name)).toEqual(["critic-lineage-8", "critic-lineage-9", "critic-lineage-10", "critic-accept-all"]);
  });
});

describe("the demo's run spec", () => {
  it("default: validation labels only in the base range, test at every length, the AGREEMENT curriculum from one digit past the base", async () => {
    const c = await resolveDemoConfig({ quick: false, baseDir: "/b", overrides: ["seed=4"] });
    const spec = demoRunSpec(c, VARIANTS.default);
    const base = c.recipe.baseDigits;
    expect(spec.name).toBe("demo-default-s4");
    expect(spec.seed).toBe(4n);
    expect(spec.labels).toMatchObject({ anchor: { min: 1, max: base }, validation: { min: 1, max: base }, test: { min: 1, max: longestLength(c) }, ablationValidationBeyondAnchor: false });
    expect(spec.curriculum).toMatchObject({ kind: CurriculumPolicy_Kind.AGREEMENT, start: base + 1 });
    expect(spec.training?.anchor).toMatchObject({ minDifficulty: 1, maxDifficulty: base });
    expect(spec.consensus?.requiredCritics).toEqual(["rules"]);
    expect(spec.stop?.maxRounds).toBe(c.recipe.rounds);
  });

  it("ablations: validation-all is the named ablation field; no-consensus accepts through an accept-all critic only", async () => {
    const c = await resolveDemoConfig({ quick: true, baseDir: "/b", overrides: [] });
    const all = demoRunSpec(c, VARIANTS["validation-all"]);
    expect(all.labels).toMatchObject({ validation: { min: 1, max: longestLength(c) }, ablationValidationBeyondAnchor: true });
    const none = demoRunSpec(c, VARIANTS["no-consensus"]);
    expect(none.consensus).toMatchObject({ critics: ["accept-all"], k: 1, onTimeout: TimeoutOutcome.ACCEPT_ALL });
    expect(none.critics.map((x) => x.kind)).toEqual(["model", "model", "accept-all"]);
  });
});
