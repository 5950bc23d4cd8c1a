import { readFile } from "node:fs/promises";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { checkConfig, recipes, type SelfImprovementConfig } from "../experiment/index.js";
import { demoTask } from "./demo-tasks.js";

/**
 * Everything one demo run is made of: the self-improvement recipe (task, lineages, model shape,
 * rounds, samples, training phases — the same plain data the in-process experiment uses) plus
 * what the mesh adds on top (which critics vote, the consensus rule, the gate).
 */
export interface DemoConfig {
  readonly recipe: SelfImprovementConfig;
  /** Folder holding `lineage-<seed>/` base models (trained and saved when missing). */
  readonly baseDir: string;
  /** Model critics that must agree with the generator's label (of `seeds.length - 1`). */
  readonly modelApprovals: number;
  /**
   * A model critic's answer counts as agreeing only when its least likely token has at least this
   * log-prob (null: any). The lineages learn from the same accepted data and at the edge of their
   * reach agree on some wrong labels; they are less sure of those.
   */
  readonly modelMinLogprob: number | null;
  /** Rules critic (the task's format and length filter) with a veto. */
  readonly rulesCritic: boolean;
  /** Novelty critic (drops near-duplicates of accepted samples) with a veto. */
  readonly noveltyCritic: boolean;
  /** Jaccard similarity of character 3-grams above which the novelty critic calls a duplicate. */
  readonly noveltyThreshold: number;
  /** Gate: no length may lose more than this accuracy versus the promoted parent. */
  readonly maxLengthRegression: number;
  /** Gate: minimum change of overall validation accuracy versus the parent (may be negative). */
  readonly minAccuracyDelta: number;
  /**
   * Gate beyond the validation range (label-free): fresh unlabelled problems per length, up to the
   * candidate's hardest training length, on which its agreement with the other lineages' promoted
   * models may not fall more than `maxAgreementRegression` below the incumbent's (0: no such check).
   */
  readonly labelFreeProbeSize: number;
  readonly maxAgreementRegression: number;
  /**
   * How the conductor chooses each round's length, from label-free facts only: `agreement` (probe
   * `probeSize` fresh unlabelled problems per length after every gate; label the first length where the
   * model critics agree with the generator on fewer than `minAgreement` of them) or `fixed-step` (one
   * digit longer every round, Lee et al. 2025's schedule).
   */
  readonly curriculum: "agreement" | "fixed-step";
  readonly minAgreement: number;
  readonly probeSize: number;
  /** The run's seed (proposals, probes, training mixes); `--seed`. */
  readonly seed: number;
  /**
   * Temperature-1 answers the monitor samples per length for its diversity and drift signals (0: one per
   * held-out problem). Sampling decodes token by token and was half of every gate's time at 128.
   */
  readonly evalSamples: number;
  /**
   * Share of every training batch's synthetic slots taken from the longest length in the accepted pool
   * (the one being learned), the rest from the shorter lengths (trainer hyperparameter `hardest_share`;
   * 0: uniform over the pool, where a round's new labels are one length of many and seen about once).
   */
  readonly hardestShare: number;
  /** Seconds to wait for all of a round's decisions before giving up on the stragglers. */
  readonly decisionTimeoutSec: number;
}

/**
 * `--quick`: the default recipe's path with the same (shipped) base models, made small — 2 rounds
 * of 64 proposals, 40 training steps, 16 held-out problems per length and split — so the CI run
 * through the whole mesh and its conductor takes about a minute.
 */
export function quickDemoRecipe(): SelfImprovementConfig {
  const d = recipes.default;
  return { ...d, rounds: 2, samplesPerRound: 64, round: { ...d.round, steps: 40, warmupSteps: 4 }, evalSize: 16 };
}

/** The demo's defaults around a recipe. */
export function defaultDemoConfig(recipe: SelfImprovementConfig, baseDir: string, quick = false): DemoConfig {
  return {
    recipe,
    baseDir,
    // Every other lineage must give the generator's answer: the cleanest labels (wrong answers rarely agree).
    modelApprovals: Math.max(1, recipe.seeds.length - 1),
    modelMinLogprob: null,
    rulesCritic: true,
    // Off: 3-gram Jaccard >= 0.95 rejects only exact duplicates on this task (nothing to filter).
    noveltyCritic: false,
    noveltyThreshold: 0.95,
    // Easy tails kept: on the 20 validation problems of 1-digit addition two more errors (0.10) reject,
    // one does not (at 0.04 one miss held the generator lineage back for two rounds, docs/results.md);
    // on the 128 of a longer length up to 7 do.
    maxLengthRegression: 0.06,
    curriculum: "agreement",
    // 0.85 labelled 13 and 14 digits two and three times each (agreement 83-84 %) in seed 1's 11 rounds.
    minAgreement: 0.8,
    probeSize: quick ? 16 : 128,
    seed: 1,
    minAccuracyDelta: -0.02,
    labelFreeProbeSize: quick ? 8 : 64,
    maxAgreementRegression: 0.05,
    // Diversity and drift are not gated on here; a few samples per length keep them on the dashboard.
    evalSamples: quick ? 4 : 8,
    hardestShare: 0.33,
    decisionTimeoutSec: 300,
  };
}

/** Lineage name of a seed, as registered in the mesh (`lineage-1`). */
export const lineageName = (seed: number): string => `lineage-${seed}`;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Deep-merges `patch` into `base` (objects merge, everything else replaces). */
function merge<T>(base: T, patch: unknown): T {
  if (!isRecord(base) || !isRecord(patch)) return patch as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = k in out ? merge(out[k], v) : v;
  return out as T;
}

