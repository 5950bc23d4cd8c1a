import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Bus } from "../../src/platform/bus/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { createTrainer, loadModel, makeBatch, saveModel, type Example, type StepResult, type Trainer } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { CheckpointRefSchema } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import { RoundEventSchema, type RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { checkpointRefOf, listCheckpointFiles, type CheckpointRecord, type Registry } from "../../src/domain/registry/index.js";
import { softwareVersion } from "../../src/platform/rpc/index.js";
import { getMeter, type Logger } from "../../src/platform/telemetry/index.js";
import { getTaskPack, type TaskExample } from "../../src/domain/tasks/index.js";
import type { TrainingConfig } from "../../src/gen/autodidact/v1/training_pb.js";
import { buildMix, type Mix } from "./mix.js";
import type { CandidateFiles } from "./candidate.js";
import { trainGameRound } from "./game-round.js";
import { getGamePack, isGameTask } from "../../src/domain/games/index.js";
import type { RoundJournal, RoundPlan, RoundState } from "./round-journal.js";
import { RoundExecutions } from "./round-executions.js";
import { resolveTraining, type ResolvedTraining, type TrainingDefaults } from "./training-config.js";
import type { TrainingSample, TrainingSet } from "./training-set.js";

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

/** Dependencies of {@link createRoundRunner}. */
export interface RoundRunnerDeps {
  bus: Bus;
  registry: Registry;
  trainingSet: TrainingSet;
  journal: RoundJournal;
  dataDir: string;
  defaults: RoundDefaults;
  logger: Logger;
}

/** Runs training rounds one at a time. */
export interface RoundRunner {
  /**
   * Plans and runs a round, calling `emit` with progress events and finally the report event.
   * Idempotent per (lineages, round) for a request naming its round: a round that finished gives its
   * report again, one queued or running is followed, one a crash interrupted (or that failed) is redone;
   * a different request for that round and a lineage of it is refused with ALREADY_EXISTS.
   */
  run(request: RoundRequest, emit: (event: RoundEvent) => void): Promise<RoundEvent>;
  /** Redoes (or finishes) rounds a crash interrupted; a lineage whose candidate exists is not redone. */
  recover(): Promise<void>;
  /** Whether a round is running or queued. */
  busy(): boolean;
}

/** A task's canonical name: a game pack's or a labelled task pack's (NotFound for neither). */
const taskName = (task: string): string => (isGameTask(task) ? getGamePack(task).name : getTaskPack(task).name);
const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");
const sameLineages = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/**
 * What makes a request another round than the journaled one with its number and lineages (the first
 * differing setting), or undefined when it is the same request again. A setting older journals do not
 * record is not compared; the parent only when the request names one (the promoted version moves
 * once the round's candidate is promoted).
 */
function planMismatch(p: RoundPlan, req: RoundRequest, t: ResolvedTraining): string | undefined {
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
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Codes of a registry call that failed only because NATS was briefly unreachable (e.g. restarting). */
const TRANSIENT = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded]);

/**
 * Retries a registry step of a round while it fails transiently (up to 2 minutes). Exists because
 * giving up after a version was allocated would leave that version a permanent gap in the lineage
 * (the next round allocates the next one) and its folder without a record.
 */
async function retryTransient<T>(what: string, logger: Logger, fn: (attempt: number) => Promise<T>): Promise<T> {
  const until = Date.now() + 120_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof AutodidactError && TRANSIENT.has(err.code)) || Date.now() > until) throw err;
      logger.warn(`${what} failed; retrying`, { attempt, error: err.rawMessage });
      await sleep(Math.min(5_000, 250 * 2 ** attempt));
    }
  }
}

/** The LoRA projections the trainer adapts (recorded in the manifest and the PEFT adapter config). */
const LORA_TARGETS = ["q_proj", "v_proj"];

