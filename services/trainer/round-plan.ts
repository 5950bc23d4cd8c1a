import { getTaskPack } from "../../src/domain/tasks/index.js";
import { getGamePack, isGameTask } from "../../src/domain/games/index.js";

/** A task's canonical name: a game pack's or a labelled task pack's (NotFound for neither). */
const taskName = (task: string): string => (isGameTask(task) ? getGamePack(task).name : getTaskPack(task).name);
import type { Registry } from "../../src/domain/registry/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { TrainingConfig } from "../../src/gen/autodidact/v1/training_pb.js";
import type { RoundJournal, RoundPlan } from "./round-journal.js";
import { resolveTraining, type ResolvedTraining, type TrainingDefaults } from "./training-config.js";
import type { TrainingSet } from "./training-set.js";

/** The trainer's configured defaults for a round (flags); a StartRound's TrainingConfig may override the training ones. */
export interface RoundDefaults {
  lineages: string[];
  /** Defaults of every TrainingConfig field (checked by {@link resolveTraining}). */
  training: TrainingDefaults;
  /** ORT intra-op threads of a training session (0 = ORT default). */
  threads: number;
  /** Game tasks: games in a round's training window (the newest accepted ones); default 1200. */
  gameWindow?: number;
}

/** What a caller asks for (StartRound fields; zero values and unset training fields mean "configured default"). */
export interface RoundRequest {
  round?: number;
  task: string;
  lineages?: string[];
  baseVersion?: number;
  maxSamples?: number;
  training?: TrainingConfig;
}

/** What planning a round reads: the journal, the registry (parents, round numbers) and the intake. */
export interface PlanSources {
  readonly registry: Registry;
  readonly journal: RoundJournal;
  readonly trainingSet: TrainingSet;
  readonly defaults: RoundDefaults;
}

/**
 * What makes a request another round than the journaled one with its number and lineages (the first
 * differing setting), or undefined when it is the same request again. A setting older journals do not
 * record is not compared; the parent only when the request names one (the promoted version moves
 * once the round's candidate is promoted).
 */
export function planMismatch(p: RoundPlan, req: RoundRequest, t: ResolvedTraining): string | undefined {
  if (p.task !== taskName(req.task)) return `task (${p.task})`;
  if ((req.maxSamples ?? 0) !== p.maxSamples) return `max_samples (${p.maxSamples})`;
  if (req.baseVersion !== undefined && req.baseVersion > 0 && p.lineages.some((l) => p.parents[l] !== req.baseVersion)) return "base version";
  const pairs: [keyof RoundPlan, unknown][] = [
    ["mode", t.mode], ["mixMode", t.mix], ["steps", t.steps], ["batchSize", t.batchSize], ["lr", t.lr], ["maxReuse", t.maxReuse],
    ["loraRank", t.loraRank], ["loraAlpha", t.loraAlpha], ["seed", t.seed], ["anchorRatio", t.anchorRatio],
    ["anchorMinDifficulty", t.anchorMinDifficulty], ["anchorMaxDifficulty", t.anchorMaxDifficulty], ["abortGradNorm", t.abortGradNorm],
    ["weightDecay", t.weightDecay], ["warmupSteps", t.warmupSteps], ["decayShare", t.decayShare], ["hardestShare", t.hardestShare], ["maxGradNorm", t.maxGradNorm],
  ];
  for (const [key, value] of pairs) if (p[key] !== undefined && p[key] !== value) return `${key} (${String(p[key])}, asked ${String(value)})`;
  return undefined;
}

/** The LoRA projections the trainer adapts (recorded in the manifest and the PEFT adapter config). */
export const LORA_TARGETS = ["q_proj", "v_proj"];