/** Parses a `--set key=value` override: dotted key, value as JSON when it parses, else a string or list. */
export function parseOverride(arg: string): Record<string, unknown> {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new AutodidactError(`--set wants key=value, got ${JSON.stringify(arg)}`, Code.InvalidArgument);
  const path = arg.slice(0, eq).split(".");
  const raw = arg.slice(eq + 1);
  let value: unknown;
  if (/^-?[0-9.]+(,-?[0-9.]+)+$/.test(raw)) value = raw.split(",").map(Number);
  else {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
  }
  const out: Record<string, unknown> = {};
  let at = out;
  path.forEach((key, i) => {
    if (i === path.length - 1) at[key] = value;
    else at = at[key] = {} as Record<string, unknown>;
  });
  return out;
}

/**
 * Applies `--set key=value` overrides to a recipe alone (the scripts that train base models or run
 * the in-process experiment take the same overrides as the demo); checked before it is returned.
 */
export function overrideRecipe(recipe: SelfImprovementConfig, overrides: readonly string[]): SelfImprovementConfig {
  const out = overrides.reduce((c, s) => merge(c, parseOverride(s)), recipe);
  checkConfig(out);
  return out;
}

/**
 * Resolves the configuration of a demo: the task's recipe (`addition` by default) and its demo defaults, then the config file (JSON, the same shape
 * as {@link DemoConfig} with any subset of fields), then `--set` overrides; checked before anything starts.
 */
export async function resolveDemoConfig(o: { quick: boolean; baseDir: string; configFile?: string; overrides: readonly string[]; task?: string }): Promise<DemoConfig> {
  const task = demoTask(o.task ?? "addition");
  let config: DemoConfig = { ...defaultDemoConfig(o.quick ? task.quick : task.recipe, o.baseDir, o.quick), ...task.config };
  if (o.configFile !== undefined) {
    let text: string;
    try {
      text = await readFile(o.configFile, "utf8");
    } catch (cause) {
      throw new AutodidactError(`cannot read config file ${o.configFile}`, Code.InvalidArgument, { cause });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new AutodidactError(`config file ${o.configFile} is not valid JSON`, Code.InvalidArgument, { cause });
    }
    if (!isRecord(parsed)) throw new AutodidactError(`config file ${o.configFile} must hold a JSON object`, Code.InvalidArgument);
    config = merge(config, parsed);
  }
  for (const s of o.overrides) {
    const patch = parseOverride(s);
    // A recipe field may be set without the `recipe.` prefix (`--set rounds=3`).
    const [key] = Object.keys(patch);
    config = key !== undefined && !(key in config) ? merge(config, { recipe: patch }) : merge(config, patch);
  }
  checkDemoConfig(config);
  return config;
}

/** Checks a demo configuration; InvalidArgument naming the field. */
export function checkDemoConfig(c: DemoConfig): void {
  checkConfig(c.recipe);
  const bad = (msg: string): never => {
    throw new AutodidactError(`demo config: ${msg}`, Code.InvalidArgument);
  };
  if (c.recipe.rounds < 1) bad("recipe.rounds must be >= 1 (the run's stop rule)");
  if (c.recipe.seeds.length < 2) bad("recipe.seeds needs at least 2 lineages (a generator and a model critic)");
  if (!(Number.isInteger(c.modelApprovals) && c.modelApprovals >= 1 && c.modelApprovals <= c.recipe.seeds.length - 1)) {
    bad(`modelApprovals must be an integer in 1..${c.recipe.seeds.length - 1} (model critics)`);
  }
  if (!(c.noveltyThreshold > 0 && c.noveltyThreshold <= 1)) bad("noveltyThreshold must be in (0, 1]");
  if (c.modelMinLogprob !== null && !(typeof c.modelMinLogprob === "number" && c.modelMinLogprob <= 0)) bad("modelMinLogprob must be a log-probability (<= 0) or null");
  if (!(c.maxLengthRegression >= 0)) bad("maxLengthRegression must be >= 0");
  if (!Number.isFinite(c.minAccuracyDelta)) bad("minAccuracyDelta must be a number");
  if (!(Number.isInteger(c.labelFreeProbeSize) && c.labelFreeProbeSize >= 0 && c.labelFreeProbeSize <= 4096)) bad("labelFreeProbeSize must be an integer in 0..4096");
  if (!(c.maxAgreementRegression >= 0 && c.maxAgreementRegression <= 1)) bad("maxAgreementRegression must be in [0, 1]");
  if (!(c.decisionTimeoutSec > 0)) bad("decisionTimeoutSec must be > 0");
  if (!(Number.isInteger(c.evalSamples) && c.evalSamples >= 0)) bad("evalSamples must be an integer >= 0");
  if (!(c.hardestShare >= 0 && c.hardestShare < 1)) bad("hardestShare must be in [0, 1)");
  if (c.curriculum !== "agreement" && c.curriculum !== "fixed-step") bad(`curriculum must be "agreement" or "fixed-step", got ${JSON.stringify(c.curriculum)}`);
  if (!(c.minAgreement > 0 && c.minAgreement <= 1)) bad("minAgreement must be in (0, 1]");
  if (!(Number.isInteger(c.probeSize) && c.probeSize >= 1 && c.probeSize <= 4096)) bad("probeSize must be an integer in 1..4096");
  if (!(Number.isInteger(c.seed) && c.seed >= 0)) bad("seed must be an integer >= 0");
  if (c.recipe.samplesPerRound < 1 || c.recipe.samplesPerRound > 4096) bad("recipe.samplesPerRound must be in 1..4096 (one Generate call of the conductor)");
}