/** The manifest's record of how a candidate was trained (strings, as the registry's checkpoint metadata carries them). */
function hyperparametersOf(p: RoundPlan, anchor: { min: number; max: number }, seed: string, steps: number): Record<string, string> {
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

const progress = (phase: string, message: string, step = 0, total = 0, loss = Number.NaN): RoundEvent =>
  create(RoundEventSchema, { event: { case: "progress", value: { phase, message, step: BigInt(step), totalSteps: BigInt(total), loss } } });

/** Token examples of one batch: prompt (with bos) and the training continuation of each item. */
function examplesOf(
  pack: ReturnType<typeof getTaskPack>,
  tokenizer: { encode(text: string, o?: { addBos?: boolean }): number[] },
  items: readonly { prompt: string; answer: string }[],
): Example[] {
  return items.map(({ prompt, answer }) => {
    const full = pack.trainingText(prompt, answer);
    const rest = full.startsWith(prompt) ? full.slice(prompt.length) : full;
    return { prompt: tokenizer.encode(prompt, { addBos: true }), completion: tokenizer.encode(rest) };
  });
}

/** Creates the round runner: plan → mix → train → checkpoint → publish, journaled for crash safety. */
export function createRoundRunner(deps: RoundRunnerDeps): RoundRunner {
  const { bus, registry, trainingSet, journal, dataDir, defaults, logger } = deps;
  const meter = getMeter("autodidact-trainer");
  const lossHist = meter.createHistogram("autodidact.trainer.step_loss", { description: "training loss per optimizer step" });
  const roundsCounter = meter.createCounter("autodidact.trainer.rounds", { description: "training rounds by outcome" });
  let chain: Promise<unknown> = Promise.resolve();
  let pending = 0;
  const executions = new RoundExecutions();

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    pending++;
    const next = chain.then(fn, fn).finally(() => pending--);
    chain = next.catch(() => undefined);
    return next;
  };

  const plan = async (req: RoundRequest): Promise<RoundPlan> => {
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
  };

  const publishRoundEvent = async (round: number, event: RoundEvent, tag: string): Promise<void> => {
    try {
      await bus.publish(Subjects.checkpoints("round"), toBinary(RoundEventSchema, event), { msgId: `round-${round}-${tag}` });
    } catch (err) {
      logger.warn("could not publish round event", { round, error: String(err) });
    }
  };

  /** Announces a registered candidate; its CheckpointRef is the registry's conversion of the record. */
  const publishCandidate = async (record: CheckpointRecord): Promise<void> => {
    const ref = checkpointRefOf(record);
    await bus.publish(Subjects.checkpoints("candidate"), toBinary(CheckpointRefSchema, ref), { msgId: `${record.lineage}@${record.version}` });
  };

  /** Trains one lineage of a round and registers its candidate; returns the record. */
  const trainLineage = async (p: RoundPlan, state: RoundState, lineage: string, li: number, emit: (e: RoundEvent) => void): Promise<CheckpointRecord> => {
    if (isGameTask(p.task)) return trainGameLineage(p, state, lineage, emit);
    const pack = getTaskPack(p.task);
    let pool: TrainingSample[] = trainingSet.samples(p.task, p.from, p.to);
    if (p.maxSamples > 0 && pool.length > p.maxSamples) pool = pool.slice(pool.length - p.maxSamples);
    const seed = `${p.seed}:${p.task}:round-${p.round}:${lineage}`;
    const diffs = pool.map((s) => Math.min(pack.difficulty.max, Math.max(pack.difficulty.min, s.difficulty || pack.difficulty.min)));
    const clip = (d: number): number => Math.min(pack.difficulty.max, Math.max(pack.difficulty.min, d));
    // Journals of older trainers have no anchor range in the plan: the trainer's flags then, as before.
    const minDifficulty = p.anchorMinDifficulty ?? defaults.training.anchorMinDifficulty;
    const maxDifficulty = p.anchorMaxDifficulty ?? defaults.training.anchorMaxDifficulty;
    const anchorMin = minDifficulty ? clip(minDifficulty) : Math.min(...diffs);
    const anchorMax = maxDifficulty ? clip(maxDifficulty) : Math.max(...diffs);
    if (anchorMin > anchorMax) throw new AutodidactError(`anchor difficulties ${anchorMin}..${anchorMax} are empty`, Code.InvalidArgument);
    const anchors = pack.createAnchorSource({ seed: `${seed}:anchor`, minDifficulty: anchorMin, maxDifficulty: anchorMax });
    emit(progress("mix", `${lineage}: ${pool.length} accepted samples, anchor ratio ${p.anchorRatio}`));
    const mix: Mix<TrainingSample> = buildMix(pool, anchors, {
      batchSize: p.batchSize,
      anchorRatio: p.anchorRatio,
      maxReuse: p.maxReuse,
      steps: p.steps,
      seed,
      ...(p.hardestShare ? { hardestShare: p.hardestShare } : {}),
    });
    const mixLog = mix.batches.map((b) => JSON.stringify({ batch: b.index, sampleIds: b.synthetic.map((s) => s.sampleId), anchorIds: b.anchors.map((a) => a.id) })).join("\n") + "\n";
    const mixDir = join(dataDir, "mix");
    await mkdir(mixDir, { recursive: true });
    const mixPath = join(mixDir, `round-${p.round}-${lineage}.jsonl`);
    await writeFile(`${mixPath}.tmp`, mixLog);
    await rename(`${mixPath}.tmp`, mixPath);

    const parent = p.parents[lineage]!;
    const base = await loadModel(await registry.materialize(lineage, parent));
    const tok = base.tokenizer;
    const batches = mix.batches.map((b) =>
      examplesOf(pack, tok, [
        ...b.synthetic.map((s) => ({ prompt: s.prompt, answer: pack.normalize(s.completion) })),
        ...b.anchors.map((a: TaskExample) => ({ prompt: a.prompt, answer: a.answer })),
      ]),
    );
    const seqLen = Math.max(...batches.flat().map((e) => e.prompt.length + e.completion.length - 1));
    if (seqLen > base.config.maxPositions) {
      throw new AutodidactError(`training examples need ${seqLen + 1} positions, ${lineage}@${parent} has ${base.config.maxPositions}`, Code.FailedPrecondition);
    }
    const lora = { rank: p.loraRank, alpha: p.loraAlpha, targetModules: LORA_TARGETS, dropout: 0 };
    const trainer: Trainer = await createTrainer({
      config: base.config,
      weights: base.params,
      mode: p.mode,
      ...(p.mode === "lora" ? { lora } : {}),
      optimizer: {
        lr: p.lr,
        weightDecay: p.weightDecay ?? 0,
        abortGradNorm: p.abortGradNorm ?? 1e6,
        ...(p.maxGradNorm ? { maxGradNorm: p.maxGradNorm } : {}),
        // Warmup-stable-decay over the round's steps (Lee et al. 2025) when asked for; constant lr otherwise.
        ...((p.warmupSteps ?? 0) > 0 || (p.decayShare ?? 0) > 0
          ? {
              schedule: {
                kind: "wsd" as const,
                warmupSteps: Math.min(p.warmupSteps ?? 0, Math.max(0, mix.batches.length - 1)),
                totalSteps: mix.batches.length,
                decaySteps: Math.max(1, Math.round(mix.batches.length * (p.decayShare ?? 0))),
                minLrRatio: 0.01,
              },
            }
          : {}),
      },
      seed: li + 1 + p.round * 1000,
      batchSize: p.batchSize,
      seqLen,
      ...(defaults.threads > 0 ? { threads: defaults.threads } : {}),
    });
    const curve: StepResult[] = [];
    try {
      const total = batches.length;
      for (let i = 0; i < total; i++) {
        const batch = makeBatch(batches[i]!, { padId: tok.padId ?? 0, seqLen });
        const r = await trainer.step(batch);
        curve.push(r);
        lossHist.record(r.loss, { lineage, task: p.task });
        emit(progress("train", `${lineage} step ${i + 1}/${total}`, i + 1, total, r.loss));
      }
      const last = curve[curve.length - 1];
      return await registerCandidate(p, state, lineage, parent, emit, {
        async write(dir, metadata) {
          await saveModel(dir, { config: base.config, params: await trainer.getMergedWeights(), tokenizer: tok, metadata });
          if (p.mode === "lora") await trainer.saveAdapter(join(dir, "adapter"), { baseModel: `${lineage}@${parent}`, metadata });
          await writeFile(join(dir, "mix-log.jsonl"), mixLog);
        },
        manifest: {
          hyperparameters: hyperparametersOf(p, { min: anchorMin, max: anchorMax }, seed, curve.length),
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
          modelConfig: base.config,
        },
        metrics: last ? { final_loss: last.loss, steps: curve.length } : {},
      });
    } finally {
      await trainer.close();
    }
  };

  /** A game task's round: policy/value training on the window of recent accepted games (game-round.ts). */
  const trainGameLineage = async (p: RoundPlan, state: RoundState, lineage: string, emit: (e: RoundEvent) => void): Promise<CheckpointRecord> => {
    const parent = p.parents[lineage]!;
    const pool = trainingSet.samples(p.task, p.from, p.to);
    const windowGames = defaults.gameWindow ?? 1200;
    emit(progress("mix", `${lineage}: ${pool.length} accepted games, window ${windowGames}`));
    const files = await trainGameRound({
      plan: p,
      lineage,
      pool,
      parentDir: await registry.materialize(lineage, parent),
      windowGames,
      threads: defaults.threads,
      seed: `${p.seed}:${p.task}:round-${p.round}:${lineage}`,
      onStep(r, total) {
        lossHist.record(r.loss, { lineage, task: p.task });
        emit(progress("train", `${lineage} step ${r.step}/${total}`, r.step, total, r.loss));
      },
    });
    return registerCandidate(p, state, lineage, parent, emit, files);
  };

  /**
   * Allocates the lineage's next version (once per round, journaled), writes the candidate's files
   * and its training manifest into a fresh folder, registers it (status candidate) and announces it.
   * Shared by every kind of model a round trains (decoders, game policy/value networks).
   */
  const registerCandidate = async (p: RoundPlan, state: RoundState, lineage: string, parent: number, emit: (e: RoundEvent) => void, c: CandidateFiles): Promise<CheckpointRecord> => {
    emit(progress("checkpoint", `${lineage}: writing checkpoint`));
    let version = state.allocated.get(lineage);
    if (version === undefined) {
      // Owner = this round: a crash before the journal entry below gets the same version back.
      const owner = `trainer:${p.task}:round-${p.round}`;
      version = await retryTransient(`allocating a version of ${lineage}`, logger, () => registry.allocateVersion(lineage, owner));
      await journal.append({ kind: "allocated", round: p.round, lineage, version });
    }
    const root = join(dataDir, "checkpoints", lineage);
    const final = join(root, String(version));
    const tmp = join(root, `.tmp-${version}-${randomBytes(4).toString("hex")}`);
    await mkdir(tmp, { recursive: true });
    const metadata = { lineage, version: String(version), parent: String(parent), round: String(p.round) };
    await c.write(tmp, metadata);
    const modelFiles = await listCheckpointFiles(tmp);
    const createdAt = new Date().toISOString();
    const manifest = {
      version,
      lineage,
      parentVersion: parent,
      round: p.round,
      task: p.task,
      adaptation: p.mode,
      ...c.manifest,
      files: modelFiles.map((f) => ({ name: f.name, sha256: f.sha256, sizeBytes: f.size })),
      createdAt,
      softwareVersion: softwareVersion(),
    };
    await writeFile(join(tmp, "training-manifest.json"), JSON.stringify(manifest, null, 2));
    const files = await listCheckpointFiles(tmp);
    await rm(final, { recursive: true, force: true }); // a half-done folder of a crashed attempt at this version
    await rename(tmp, final);
    const record: CheckpointRecord = {
      lineage,
      version,
      parentVersion: parent,
      round: p.round,
      status: "candidate",
      statusReason: `trained in round ${p.round} from ${lineage}@${parent}`,
      files,
      manifest,
      metrics: c.metrics,
      createdAt,
    };
    emit(progress("publish", `${lineage}@${version}: uploading`));
    await retryTransient(`registering ${lineage}@${version}`, logger, async (attempt) => {
      try {
        await registry.putCheckpoint(record, final);
      } catch (err) {
        // A retry after a timed-out attempt whose write did land: the stored record is ours if its files are.
        if (attempt > 0 && err instanceof AutodidactError && err.code === Code.AlreadyExists) {
          const stored = await registry.getCheckpoint(lineage, version);
          if (stored !== undefined && JSON.stringify(stored.files) === JSON.stringify(record.files)) return;
        }
        throw err;
      }
    });
    await retryTransient(`announcing ${lineage}@${version}`, logger, () => publishCandidate(record));
    await journal.append({ kind: "candidate", round: p.round, lineage, version });
    logger.info("candidate checkpoint", { lineage, version, round: p.round, loss: (c.metrics as { final_loss?: number }).final_loss });
    return record;
  };

  const execute = async (p: RoundPlan, emit: (e: RoundEvent) => void): Promise<RoundEvent> => {
    const started = new Date();
    const state = stateOf(p);
    const records: CheckpointRecord[] = [];
    for (const [li, lineage] of p.lineages.entries()) {
      const done = state.candidates.get(lineage);
      if (done !== undefined) {
        const rec = await registry.getCheckpoint(lineage, done);
        if (rec) records.push(rec);
        continue;
      }
      // Allocated before a crash and already registered: only the event (deduplicated by msgId) may be missing.
      // Without a journal entry, the registry itself is asked for a candidate of this round and parent.
      const allocated =
        state.allocated.get(lineage) ??
        (await registry.listCheckpoints(lineage)).find((r) => r.round === p.round && r.parentVersion === p.parents[lineage] && r.manifest.task === p.task)?.version;
      if (allocated !== undefined) {
        const rec = await registry.getCheckpoint(lineage, allocated);
        if (rec) {
          await publishCandidate(rec);
          await journal.append({ kind: "candidate", round: p.round, lineage, version: allocated });
          records.push(rec);
          continue;
        }
      }
      try {
        records.push(await trainLineage(p, state, lineage, li, emit));
      } catch (err) {
        const aborted = err instanceof AutodidactError && err.code === Code.Aborted;
        const reason = `round ${p.round} ${aborted ? "aborted" : "failed"} on ${lineage}: ${err instanceof Error ? err.message : String(err)}`;
        const status = aborted ? "aborted" : "failed";
        await journal.append({ kind: "end", round: p.round, lineages: p.lineages, status, reason });
        roundsCounter.add(1, { outcome: status, task: p.task });
        const ev = progress(status, reason);
        emit(ev);
        await publishRoundEvent(p.round, ev, status);
        logger.warn("round ended without candidate", { round: p.round, reason });
        throw aborted ? new AutodidactError(reason, Code.Aborted, { cause: err }) : err;
      }
    }
    await journal.append({ kind: "end", round: p.round, lineages: p.lineages, status: "done", reason: "" });
    roundsCounter.add(1, { outcome: "done", task: p.task });
    const report = reportOf(p, records, started, new Date());
    emit(report);
    await publishRoundEvent(p.round, report, "done");
    return report;
  };

  /** The report event of a finished round, from its candidates' records. */
  const reportOf = (p: RoundPlan, records: readonly CheckpointRecord[], started: Date, finished: Date): RoundEvent => {
    const first = records[0];
    const m = (first?.manifest ?? {}) as { mix?: { syntheticCount: number; realCount: number; realRatio: number }; lossCurve?: { step: number; loss: number; learningRate: number; gradNorm: number }[]; sampleCount?: number };
    const report = create(RoundEventSchema, {
      event: {
        case: "report",
        value: {
          round: p.round,
          lineage: first?.lineage ?? "",
          task: p.task,
          samplesAccepted: BigInt(p.to - p.from),
          samplesUsed: BigInt(m.sampleCount ?? 0),
          mix: {
            syntheticCount: BigInt(m.mix?.syntheticCount ?? 0),
            realCount: BigInt(m.mix?.realCount ?? 0),
            realRatio: m.mix?.realRatio ?? 0,
            anchorRatio: p.anchorRatio,
          },
          lossCurve: (m.lossCurve ?? []).map((c) => ({ step: BigInt(c.step), loss: c.loss, learningRate: c.learningRate, gradNorm: c.gradNorm })),
          candidateVersion: BigInt(first?.version ?? 0),
          baseVersion: BigInt(first?.parentVersion ?? 0),
          durationMs: finished.getTime() - started.getTime(),
          startedAt: timestampFromDate(started),
          finishedAt: timestampFromDate(finished),
          steps: BigInt(m.lossCurve?.length ?? 0),
          ...(first
            ? {
                candidate: checkpointRefOf(first),
              }
            : {}),
        },
      },
    });
    return report;
  };

  /** The journal entry of a planned round (its number and lineages). */
  const stateOf = (p: RoundPlan): RoundState => {
    const state = journal.atRound(p.round).find((r) => sameLineages(r.plan.lineages, p.lineages));
    if (state === undefined) throw new AutodidactError(`round ${p.round} of ${p.lineages.join(", ")} is not in the journal`, Code.Internal);
    return state;
  };

  /** Rounds run one at a time: a caller behind another round hears so at once (the stream is alive). */
  const enqueue = (emit: (e: RoundEvent) => void, fn: () => Promise<RoundEvent>): Promise<RoundEvent> => {
    if (pending > 0) emit(progress("queued", `waiting for ${pending} round${pending > 1 ? "s" : ""} ahead of this one`));
    return serial(fn);
  };

  /** Plans a new round, journals it and runs it. */
  const startNew = (request: RoundRequest, emit: (e: RoundEvent) => void): Promise<RoundEvent> =>
    enqueue(emit, async () => {
      const p = await plan(request);
      emit(progress("collect", `round ${p.round}: ${p.to - p.from} accepted samples of ${p.task} (${p.mixMode})`));
      await journal.append({ kind: "start", plan: p });
      return execute(p, emit);
    });

  /** Runs a journaled round again: one a crash interrupted, or one that failed (it is unfinished again first). */
  const redo = (state: RoundState, emit: (e: RoundEvent) => void): Promise<RoundEvent> =>
    enqueue(emit, async () => {
      if (state.end !== undefined) await journal.append({ kind: "resume", round: state.plan.round, lineages: state.plan.lineages });
      return execute(state.plan, emit);
    });

  /** A request for a round that is in the journal: its report, the running round, or the round redone. */
  const repeat = async (state: RoundState, request: RoundRequest, emit: (e: RoundEvent) => void): Promise<RoundEvent> => {
    const differs = planMismatch(state.plan, request, resolveTraining(request.training, defaults.training));
    if (differs !== undefined) {
      throw new AutodidactError(`round ${state.plan.round} of ${state.plan.lineages.join(", ")} already exists with another ${differs}`, Code.AlreadyExists);
    }
    if (state.end?.status === "done" && !executions.has(state.plan)) {
      const records: CheckpointRecord[] = [];
      for (const lineage of state.plan.lineages) {
        const version = state.candidates.get(lineage);
        if (version === undefined) continue;
        const record = await registry.getCheckpoint(lineage, version);
        // A journal that does not match the registry (another mesh's data dir): no report to give.
        if (record === undefined) {
          throw new AutodidactError(`round ${state.plan.round} of ${lineage} is done in this trainer's journal, but its candidate ${lineage}@${version} is not in the registry`, Code.FailedPrecondition);
        }
        records.push(record);
      }
      const at = new Date(records[0]?.createdAt ?? Date.now());
      const report = reportOf(state.plan, records, at, at);
      emit(report);
      return report;
    }
    return executions.follow(state.plan, emit, (e) => redo(state, e));
  };

  return {
    run(request, emit) {
      try {
        // Bad settings are refused at once, not after the rounds queued ahead of this one.
        resolveTraining(request.training, defaults.training);
      } catch (err) {
        return Promise.reject(err);
      }
      const round = request.round ?? 0;
      if (round <= 0) return startNew(request, emit);
      const lineages = request.lineages && request.lineages.length > 0 ? request.lineages : defaults.lineages;
      const overlapping = journal.atRound(round).filter((r) => r.plan.lineages.some((l) => lineages.includes(l)));
      const same = overlapping.length === 1 && sameLineages(overlapping[0]!.plan.lineages, lineages) ? overlapping[0] : undefined;
      if (overlapping.length > 0 && same === undefined) {
        const taken = overlapping.map((r) => r.plan.lineages.join(",")).join("; ");
        return Promise.reject(new AutodidactError(`round ${round} already exists for lineages ${taken}, not ${lineages.join(",")}`, Code.AlreadyExists));
      }
      if (same !== undefined) return repeat(same, request, emit);
      // A new round; a repeat of this request while it is queued attaches to it.
      return executions.follow({ round, lineages }, emit, (e) => startNew({ ...request, lineages }, e));
    },
    recover() {
      const interrupted = journal.unfinished();
      return Promise.all(
        interrupted.map(async (r) => {
          logger.info("resuming interrupted round", { round: r.plan.round, candidates: [...r.candidates.keys()] });
          try {
            await executions.follow(r.plan, () => undefined, (e) => redo(r, e));
          } catch (err) {
            logger.warn("interrupted round could not be redone", { round: r.plan.round, error: String(err) });
          }
        }),
      ).then(() => undefined);
    },
    busy: () => pending > 0,
  };
}
