import { tmpdir } from "node:os";
import { join } from "node:path";
import { createModelWorker, selectedExecutionProvider, type ModelWorker, type OpenDecoder } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { requireRole } from "../../src/platform/auth/index.js";
import type { ServiceSpec } from "../../src/platform/host/index.js";
import { createInfoHandler, implement } from "../../src/platform/rpc/index.js";
import {
  createModelHolder,
  followPromoted,
  linkRegistry,
  loadDecoderModel,
  parseModelRef,
  resolveModelSource,
  servedModel,
  validateDecoderModel,
  type ModelSource,
  type PromotedRegistry,
} from "../../src/domain/serving/index.js";
import { getTaskPack, startTaskModules, taskIdentities } from "../../src/domain/tasks/index.js";
import { isGameTask } from "../../src/domain/games/index.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { createProposer } from "./proposer.js";
import { startGameGenerator } from "./game-generator.js";

/** Flags of the generator service beyond the ones every service takes. */
export const generatorOptions = {
  task: { type: "list", help: "task packs this instance handles (the first is the default)", env: "AUTODIDACT_TASKS", default: ["addition"] },
  lineage: { type: "string", help: "checkpoint lineage whose promoted version it serves", env: "AUTODIDACT_LINEAGE", default: "main" },
  model: { type: "string", help: "serve this model (path or <lineage>@<version>) instead of following the promoted checkpoint", env: "AUTODIDACT_GENERATOR_MODEL" },
  propose: { type: "bool", help: "run the proposing loop (off: only Generate on demand)", env: "AUTODIDACT_PROPOSE", default: false },
  proposeLimit: { type: "int", help: "stop the proposing loop after this many samples (0 = never)", default: 0, min: 0 },
  difficulty: { type: "int", help: "difficulty of proposed prompts", env: "AUTODIDACT_DIFFICULTY", default: 3, min: 1 },
  temperature: { type: "float", help: "sampling temperature (0 = greedy)", default: 0.7, min: 0 },
  topP: { type: "float", help: "nucleus sampling mass (1 = off)", default: 1, min: 0, max: 1 },
  topK: { type: "int", help: "top-k cut-off (0 = off)", default: 0, min: 0 },
  seed: { type: "int", help: "seed of the prompt stream and sampling (0 = random)", default: 0, min: 0 },
  batchSize: { type: "int", help: "prompts completed per batched generation", default: 32, min: 1, max: 4096 },
  maxInFlight: { type: "int", help: "batches generating or publishing at once", default: 2, min: 1, max: 64 },
  maxLag: { type: "int", help: "back-pressure: pause while a critic durable has this many samples pending", default: 1000, min: 1 },
  maxNewTokens: { type: "int", help: "tokens generated per completion (0 = the task's longest answer + end)", default: 0, min: 0 },
  round: { type: "int", help: "round recorded in proposed samples", default: 0, min: 0 },
  cacheDir: { type: "string", help: "where registry checkpoints are downloaded", env: "AUTODIDACT_CACHE_DIR" },
  simulations: { type: "int", help: "game tasks: PUCT simulations per self-play move", env: "AUTODIDACT_SIMULATIONS", default: 64, min: 1, max: 100_000 },
  temperatureMoves: { type: "int", help: "game tasks: opening plies played in proportion to visits (then the most visited move)", default: 8, min: 0 },
  gameConcurrency: { type: "int", help: "game tasks: games in flight at once (their leaves share one engine call)", default: 128, min: 1, max: 4096 },
  dirichletAlpha: { type: "float", help: "game tasks: Dirichlet noise concentration at the root", default: 1, min: 0 },
  dirichletEpsilon: { type: "float", help: "game tasks: share of root noise in the prior", default: 0.25, min: 0, max: 1 },
} as const;