/** The manifest's record of how a candidate was trained (strings, as the registry's checkpoint metadata carries them). */
export function hyperparametersOf(p: RoundPlan, anchor: { min: number; max: number }, seed: string, steps: number): Record<string, string> {
  return {
    lr: String(p.lr),
    steps: String(steps),
    batch_size: String(p.batchSize),
    max_reuse: String(p.maxReuse),
    seed,
    mix: p.mixMode,
    mode: p.mode,
    anchor_ratio: String(p.anchorRatio),
    anchor_min_difficulty: String(anchor.min),
    anchor_max_difficulty: String(anchor.max),
    weight_decay: String(p.weightDecay ?? 0),
    warmup_steps: String(p.warmupSteps ?? 0),
    decay_share: String(p.decayShare ?? 0),
    max_grad_norm: String(p.maxGradNorm ?? 0),
    ...(p.hardestShare ? { hardest_share: String(p.hardestShare) } : {}),
    abort_grad_norm: String(p.abortGradNorm ?? 1e6),
    ...(p.mode === "lora" ? { lora_rank: String(p.loraRank), lora_alpha: String(p.loraAlpha), lora_targets: LORA_TARGETS.join(",") } : {}),
  };
}

/**
 * Plans a new round: its number (never below a round the registry knows, so numbers stay unique across
 * trainer data dirs), the slice of the intake it trains on, each lineage's parent and the resolved
 * training settings. Refuses a round number whose lineages already have a journaled round.
 */
export async function planRound(sources: PlanSources, req: RoundRequest): Promise<RoundPlan> {
  const { registry, journal, trainingSet, defaults } = sources;
  const pack = { name: taskName(req.task) };
  const t = resolveTraining(req.training, defaults.training);
  const lineages = req.lineages && req.lineages.length > 0 ? req.lineages : defaults.lineages;
  // Round numbers stay unique across trainer data dirs too: never below a round the registry knows.
  let known = journal.lastRound();
  for (const lineage of lineages) for (const r of await registry.listCheckpoints(lineage)) known = Math.max(known, r.round);
  const round = req.round && req.round > 0 ? req.round : known + 1;
  if (journal.atRound(round).some((r) => r.plan.lineages.some((l) => lineages.includes(l)))) {
    throw new AutodidactError(`round ${round} of ${lineages.join(", ")} already exists`, Code.AlreadyExists);
  }
  const to = trainingSet.count(pack.name);
  let from = 0;
  if (t.mix === "replace") {
    for (const r of journal.rounds()) if (r.plan.task === pack.name && r.end?.status === "done") from = Math.max(from, r.plan.to);
  }
  const parents: Record<string, number> = {};
  for (const lineage of lineages) {
    if (req.baseVersion && req.baseVersion > 0) {
      if ((await registry.getCheckpoint(lineage, req.baseVersion)) === undefined) {
        throw new AutodidactError(`base checkpoint ${lineage}@${req.baseVersion} is not in the registry`, Code.NotFound);
      }
      parents[lineage] = req.baseVersion;
    } else {
      const p = await registry.getPromoted(lineage);
      if (p === undefined) throw new AutodidactError(`lineage ${lineage} has no promoted checkpoint to train from`, Code.FailedPrecondition);
      parents[lineage] = p.version;
    }
  }
  return {
    round,
    task: pack.name,
    lineages,
    parents,
    mode: t.mode,
    mixMode: t.mix,
    from,
    to,
    maxSamples: req.maxSamples ?? 0,
    anchorRatio: t.anchorRatio,
    anchorMinDifficulty: t.anchorMinDifficulty,
    anchorMaxDifficulty: t.anchorMaxDifficulty,
    steps: t.steps,
    batchSize: t.batchSize,
    maxReuse: t.maxReuse,
    lr: t.lr,
    loraRank: t.loraRank,
    loraAlpha: t.loraAlpha,
    seed: t.seed,
    abortGradNorm: t.abortGradNorm,
    weightDecay: t.weightDecay,
    warmupSteps: t.warmupSteps,
    decayShare: t.decayShare,
    maxGradNorm: t.maxGradNorm,
    hardestShare: t.hardestShare,
  };
}
