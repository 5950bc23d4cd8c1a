import { startTaskModules, taskIdentities } from "../../src/domain/tasks/index.js";
import { join, resolve } from "node:path";
import { consume, type ConsumerHandle } from "../../src/platform/bus/index.js";
import { Durables, MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { TrainerService, type RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import type { ServiceConfig, ServiceSpec } from "../../src/platform/host/index.js";
import { createRegistry } from "../../src/domain/registry/index.js";
import { createInfoHandler, implement } from "../../src/platform/rpc/index.js";
import { getMeter } from "../../src/platform/telemetry/index.js";
import { localCheckpointDir, streamCheckpointFiles } from "./fetch-checkpoint.js";
import type { MixMode } from "./mix.js";
import { openRoundJournal } from "./round-journal.js";
import { resolveTraining, TRAINING_RANGES, type TrainingDefaults } from "./training-config.js";
import { createRoundRunner, type RoundRunner } from "./rounds.js";
import { openTrainingSet, sampleFromDecision } from "./training-set.js";

/** A training flag's bounds, from the one table of ranges (exclusive bounds are checked at start by resolveTraining). */
const bounds = (key: keyof typeof TRAINING_RANGES): { min: number; max: number } => ({ min: TRAINING_RANGES[key].min, max: TRAINING_RANGES[key].max });

/** Flags of the trainer service beyond the ones every service takes. */
export const trainerOptions = {
  task: { type: "list", help: "task packs this instance handles", env: "AUTODIDACT_TASKS", default: ["addition"] },
  dataDir: { type: "string", help: "training set, round journal, mix logs and checkpoints live here", env: "AUTODIDACT_DATA_DIR", default: "./.autodidact/trainer" },
  cacheDir: { type: "string", help: "where registry checkpoints are downloaded (default: <data-dir>/cache)", env: "AUTODIDACT_CACHE_DIR" },
  lineages: { type: "list", help: "lineages trained each round, each from its own promoted parent with its own seed", env: "AUTODIDACT_LINEAGES", default: ["main"] },
  mode: { type: "enum", values: ["lora", "full"], help: "LoRA adapters on a frozen base, or full fine-tuning", default: "lora" },
  mix: { type: "enum", values: ["accumulate", "replace"], help: "synthetic data accumulated across rounds, or only the newest (experiments)", default: "accumulate" },
  anchorRatio: { type: "float", help: "minimum share of real anchor data in every batch", default: 0.25, min: 0, max: 0.95 },
  anchorMinDifficulty: { type: "int", help: "lowest difficulty of real anchor data (0 = the accepted samples' lowest)", default: 0, ...bounds("anchorMinDifficulty") },
  anchorMaxDifficulty: { type: "int", help: "highest difficulty of real anchor data (0 = the accepted samples' highest); a curriculum sets the base lengths", default: 0, ...bounds("anchorMaxDifficulty") },
  roundMinSamples: { type: "int", help: "start a round when this many new accepted samples arrived (0 = only on StartRound)", default: 0, min: 0 },
  batchSize: { type: "int", help: "examples per optimizer step (synthetic + anchor)", default: 16, ...bounds("batchSize") },
  steps: { type: "int", help: "optimizer steps per round (0 = one pass over the synthetic pool)", default: 0, ...bounds("steps") },
  maxReuse: { type: "int", help: "times one accepted sample may be used in a round", default: 2, ...bounds("maxReuse") },
  lr: { type: "float", help: "peak learning rate (AdamW)", default: 1e-3, ...bounds("lr") },
  weightDecay: { type: "float", help: "AdamW weight decay", default: 0, ...bounds("weightDecay") },
  warmupSteps: { type: "int", help: "warmup steps of a warmup-stable-decay schedule (0 and --decay-share 0 = constant lr)", default: 0, ...bounds("warmupSteps") },
  decayShare: { type: "float", help: "share of a round's steps in the final linear decay of the schedule", default: 0, ...bounds("decayShare") },
  maxGradNorm: { type: "float", help: "clip gradients to this global norm (0 = no clipping)", default: 0, ...bounds("maxGradNorm") },
  hardestShare: { type: "float", help: "share of every batch's synthetic slots from the pool's hardest difficulty (0 = uniform)", default: 0, ...bounds("hardestShare") },
  loraRank: { type: "int", help: "LoRA rank", default: 4, ...bounds("loraRank") },
  loraAlpha: { type: "float", help: "LoRA alpha", default: 8, ...bounds("loraAlpha") },
  seed: { type: "string", help: "seed of mixes, anchor draws and adapter init", default: "autodidact" },
  trainThreads: { type: "int", help: "onnxruntime intra-op threads of a training session (0 = all cores)", default: 1, min: 0 },
  abortGradNorm: { type: "float", help: "a gradient norm above this aborts the round (exploding gradient), no candidate", default: 1e6, ...bounds("abortGradNorm") },
  durable: { type: "string", help: "durable consumer name on decisions (replicas would share it)", default: Durables.trainer.name },
  gameWindow: { type: "int", help: "game tasks: a round trains on the newest this many accepted games (with their symmetric images)", default: 1200, min: 1, max: 1_000_000 },
} as const;

/** The trainer's flags as the defaults of every TrainingConfig field a StartRound leaves unset. */
export function trainingDefaultsOf(cfg: ServiceConfig<typeof trainerOptions>): TrainingDefaults {
  return {
    mode: cfg.mode as "lora" | "full",
    mix: cfg.mix as MixMode,
    steps: cfg.steps,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    warmupSteps: cfg.warmupSteps,
    decayShare: cfg.decayShare,
    maxGradNorm: cfg.maxGradNorm,
    abortGradNorm: cfg.abortGradNorm,
    maxReuse: cfg.maxReuse,
    hardestShare: cfg.hardestShare,
    seed: cfg.seed,
    loraRank: cfg.loraRank,
    loraAlpha: cfg.loraAlpha,
    anchorRatio: cfg.anchorRatio,
    anchorMinDifficulty: cfg.anchorMinDifficulty,
    anchorMaxDifficulty: cfg.anchorMaxDifficulty,
  };
}

/** The trainer service: fine-tunes on consensus-accepted samples mixed with real anchor data */
export const trainerService: ServiceSpec<typeof trainerOptions> = {
  name: "trainer",
  description: "fine-tunes on consensus-accepted samples mixed with real anchor data",
  options: trainerOptions,
  topology: MESH_TOPOLOGY,
  async start(ctx) {
    const cfg = ctx.config;
    await startTaskModules(cfg, ctx.logger);
    const dataDir = resolve(cfg.dataDir);
    const tasks = new Set(cfg.task);
    const lineages = cfg.lineages;
    if (lineages.length === 0) throw new AutodidactError("--lineages must name at least one lineage", Code.InvalidArgument);
    const training = trainingDefaultsOf(cfg);
    resolveTraining(undefined, training); // flags that contradict each other fail the start, not every round
    const trainingSet = await openTrainingSet(join(dataDir, "training-set.jsonl"));
    const journal = await openRoundJournal(join(dataDir, "rounds.jsonl"));
    const registry = createRegistry(ctx.bus, { cacheDir: cfg.cacheDir ?? join(dataDir, "cache") });
    const runner: RoundRunner = createRoundRunner({
      bus: ctx.bus,
      registry,
      trainingSet,
      journal,
      dataDir,
      logger: ctx.logger,
      defaults: { lineages, training, threads: cfg.trainThreads, gameWindow: cfg.gameWindow },
    });
    const accepted = getMeter("autodidact-trainer").createCounter("autodidact.trainer.samples_accepted", {
      description: "accepted samples added to the training set",
    });
    // Rounds a crash interrupted come first (the runner is serial: auto rounds queue behind).
    void runner.recover();

    const lastTo = (task: string): number => {
      let to = 0;
      for (const r of journal.rounds()) if (r.plan.task === task) to = Math.max(to, r.plan.to);
      return to;
    };
    const maybeStartRound = (task: string): void => {
      if (cfg.roundMinSamples <= 0 || runner.busy() || ctx.signal.aborted) return;
      if (trainingSet.count(task) - lastTo(task) < cfg.roundMinSamples) return;
      runner.run({ task }, () => undefined).catch((err: unknown) => ctx.logger.warn("automatic round ended without candidate", { task, error: String(err) }));
    };

    const consumer: ConsumerHandle = await consume(
      ctx.bus,
      { ...Durables.trainer.spec(cfg.durable), description: "trainer intake of accepted samples" },
      async (msg) => {
        const sample = sampleFromDecision(msg.data);
        if (sample === undefined || !tasks.has(sample.task)) return;
        // Durable (fsync) before the handler returns, i.e. before the ack.
        if (await trainingSet.add(sample)) {
          accepted.add(1, { task: sample.task });
          maybeStartRound(sample.task);
        }
      },
      { maxInFlight: 16, logger: ctx.logger },
    );

    const info = createInfoHandler(TrainerService, {
      instanceId: ctx.instanceId,
      tasks: ctx.config.task,
      taskIdentities: taskIdentities(ctx.config.task),
      // durable: its intake of decisions (a conductor trains a round once it has acknowledged the round's decisions).
      attributes: { lineages: lineages.join(","), mode: cfg.mode, mix: cfg.mix, anchorRatio: String(cfg.anchorRatio), durable: cfg.durable },
    });
    return {
      services: [
        implement(TrainerService, {
          getInfo: () => info(),
          async *startRound(req) {
            const task = req.task || cfg.task[0] || "";
            if (!tasks.has(task)) throw new AutodidactError(`this trainer does not handle task "${task}"`, Code.InvalidArgument);
            const queue: RoundEvent[] = [];
            let wake: (() => void) | undefined;
            let finished = false;
            let failure: unknown;
            runner
              .run(
                {
                  task,
                  round: req.round,
                  ...(req.lineage ? { lineages: [req.lineage] } : {}),
                  baseVersion: Number(req.baseVersion),
                  maxSamples: Number(req.maxSamples),
                  ...(req.training !== undefined ? { training: req.training } : {}),
                },
                (e) => {
                  queue.push(e);
                  wake?.();
                },
              )
              .then(
                () => undefined,
                (err: unknown) => {
                  failure = err;
                },
              )
              .finally(() => {
                finished = true;
                wake?.();
              });
            for (;;) {
              const next = queue.shift();
              if (next !== undefined) {
                yield next;
                continue;
              }
              if (finished) break;
              await new Promise<void>((r) => (wake = r));
              wake = undefined;
            }
            if (failure !== undefined) throw failure;
          },
          async *fetchCheckpoint(req, call) {
            const lineage = req.lineage || lineages[0]!;
            const version = Number(req.version);
            if (!Number.isSafeInteger(version) || version < 1) throw new AutodidactError("FetchCheckpoint needs a version >= 1", Code.InvalidArgument);
            const record = await registry.getCheckpoint(lineage, version);
            if (record === undefined) throw new AutodidactError(`checkpoint ${lineage}@${version} is not in the registry`, Code.NotFound);
            const dir = (await localCheckpointDir(dataDir, lineage, version)) ?? (await registry.materialize(lineage, version));
            yield* streamCheckpointFiles(record, dir, req, call.signal);
          },
        }),
      ],
      async stop() {
        await consumer.stop();
        await trainingSet.close().catch(() => undefined);
      },
    };
  },
};
