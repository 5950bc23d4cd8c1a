// The generator service for a game task: follows the promoted policy/value checkpoint of its lineage
// (or serves --model) and answers Generate with self-play games (game-proposer.ts).
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createModelWorker, selectedExecutionProvider, type ModelWorker } from "../../src/engine/index.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { requireRole } from "../../src/platform/auth/index.js";
import type { ServiceContext, StartedService } from "../../src/platform/host/index.js";
import { createInfoHandler, implement } from "../../src/platform/rpc/index.js";
import {
  createModelHolder,
  followPromoted,
  linkRegistry,
  loadPolicyValueServing,
  parseModelRef,
  resolveModelSource,
  servedModel,
  validatePolicyValueModel,
  type PolicyValueModel,
} from "../../src/domain/serving/index.js";
import { createGameProposer } from "./game-proposer.js";
import type { generatorOptions } from "./generator-service.js";

/** Starts the generator's game path for `task` (a game pack): the model, the proposer and the RPCs. */
export async function startGameGenerator(ctx: ServiceContext<typeof generatorOptions>, task: string): Promise<StartedService> {
  const cfg = ctx.config;
  const logger = ctx.logger;
  if (cfg.propose) logger.warn("--propose is ignored for game tasks: the conductor asks for each round's games");
  const holder = createModelHolder<PolicyValueModel>({ name: "generator policy/value model", validate: validatePolicyValueModel, logger });
  const worker: ModelWorker = createModelWorker({ name: "generator" });
  const registry = await linkRegistry(ctx.bus, cfg.cacheDir ?? join(tmpdir(), "autodidact-cache", ctx.instanceId));
  let unwatch: (() => void) | undefined;
  try {
    if (cfg.model !== undefined) {
      const { path, version } = await resolveModelSource(parseModelRef(cfg.model), registry);
      await holder.swap(() => loadPolicyValueServing(worker, path, version));
    } else if (registry !== undefined) {
      unwatch = await followPromoted({ registry, lineage: cfg.lineage, holder, load: (dir, version) => loadPolicyValueServing(worker, dir, version), logger });
      if (holder.version === undefined) logger.warn("no promoted checkpoint to play with yet: Generate answers FAILED_PRECONDITION until one is promoted", { lineage: cfg.lineage });
    }
  } catch (err) {
    unwatch?.();
    await holder.close().catch(() => undefined);
    await worker.close().catch(() => undefined);
    throw err;
  }
  const proposer = createGameProposer({
    bus: ctx.bus,
    holder,
    generatorId: ctx.instanceId,
    lineage: cfg.lineage,
    task,
    search: {
      simulations: cfg.simulations,
      temperatureMoves: cfg.temperatureMoves,
      concurrency: cfg.gameConcurrency,
      dirichletAlpha: cfg.dirichletAlpha,
      dirichletEpsilon: cfg.dirichletEpsilon,
    },
    logger,
  });
  const info = createInfoHandler(GeneratorService, {
    instanceId: ctx.instanceId,
    tasks: cfg.task,
    attributes: {
      lineage: cfg.lineage,
      game: task,
      simulations: String(cfg.simulations),
      executionProvider: selectedExecutionProvider(),
    },
    models: () => (holder.version === undefined ? [] : [servedModel("generator", holder.version)]),
  });
  return {
    services: [
      implement(GeneratorService, {
        getInfo: () => {
          // Self-play throughput so far (positions searched per second of self-play), read by benches and status.
          const out = info();
          const s = proposer.stats();
          out.attributes["selfPlayGames"] = String(s.games);
          out.attributes["selfPlayPositions"] = String(s.positions);
          out.attributes["selfPlaySeconds"] = s.seconds.toFixed(3);
          return out;
        },
        async *generate(req, call) {
          if (req.publish) requireRole(call, "admin", "publish samples (Generate with publish)");
          yield* proposer.generate({
            task: req.task,
            count: req.count,
            difficulty: req.difficulty,
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
      await holder.close();
      await worker.close();
    },
  };
}