/** The generator service: proposes synthetic samples with the promoted model */
export const generatorService: ServiceSpec<typeof generatorOptions> = {
  name: "generator",
  description: "proposes synthetic samples with the promoted model",
  options: generatorOptions,
  topology: MESH_TOPOLOGY,
  async start(ctx) {
    const cfg = ctx.config;
    const logger = ctx.logger;
    await startTaskModules(cfg, logger);
    const defaultTask = cfg.task[0];
    if (defaultTask === undefined) throw new AutodidactError("--task needs at least one task", Code.InvalidArgument);
    // A game task: self-play with the promoted policy/value model (game-generator.ts).
    if (isGameTask(defaultTask)) return startGameGenerator(ctx, defaultTask);
    getTaskPack(defaultTask);
    const holder = createModelHolder<OpenDecoder>({ name: "generator model", validate: validateDecoderModel, logger });
    let worker: ModelWorker | undefined;
    let registry: PromotedRegistry | undefined;
    const load = async (source: ModelSource): Promise<void> => {
      const host = (worker ??= createModelWorker({ name: "generator" }));
      const { path, version } = await resolveModelSource(source, registry);
      await holder.swap(() => loadDecoderModel(host, path, version, registry !== undefined ? { fetcher: registry } : {}));
    };
    let unwatch: (() => void) | undefined;
    const proposer = createProposer({
      bus: ctx.bus,
      holder,
      generatorId: ctx.instanceId,
      lineage: cfg.lineage,
      task: defaultTask,
      difficulty: cfg.difficulty,
      temperature: cfg.temperature,
      topP: cfg.topP,
      topK: cfg.topK,
      seed: cfg.seed,
      batchSize: cfg.batchSize,
      maxNewTokens: cfg.maxNewTokens,
      round: cfg.round,
      logger,
    });
    try {
      if (cfg.model !== undefined) {
        registry = await linkRegistry(ctx.bus, cfg.cacheDir ?? join(tmpdir(), "autodidact-cache", ctx.instanceId));
        await load(parseModelRef(cfg.model));
      } else {
        registry = await linkRegistry(ctx.bus, cfg.cacheDir ?? join(tmpdir(), "autodidact-cache", ctx.instanceId));
        if (registry === undefined) logger.warn("no checkpoint registry and no --model: Generate answers FAILED_PRECONDITION until a model is set");
        else {
          const host = (worker ??= createModelWorker({ name: "generator" }));
          unwatch = await followPromoted({ registry, lineage: cfg.lineage, holder, load: (dir, version) => loadDecoderModel(host, dir, version, { fetcher: registry }), logger });
          if (holder.version === undefined) logger.warn("no promoted checkpoint to serve yet: Generate answers FAILED_PRECONDITION until one is promoted", { lineage: cfg.lineage });
        }
      }
    } catch (err) {
      unwatch?.();
      await holder.close().catch(() => undefined);
      await worker?.close().catch(() => undefined);
      throw err;
    }
    let loop: Promise<void> | undefined;
    if (cfg.propose) {
      loop = proposer.run({ signal: ctx.signal, maxInFlight: cfg.maxInFlight, maxLag: cfg.maxLag, ...(cfg.proposeLimit > 0 ? { limit: cfg.proposeLimit } : {}) }).catch((err: unknown) => {
        if (!ctx.signal.aborted) logger.error("proposing loop stopped", { error: String(err) });
      });
    }

    const info = createInfoHandler(GeneratorService, {
      instanceId: ctx.instanceId,
      tasks: cfg.task,
      taskIdentities: taskIdentities(cfg.task),
      attributes: { lineage: cfg.lineage, propose: String(cfg.propose), executionProvider: selectedExecutionProvider() },
      models: () => {
        const v = holder.version;
        return v === undefined ? [] : [servedModel("generator", v)];
      },
    });
    return {
      services: [
        implement(GeneratorService, {
          getInfo: () => info(),
          async *generate(req, call) {
            // Publishing writes proposed samples into the training pipeline: an administrative act.
            if (req.publish) requireRole(call, "admin", "publish samples (Generate with publish)");
            yield* proposer.generate({
              task: req.task,
              count: req.count,
              difficulty: req.difficulty,
              temperature: req.temperature,
              topP: req.topP,
              topK: req.topK,
              seed: Number(req.seed % BigInt(2 ** 31)),
              round: req.round,
              publish: req.publish,
              idPrefix: req.idPrefix,
              signal: call.signal,
            });
          },
        }),
      ],
      async stop() {
        unwatch?.();
        await loop;
        await holder.close();
        await worker?.close();
      },
    };
  },
};
