import { toBinary } from "@bufbuild/protobuf";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Histogram } from "@opentelemetry/api";
import type { Bus } from "../../src/platform/bus/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { createTrainer, loadModel, loraSites, makeBatch, peftTargetModules, saveHfModel, saveModel, type Example, type LoadedModel, type StepResult, type Trainer } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { CheckpointRefSchema } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import type { RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { checkpointRefOf, listCheckpointFiles, type CheckpointRecord, type Registry } from "../../src/domain/registry/index.js";
import { softwareVersion } from "../../src/platform/rpc/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import { getTaskPack, taskIdentity, type TaskExample, type TaskPack } from "../../src/domain/tasks/index.js";
import { buildMix, type Mix } from "./mix.js";
import { isGameTask } from "../../src/domain/games/index.js";
import { trainGameLineage } from "./game-round.js";
import type { RoundJournal, RoundPlan, RoundState } from "./round-journal.js";
import { hyperparametersOf, LORA_TARGETS, type RoundDefaults } from "./round-plan.js";
import { progress } from "./round-report.js";
import { retryTransient } from "./retry-transient.js";
import type { TrainingSample, TrainingSet } from "./training-set.js";

/** What training one lineage of a round uses: the stores it reads and writes, and where it reports. */
export interface LineageContext {
  readonly bus: Bus;
  readonly registry: Registry;
  readonly trainingSet: TrainingSet;
  readonly journal: RoundJournal;
  readonly dataDir: string;
  readonly defaults: RoundDefaults;
  readonly logger: Logger;
  readonly lossHistogram: Histogram;
}

/** A lineage's training mix for one round, as written to its mix log. */
interface LineageMix {
  readonly pack: TaskPack;
  readonly seed: string;
  readonly mix: Mix<TrainingSample>;
  readonly mixLog: string;
  readonly anchor: { readonly min: number; readonly max: number };
  /** Accepted samples the mix draws from (after `max_samples`). */
  readonly poolSize: number;
}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** Announces a registered candidate; its CheckpointRef is the registry's conversion of the record. */
export async function publishCandidate(bus: Bus, record: CheckpointRecord): Promise<void> {
  const ref = checkpointRefOf(record);
  await bus.publish(Subjects.checkpoints("candidate"), toBinary(CheckpointRefSchema, ref), { msgId: `${record.lineage}@${record.version}` });
}

/** Token examples of one batch: prompt (with bos) and the training continuation of each item. */
function examplesOf(
  pack: TaskPack,
  tokenizer: { encode(text: string, o?: { addBos?: boolean }): number[] },
  items: readonly { prompt: string; answer: string }[],
): Example[] {
  return items.map(({ prompt, answer }) => {
    const full = pack.trainingText(prompt, answer);
    const rest = full.startsWith(prompt) ? full.slice(prompt.length) : full;
    return { prompt: tokenizer.encode(prompt, { addBos: true }), completion: tokenizer.encode(rest) };
  });
}

/** Mixes the round's accepted samples with fresh anchor examples and writes the mix log (atomically). */
async function mixForLineage(ctx: LineageContext, p: RoundPlan, lineage: string): Promise<LineageMix> {
  const pack = getTaskPack(p.task);
  let pool: TrainingSample[] = ctx.trainingSet.samples(p.task, p.from, p.to);
  if (p.maxSamples > 0 && pool.length > p.maxSamples) pool = pool.slice(pool.length - p.maxSamples);
  const seed = `${p.seed}:${p.task}:round-${p.round}:${lineage}`;
  const clip = (d: number): number => Math.min(pack.difficulty.max, Math.max(pack.difficulty.min, d));
  const diffs = pool.map((s) => clip(s.difficulty || pack.difficulty.min));
  // Journals of older trainers have no anchor range in the plan: the trainer's flags then, as before.
  const minDifficulty = p.anchorMinDifficulty ?? ctx.defaults.training.anchorMinDifficulty;
  const maxDifficulty = p.anchorMaxDifficulty ?? ctx.defaults.training.anchorMaxDifficulty;
  const anchor = { min: minDifficulty ? clip(minDifficulty) : Math.min(...diffs), max: maxDifficulty ? clip(maxDifficulty) : Math.max(...diffs) };
  if (anchor.min > anchor.max) throw new AutodidactError(`anchor difficulties ${anchor.min}..${anchor.max} are empty`, Code.InvalidArgument);
  const anchors = pack.createAnchorSource({ seed: `${seed}:anchor`, minDifficulty: anchor.min, maxDifficulty: anchor.max });
  const mix = buildMix(pool, anchors, {
    batchSize: p.batchSize,
    anchorRatio: p.anchorRatio,
    maxReuse: p.maxReuse,
    steps: p.steps,
    seed,
    ...(p.hardestShare ? { hardestShare: p.hardestShare } : {}),
  });
  const mixLog = mix.batches.map((b) => JSON.stringify({ batch: b.index, sampleIds: b.synthetic.map((s) => s.sampleId), anchorIds: b.anchors.map((a) => a.id) })).join("\n") + "\n";
  const mixDir = join(ctx.dataDir, "mix");
  await mkdir(mixDir, { recursive: true });
  const mixPath = join(mixDir, `round-${p.round}-${lineage}.jsonl`);
  await writeFile(`${mixPath}.tmp`, mixLog);
  await rename(`${mixPath}.tmp`, mixPath);
  return { pack, seed, mix, mixLog, anchor, poolSize: pool.length };
}

