// The demo's run, as the conductor's typed run spec: built from the demo configuration and the variant,
// checked by the conductor's own normalizeRunSpec (the one place a spec is checked) before the mesh
// starts. Everything the loop does — which length each round labels, who judges, how batches mix, what
// the gate may read — is in this spec; the demo itself only watches and reports.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CurriculumPolicy_Kind, RunSpecSchema, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, TimeoutOutcome, type ConsensusPolicySchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { AdaptationMode, DataMix } from "../../src/gen/autodidact/v1/training_pb.js";
import { normalizeRunSpec } from "../../services/conductor/index.js";
import { lineageName, type DemoConfig } from "./config.js";
import { taskMinDifficulty } from "./demo-tasks.js";
import type { RunVariant } from "./variants.js";

/** Critic id of the model critic judging with `lineage`'s promoted model. */
export const modelCriticId = (lineage: string): string => `model-${lineage}`;
/** Critic ids of the demo's other critics. */
export const CRITIC_IDS = Object.freeze({ rules: "rules", novelty: "novelty", acceptAll: "accept-all" });

/** The longest length the run may reach: the base range, one digit per round, and the next. */
export const longestLength = (c: DemoConfig): number => c.recipe.baseDigits + c.recipe.rounds + 1;

/** The run's id: variant and seed, so seeded runs and ablations never collide in one mesh. */
export const demoRunId = (c: DemoConfig, v: RunVariant): string => `demo-${v.name}-s${c.seed}`;

/** The critics the run lists: a model critic per lineage but the generator's, the vetoes, and the accept-all critic of the ablation. */
function critics(c: DemoConfig, v: RunVariant): RunSpec["critics"] {
  const lineages = c.recipe.seeds.map(lineageName);
  // Model critics run in every variant: the AGREEMENT curriculum measures their agreement (label-free).
  const out: { id: string; kind: string; lineage?: string }[] = lineages.slice(1).map((l) => ({ id: modelCriticId(l), kind: "model", lineage: l }));
  if (v.consensus) {
    if (c.rulesCritic) out.push({ id: CRITIC_IDS.rules, kind: "rules" });
    if (c.noveltyCritic) out.push({ id: CRITIC_IDS.novelty, kind: "novelty" });
  } else out.push({ id: CRITIC_IDS.acceptAll, kind: "accept-all" });
  return out.map((x) => create(RunSpecSchema.field.critics.message!, x) as RunSpec["critics"][number]);
}

/** The consensus policy: vetoes plus `modelApprovals` model critics giving the generator's answer; or accept everything (the ablation). */
function consensus(c: DemoConfig, v: RunVariant): MessageInitShape<typeof ConsensusPolicySchema> {
  const timeoutMs = BigInt(c.decisionTimeoutSec * 1000);
  if (!v.consensus) {
    return { kind: ConsensusKind.K_OF_N, critics: [CRITIC_IDS.acceptAll], k: 1, timeoutMs, onTimeout: TimeoutOutcome.ACCEPT_ALL, note: `demo ${v.name}: no filtering (ablation)` };
  }
  const models = c.recipe.seeds.slice(1).map((s) => modelCriticId(lineageName(s)));
  const vetoes = [...(c.rulesCritic ? [CRITIC_IDS.rules] : []), ...(c.noveltyCritic ? [CRITIC_IDS.novelty] : [])];
  return {
    kind: ConsensusKind.K_OF_N,
    critics: [...models, ...vetoes],
    requiredCritics: vetoes,
    k: c.modelApprovals + vetoes.length,
    timeoutMs,
    onTimeout: TimeoutOutcome.REJECT,
    note: `demo ${v.name}: ${vetoes.join(" + ") || "no"} veto; ${c.modelApprovals} of ${models.length} model critics must give the generator's answer`,
  };
}

/** The labels regime: anchor and validation in the base range (validation everywhere only as the named ablation), test at every length. */
function labels(c: DemoConfig, v: RunVariant): NonNullable<RunSpec["labels"]> {
  const min = taskMinDifficulty(c.recipe);
  const base = { min, max: c.recipe.baseDigits };
  const all = { min, max: longestLength(c) };
  return create(RunSpecSchema.field.labels.message!, {
    anchor: base,
    validation: v.labels === "all" ? all : base,
    test: all,
    validationSize: c.recipe.evalSize,
    testSize: c.recipe.evalSize,
    ablationValidationBeyondAnchor: v.labels === "all",
  }) as NonNullable<RunSpec["labels"]>;
}

/** The training config of every round (the trainers' flags fill nothing the spec says). */
function training(c: DemoConfig, v: RunVariant): NonNullable<RunSpec["training"]> {
  const r = c.recipe;
  return create(RunSpecSchema.field.training.message!, {
    mode: r.mode === "full" ? AdaptationMode.FULL : AdaptationMode.LORA,
    mix: v.data === "replace" ? DataMix.REPLACE : DataMix.ACCUMULATE,
    steps: BigInt(r.round.steps),
    batchSize: r.round.batchSize,
    learningRate: r.round.lr,
    weightDecay: r.round.weightDecay,
    warmupSteps: r.round.warmupSteps,
    decayShare: r.round.decayShare,
    maxGradNorm: 1,
    maxReuse: 1_000_000,
    hardestShare: c.hardestShare,
    seed: `demo:${c.seed}`,
    anchor: { ratio: r.anchorShare, minDifficulty: taskMinDifficulty(r), maxDifficulty: r.baseDigits },
  }) as NonNullable<RunSpec["training"]>;
}

/**
 * The run spec of one demo run: the task, the lineages with their shipped base models (folders of the
 * conductor's models directory), the curriculum, critics, consensus, training, gate, labels regime and
 * stop rule; normalized (and so checked) by the conductor's own rules.
 */
export function demoRunSpec(c: DemoConfig, v: RunVariant): RunSpec {
  const r = c.recipe;
  const spec = create(RunSpecSchema, {
    name: demoRunId(c, v),
    task: r.task,
    lineages: r.seeds.map((s) => ({ name: lineageName(s), baseModel: lineageName(s) })),
    curriculum: {
      kind: c.curriculum === "fixed-step" ? CurriculumPolicy_Kind.FIXED_STEP : CurriculumPolicy_Kind.AGREEMENT,
      start: r.baseDigits + 1,
      max: longestLength(c),
      minAgreement: c.minAgreement,
      probeSize: c.probeSize,
    },
    proposalsPerRound: r.samplesPerRound,
    stop: { maxRounds: r.rounds },
    critics: critics(c, v),
    consensus: consensus(c, v),
    training: training(c, v),
    gate: {
      minAccuracyDelta: c.minAccuracyDelta,
      maxDifficultyRegression: c.maxLengthRegression,
      maxCalibrationEce: 1,
      maxOverconfidentWrongRate: 1,
      minDiversityRatio: 0,
      minTailCoverage: 0,
      maxDriftKl: 1000,
      autoPromote: true,
      autoRollback: false,
      // Beyond the validation range: the candidate's agreement with the other lineages (label-free).
      labelFreeProbeSize: c.labelFreeProbeSize,
      maxAgreementRegression: c.maxAgreementRegression,
      note: `demo ${v.name}: promote unless validation accuracy drops (overall by more than ${-c.minAccuracyDelta}, any length by more than ${c.maxLengthRegression}) or, beyond it, agreement with the other lineages by more than ${c.maxAgreementRegression}`,
    },
    labels: labels(c, v),
    seed: BigInt(c.seed),
    decisionTimeoutSeconds: c.decisionTimeoutSec,
    temperature: 0,
  });
  return normalizeRunSpec(spec);
}
