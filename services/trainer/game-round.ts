// A training round of a game task: the lineage's policy/value network learns the search's visit
// distributions (soft targets) and the games' outcomes from a window of the most recent accepted
// games, each position also seen under the game's symmetries (Connect Four: the mirror image).
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createPolicyValueTrainer, createRng, loadPolicyValueModel, savePolicyValueModel, type PolicyValueStepResult } from "../../src/engine/index.js";
import { getGamePack, ReplayWindow, toPolicyValueBatch, type GameRecord } from "../../src/domain/games/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { CheckpointRecord } from "../../src/domain/registry/index.js";
import { listCheckpointFiles } from "../../src/domain/registry/index.js";
import { softwareVersion } from "../../src/platform/rpc/index.js";
import type { RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import type { CandidateFiles } from "./candidate.js";
import { allocateCandidateVersion, registerCandidate, sealCandidateFolder, stageCandidateFolder, type LineageContext } from "./lineage-round.js";
import type { RoundPlan, RoundState } from "./round-journal.js";
import { progress } from "./round-report.js";
import type { TrainingSample } from "./training-set.js";

/** Inputs of {@link trainGameRound}. */
export interface GameRoundInput {
  readonly plan: RoundPlan;
  readonly lineage: string;
  /** Accepted samples of the round's slice of the training set, oldest first. */
  readonly pool: readonly TrainingSample[];
  /** Folder of the parent checkpoint (materialized from the registry). */
  readonly parentDir: string;
  /** Games in the window: the newest accepted ones. */
  readonly windowGames: number;
  /** ORT intra-op threads of the training session (0 = ORT's choice). */
  readonly threads: number;
  /** Seed of the round's batch draws. */
  readonly seed: string;
  /** Called after each step (progress events, loss histogram). */
  readonly onStep: (r: PolicyValueStepResult, total: number) => void;
}

/**
 * Trains one lineage's policy/value network for a round and returns its files for registration.
 * FailedPrecondition when the pool holds no game of this task, the parent is another game's model,
 * or the round asks for LoRA (these networks have tens of thousands of weights and train in full).
 */
export async function trainGameRound(input: GameRoundInput): Promise<CandidateFiles> {
  const p = input.plan;
  const pack = getGamePack(p.task);
  if (p.mode === "lora") {
    throw new AutodidactError(`LoRA is not available for ${pack.name}'s policy/value network (it trains in full): set training.mode FULL`, Code.FailedPrecondition);
  }
  const games = input.pool.filter((s): s is TrainingSample & { game: GameRecord } => s.game !== undefined).slice(-input.windowGames);
  if (games.length === 0) throw new AutodidactError(`no accepted ${pack.name} games to train on`, Code.FailedPrecondition);
  const parent = await loadPolicyValueModel(input.parentDir);
  const madeFor = parent.extra["game"];
  if (madeFor !== undefined && madeFor !== pack.game.name) {
    throw new AutodidactError(`${input.lineage}@${p.parents[input.lineage]} is a ${String(madeFor)} model, not ${pack.game.name}`, Code.FailedPrecondition);
  }
  const window = new ReplayWindow(pack.game, games.length, true);
  window.add(games.map((s) => s.game));
  const steps = p.steps > 0 ? p.steps : Math.max(1, Math.ceil(window.positions / p.batchSize));
  const trainer = await createPolicyValueTrainer({
    config: parent.config,
    weights: parent.params,
    optimizer: { lr: p.lr, weightDecay: p.weightDecay ?? 0, ...(p.maxGradNorm ? { maxGradNorm: p.maxGradNorm } : {}), abortGradNorm: p.abortGradNorm ?? 1e6 },
    batchSize: p.batchSize,
    ...(input.threads > 0 ? { threads: input.threads } : {}),
  });
  const curve: PolicyValueStepResult[] = [];
  let params;
  try {
    const rng = createRng(input.seed);
    for (let i = 0; i < steps; i++) {
      const r = await trainer.step(toPolicyValueBatch(window.sample(rng, p.batchSize)));
      curve.push(r);
      input.onStep(r, steps);
    }
    params = await trainer.getWeights();
  } finally {
    await trainer.close();
  }
  const ids = games.map((s) => s.sampleId);
  const last = curve[curve.length - 1]!;
  const outcomes = { first: 0, second: 0, draw: 0 };
  for (const s of games) outcomes[s.game.outcome === 1 ? "first" : s.game.outcome === -1 ? "second" : "draw"]++;
  return {
    async write(dir, metadata) {
      await savePolicyValueModel(dir, { config: parent.config, params: params!, extra: { game: pack.game.name }, metadata });
      await writeFile(join(dir, "window.jsonl"), ids.map((id) => JSON.stringify({ sampleId: id })).join("\n") + "\n");
    },
    manifest: {
      game: pack.game.name,
      hyperparameters: {
        lr: String(p.lr),
        steps: String(steps),
        batch_size: String(p.batchSize),
        seed: input.seed,
        mode: p.mode,
        window_games: String(input.windowGames),
        weight_decay: String(p.weightDecay ?? 0),
        max_grad_norm: String(p.maxGradNorm ?? 0),
        symmetries: pack.game.symmetries.map((s) => s.name).join(","),
      },
      // Self-play has no real labelled data: the game's rules (the rules critic) are its only ground.
      mix: { syntheticCount: games.length, realCount: 0, realRatio: 0, anchorRatio: 0, mode: p.mixMode, trainingSetSlice: [p.from, p.to], games: games.length, positions: window.positions, outcomes },
      sampleIdsDigest: createHash("sha256").update(ids.join("\n")).digest("hex"),
      sampleCount: ids.length,
      mixLog: "window.jsonl",
      lossCurve: curve.map((c) => ({ step: c.step, loss: c.loss, policyLoss: c.policyLoss, valueLoss: c.valueLoss, learningRate: c.lr, gradNorm: c.gradNorm })),
      modelConfig: parent.config,
    },
    metrics: { final_loss: last.loss, policy_loss: last.policyLoss, value_loss: last.valueLoss, steps: curve.length, games: games.length, positions: window.positions },
  };
}

/** Trains a game lineage's round and registers its candidate: window → train → folder → registry. */
export async function trainGameLineage(ctx: LineageContext, p: RoundPlan, state: RoundState, lineage: string, emit: (e: RoundEvent) => void): Promise<CheckpointRecord> {
  const parent = p.parents[lineage]!;
  const pool = ctx.trainingSet.samples(p.task, p.from, p.to);
  const windowGames = ctx.defaults.gameWindow ?? 1200;
  emit(progress("mix", `${lineage}: ${pool.length} accepted games, window ${windowGames}`));
  const files = await trainGameRound({
    plan: p,
    lineage,
    pool,
    parentDir: await ctx.registry.materialize(lineage, parent),
    windowGames,
    threads: ctx.defaults.threads,
    seed: `${p.seed}:${p.task}:round-${p.round}:${lineage}`,
    onStep(r, total) {
      ctx.lossHistogram.record(r.loss, { lineage, task: p.task });
      emit(progress("train", `${lineage} step ${r.step}/${total}`, r.step, total, r.loss));
    },
  });
  emit(progress("checkpoint", `${lineage}: writing checkpoint`));
  const version = await allocateCandidateVersion(ctx, p, state, lineage);
  const { tmp, final } = await stageCandidateFolder(ctx, lineage, version);
  await files.write(tmp, { lineage, version: String(version), parent: String(parent), round: String(p.round) });
  const modelFiles = await listCheckpointFiles(tmp);
  const createdAt = new Date().toISOString();
  const manifest = {
    version,
    lineage,
    parentVersion: parent,
    round: p.round,
    task: p.task,
    adaptation: p.mode,
    ...files.manifest,
    files: modelFiles.map((f) => ({ name: f.name, sha256: f.sha256, sizeBytes: f.size })),
    createdAt,
    softwareVersion: softwareVersion(),
  };
  const listed = await sealCandidateFolder(tmp, final, manifest);
  emit(progress("publish", `${lineage}@${version}: uploading`));
  return registerCandidate(ctx, p, lineage, { version, path: final, manifest, files: listed, createdAt }, files.metrics);
}