/** The optimizer settings of a round: warmup-stable-decay over its steps when asked for (Lee et al. 2025), constant lr otherwise. */
function optimizerOf(p: RoundPlan, steps: number) {
  const scheduled = (p.warmupSteps ?? 0) > 0 || (p.decayShare ?? 0) > 0;
  return {
    lr: p.lr,
    weightDecay: p.weightDecay ?? 0,
    abortGradNorm: p.abortGradNorm ?? 1e6,
    ...(p.maxGradNorm ? { maxGradNorm: p.maxGradNorm } : {}),
    ...(scheduled
      ? {
          schedule: {
            kind: "wsd" as const,
            warmupSteps: Math.min(p.warmupSteps ?? 0, Math.max(0, steps - 1)),
            totalSteps: steps,
            decaySteps: Math.max(1, Math.round(steps * (p.decayShare ?? 0))),
            minLrRatio: 0.01,
          },
        }
      : {}),
  };
}

/** A checkpoint folder written in full under a temp name and renamed into place. */
export interface CandidateFolder {
  readonly version: number;
  readonly path: string;
  readonly manifest: Record<string, unknown>;
  readonly files: Awaited<ReturnType<typeof listCheckpointFiles>>;
  readonly createdAt: string;
}

/** The round's version of a lineage: allocated once per (round, lineage) and journaled (a repeat after a crash gets it back). */
export async function allocateCandidateVersion(ctx: LineageContext, p: RoundPlan, state: RoundState, lineage: string): Promise<number> {
  let version = state.allocated.get(lineage);
  if (version === undefined) {
    const owner = `trainer:${p.task}:round-${p.round}`;
    version = await retryTransient(`allocating a version of ${lineage}`, ctx.logger, () => ctx.registry.allocateVersion(lineage, owner));
    await ctx.journal.append({ kind: "allocated", round: p.round, lineage, version });
  }
  return version;
}

/** A candidate's folder while it is written: a temp name beside the final one, so a crash leaves no half folder in place. */
export async function stageCandidateFolder(ctx: LineageContext, lineage: string, version: number): Promise<{ tmp: string; final: string }> {
  const root = join(ctx.dataDir, "checkpoints", lineage);
  const tmp = join(root, `.tmp-${version}-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp, { recursive: true });
  return { tmp, final: join(root, String(version)) };
}

/** Writes the training manifest into a staged folder, lists its files and moves it into place; returns the files. */
export async function sealCandidateFolder(tmp: string, final: string, manifest: Record<string, unknown>): Promise<Awaited<ReturnType<typeof listCheckpointFiles>>> {
  await writeFile(join(tmp, "training-manifest.json"), JSON.stringify(manifest, null, 2));
  const files = await listCheckpointFiles(tmp);
  await rm(final, { recursive: true, force: true }); // a half-done folder of a crashed attempt at this version
  await rename(tmp, final);
  return files;
}

/**
 * Writes a candidate's merged weights in the kind of folder its base is: a Hugging Face base (an
 * imported checkpoint) gives a folder of the same family — its config.json, tensor names and tokenizer
 * files — that Hugging Face tools and the next round read as they read the import; ours gives ours.
 */
async function saveMergedModel(dir: string, base: LoadedModel, params: LoadedModel["params"], metadata: Record<string, string>): Promise<void> {
  if (base.hf === undefined) return void (await saveModel(dir, { config: base.config, params, tokenizer: base.tokenizer, metadata }));
  const { family, hfConfig, naming, dir: from } = base.hf;
  await saveHfModel(dir, { family, config: base.config, params, hfConfig, naming, copyFrom: from, metadata });
}

/** The manifest's record of the model's format: a Hugging Face family and model type, or ours. */
function modelFormatOf(base: LoadedModel): Record<string, string> {
  return base.hf === undefined ? { format: "autodidact" } : { format: "huggingface", family: base.hf.family, modelType: base.hf.modelType };
}

/** The manifest's record of the LoRA sites: the adapter's PEFT target_modules and every module path adapted. */
function loraManifestOf(base: LoadedModel, targets: readonly string[]): { targetModules: string[]; modules: string[] } {
  return { targetModules: peftTargetModules(base.config, targets), modules: loraSites(base.config, targets).map((s) => s.module) };
}

/**
 * Writes the candidate's folder: merged weights, the LoRA adapter, the mix log and the training manifest.
 * The version is allocated once per (round, lineage) and journaled, so a crash before the journal entry
 * gets the same version back.
 */
async function writeCandidateFolder(
  ctx: LineageContext,
  p: RoundPlan,
  state: RoundState,
  lineage: string,
  run: { base: Awaited<ReturnType<typeof loadModel>>; trainer: Trainer; curve: readonly StepResult[]; lm: LineageMix },
): Promise<CandidateFolder> {
  const { base, trainer, curve, lm } = run;
  const parent = p.parents[lineage]!;
  const version = await allocateCandidateVersion(ctx, p, state, lineage);
  const { tmp, final } = await stageCandidateFolder(ctx, lineage, version);
  const metadata = { lineage, version: String(version), parent: String(parent), round: String(p.round) };
  await saveMergedModel(tmp, base, await trainer.getMergedWeights(), metadata);
  if (p.mode === "lora") await trainer.saveAdapter(join(tmp, "adapter"), { baseModel: `${lineage}@${parent}`, metadata });
  await writeFile(join(tmp, "mix-log.jsonl"), lm.mixLog);
  const modelFiles = await listCheckpointFiles(tmp);
  const createdAt = new Date().toISOString();
  const { mix } = lm;
  const manifest = {
    version,
    lineage,
    parentVersion: parent,
    round: p.round,
    task: p.task,
    taskIdentity: taskIdentity(p.task),
    adaptation: p.mode,
    model: modelFormatOf(base),
    ...(p.mode === "lora" ? { lora: loraManifestOf(base, LORA_TARGETS) } : {}),
    hyperparameters: hyperparametersOf(p, lm.anchor, lm.seed, curve.length),
    mix: {
      syntheticCount: mix.syntheticCount,
      realCount: mix.realCount,
      realRatio: mix.realCount / (mix.realCount + mix.syntheticCount),
      anchorRatio: p.anchorRatio,
      syntheticByDifficulty: mix.syntheticByDifficulty,
      realByDifficulty: mix.realByDifficulty,
      mode: p.mixMode,
      trainingSetSlice: [p.from, p.to],
    },
    sampleIdsDigest: sha256(mix.sampleIds.join("\n")),
    sampleCount: mix.sampleIds.length,
    mixLog: "mix-log.jsonl",
    lossCurve: curve.map((c) => ({ step: c.step, loss: c.loss, learningRate: c.lr, gradNorm: c.gradNorm })),
    files: modelFiles.map((f) => ({ name: f.name, sha256: f.sha256, sizeBytes: f.size })),
    modelConfig: base.config,
    createdAt,
    softwareVersion: softwareVersion(),
  };
  const files = await sealCandidateFolder(tmp, final, manifest);
  return { version, path: final, manifest, files, createdAt };
}

/** Registers a written candidate (idempotent across a timed-out attempt that did land), announces it, journals it. */
export async function registerCandidate(ctx: LineageContext, p: RoundPlan, lineage: string, folder: CandidateFolder, metrics: Record<string, number>): Promise<CheckpointRecord> {
  const parent = p.parents[lineage]!;
  const record: CheckpointRecord = {
    lineage,
    version: folder.version,
    parentVersion: parent,
    round: p.round,
    status: "candidate",
    statusReason: `trained in round ${p.round} from ${lineage}@${parent}`,
    files: folder.files,
    manifest: folder.manifest,
    metrics,
    createdAt: folder.createdAt,
  };
  await retryTransient(`registering ${lineage}@${folder.version}`, ctx.logger, async (attempt) => {
    try {
      await ctx.registry.putCheckpoint(record, folder.path);
    } catch (err) {
      // A retry after a timed-out attempt whose write did land: the stored record is ours if its files are.
      if (attempt > 0 && err instanceof AutodidactError && err.code === Code.AlreadyExists) {
        const stored = await ctx.registry.getCheckpoint(lineage, folder.version);
        if (stored !== undefined && JSON.stringify(stored.files) === JSON.stringify(record.files)) return;
      }
      throw err;
    }
  });
  await retryTransient(`announcing ${lineage}@${folder.version}`, ctx.logger, () => publishCandidate(ctx.bus, record));
  await ctx.journal.append({ kind: "candidate", round: p.round, lineage, version: folder.version });
  ctx.logger.info("candidate checkpoint", { lineage, version: folder.version, round: p.round, loss: metrics["final_loss"] });
  return record;
}

/** Trains one lineage of a round from its parent and registers its candidate: mix → train → folder → registry. */
export async function trainLineage(
  ctx: LineageContext,
  p: RoundPlan,
  state: RoundState,
  lineage: string,
  index: number,
  emit: (e: RoundEvent) => void,
): Promise<CheckpointRecord> {
  // A game task's round trains a policy/value network on recent games (game-round.ts).
  if (isGameTask(p.task)) return trainGameLineage(ctx, p, state, lineage, emit);
  const lm = await mixForLineage(ctx, p, lineage);
  emit(progress("mix", `${lineage}: ${lm.poolSize} accepted samples, anchor ratio ${p.anchorRatio}`));
  const parent = p.parents[lineage]!;
  const base = await loadModel(await ctx.registry.materialize(lineage, parent));
  const tok = base.tokenizer;
  const batches = lm.mix.batches.map((b) =>
    examplesOf(lm.pack, tok, [
      ...b.synthetic.map((s) => ({ prompt: s.prompt, answer: lm.pack.normalize(s.completion) })),
      ...b.anchors.map((a: TaskExample) => ({ prompt: a.prompt, answer: a.answer })),
    ]),
  );
  const seqLen = Math.max(...batches.flat().map((e) => e.prompt.length + e.completion.length - 1));
  if (seqLen > base.config.maxPositions) {
    throw new AutodidactError(`training examples need ${seqLen + 1} positions, ${lineage}@${parent} has ${base.config.maxPositions}`, Code.FailedPrecondition);
  }
  const trainer = await createTrainer({
    config: base.config,
    weights: base.params,
    mode: p.mode,
    ...(p.mode === "lora" ? { lora: { rank: p.loraRank, alpha: p.loraAlpha, targetModules: LORA_TARGETS, dropout: 0 } } : {}),
    optimizer: optimizerOf(p, lm.mix.batches.length),
    seed: index + 1 + p.round * 1000,
    batchSize: p.batchSize,
    seqLen,
    ...(ctx.defaults.threads > 0 ? { threads: ctx.defaults.threads } : {}),
  });
  try {
    const curve: StepResult[] = [];
    for (let i = 0; i < batches.length; i++) {
      const r = await trainer.step(makeBatch(batches[i]!, { padId: tok.padId ?? 0, seqLen }));
      curve.push(r);
      ctx.lossHistogram.record(r.loss, { lineage, task: p.task });
      emit(progress("train", `${lineage} step ${i + 1}/${batches.length}`, i + 1, batches.length, r.loss));
    }
    emit(progress("checkpoint", `${lineage}: writing checkpoint`));
    const folder = await writeCandidateFolder(ctx, p, state, lineage, { base, trainer, curve, lm });
    emit(progress("publish", `${lineage}@${folder.version}: uploading`));
    const last = curve[curve.length - 1];
    return await registerCandidate(ctx, p, lineage, folder, last ? { final_loss: last.loss, steps: curve.length } : {});
  } finally {
    await trainer.close();
  }
}
