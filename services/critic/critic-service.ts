import { startTaskModules, taskIdentities } from "../../src/domain/tasks/index.js";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createModelWorker, selectedExecutionProvider, type ModelWorker, type OpenDecoder } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { CriticService, SwapModelResponseSchema } from "../../src/gen/autodidact/v1/critic_pb.js";
import type { ServiceSpec } from "../../src/platform/host/index.js";
import { createInfoHandler, implement } from "../../src/platform/rpc/index.js";
import {
  checkpointVersion,
  createModelHolder,
  followPromoted,
  linkRegistry,
  loadClassifierModel,
  loadDecoderModel,
  parseModelRef,
  resolveModelSource,
  servedModel,
  validateClassifierModel,
  validateDecoderModel,
  type ClassifierModel,
  type LoadedModel,
  type ModelHolder,
  type ModelSource,
  type PromotedRegistry,
  readModelRefFile,
  watchModelRefFile,
  type SwapResult,
} from "../../src/domain/serving/index.js";
import { createCritic } from "./critic.js";
import { withGameRules } from "./game-judge.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import {
  createAcceptAllJudge,
  createClassifierJudge,
  createLikelihoodJudge,
  createModelJudge,
  createNoveltyJudge,
  createRulesJudge,
  createVerifierJudge,
  CRITIC_KINDS,
  type CriticKind,
  type Judge,
} from "./judges.js";

/** Flags of the critic service beyond the ones every service takes. */
export const criticOptions = {
  task: { type: "list", help: "task packs this instance handles", env: "AUTODIDACT_TASKS", default: ["addition"] },
  kind: { type: "enum", values: CRITIC_KINDS, help: "critic method", env: "AUTODIDACT_CRITIC_KIND", default: "rules" },
  criticId: { type: "string", help: "critic id on verdicts and its durable (replicas share it); default: instance id", env: "AUTODIDACT_CRITIC_ID" },
  model: { type: "string", help: "model: a folder/.onnx path or <lineage>@<version> (model, likelihood, classifier kinds)", env: "AUTODIDACT_CRITIC_MODEL" },
  modelFile: { type: "string", help: "file holding the model reference (a mounted ConfigMap key), used when --model is unset; polled: a new reference swaps the model live", env: "AUTODIDACT_CRITIC_MODEL_FILE" },
  modelFilePoll: { type: "duration", help: "how often --model-file is checked for a new reference", default: 2_000, min: 100 },
  lineage: { type: "string", help: "lineage of SwapModel checkpoint versions (and of --follow-promoted)", env: "AUTODIDACT_LINEAGE", default: "main" },
  followPromoted: { type: "bool", help: "serve the promoted checkpoint of --lineage and swap on every promotion or rollback", default: false },
  threshold: { type: "float", help: "approval threshold (likelihood: mean log-prob; novelty: max Jaccard of the near-duplicate measure; model: agreeing share; classifier: probability)", env: "AUTODIDACT_CRITIC_THRESHOLD" },
  samples: { type: "int", help: "model kind: own answers per sample (1 = greedy)", default: 1, min: 1, max: 64 },
  minLogprob: { type: "float", help: "model kind: an own answer agrees only if its least likely token has at least this log-prob (e.g. -0.01; default: any)", env: "AUTODIDACT_CRITIC_MIN_LOGPROB" },
  temperature: { type: "float", help: "model kind: temperature of its own answers when samples > 1", default: 0.7, min: 0 },
  classifierLabel: { type: "int", help: "classifier kind: index of the 'good sample' label", default: 1, min: 0 },
  ngram: { type: "int", help: "novelty kind: character n-gram size", default: 3, min: 1, max: 16 },
  noveltyWindow: { type: "int", help: "novelty kind: accepted samples per task the near-duplicate measure compares with (the already-labelled check remembers up to 100000 prompts)", default: 1000, min: 1 },
  maxCompletionChars: { type: "int", help: "rules kind: longest completion accepted (0 = the task's own limit)", default: 0, min: 0 },
  maxInFlight: { type: "int", help: "samples judged at once by this process", default: 16, min: 1, max: 1024 },
  ackWait: { type: "duration", help: "how long a sample taken by a replica that died waits before redelivery", default: 30_000, min: 100 },
  cacheDir: { type: "string", help: "where registry checkpoints are downloaded", env: "AUTODIDACT_CACHE_DIR" },
} as const;

type AnyHolder = { kind: "decoder"; holder: ModelHolder<OpenDecoder> } | { kind: "classifier"; holder: ModelHolder<ClassifierModel> };

/**
 * The critic service: judges every proposed sample with its own model or method and publishes its
 * verdict. It only judges: the consensus service (services/consensus) decides.
 */
export const criticService: ServiceSpec<typeof criticOptions> = {
  name: "critic",
  description: "judges every proposed sample with its own model or method",
  options: criticOptions,
  topology: MESH_TOPOLOGY,
  async start(ctx) {
    const cfg = ctx.config;
    const kind = cfg.kind as CriticKind;
    const criticId = cfg.criticId ?? ctx.instanceId;
    const logger = ctx.logger;
    await startTaskModules(cfg, logger);
    const needsModel = kind === "model" || kind === "likelihood" || kind === "classifier";
    const modelRef = cfg.model ?? (needsModel && cfg.modelFile !== undefined ? await readModelRefFile(cfg.modelFile) : undefined);
    if (needsModel && modelRef === undefined && !(cfg.followPromoted && kind !== "classifier")) {
      throw new AutodidactError(`--kind ${kind} needs --model (a path or <lineage>@<version>)`, Code.InvalidArgument);
    }
    if (kind === "verifier") {
      logger.warn("critic uses the task's ground-truth verifier: only for deployments that configure it on purpose", { criticId });
    }
    let registry: PromotedRegistry | undefined;
    const getRegistry = async (): Promise<PromotedRegistry | undefined> =>
      (registry ??= await linkRegistry(ctx.bus, cfg.cacheDir ?? join(tmpdir(), "autodidact-cache", criticId)));

    let worker: ModelWorker | undefined;
    let models: AnyHolder | undefined;
    const loadFrom = async (source: ModelSource, expectedDigest: string): Promise<SwapResult> => {
      if (models === undefined) throw new AutodidactError(`critic kind ${kind} has no model to swap`, Code.FailedPrecondition);
      const host = (worker ??= createModelWorker({ name: `critic-${criticId}` }));
      const fetcher = await getRegistry();
      const { path, version } = await resolveModelSource(source, fetcher);
      const checkDigest = async <M>(loaded: LoadedModel<M>): Promise<LoadedModel<M>> => {
        const want = expectedDigest.replace(/^sha256:/, "");
        if (want !== "" && !loaded.version.endsWith(want)) {
          await loaded.release().catch(() => undefined);
          throw new AutodidactError(`model at ${path} has version ${loaded.version}, expected digest ${want}`, Code.FailedPrecondition);
        }
        return loaded;
      };
      if (models.kind === "decoder") return models.holder.swap(async () => checkDigest(await loadDecoderModel(host, path, version, fetcher !== undefined ? { fetcher } : {})));
      return models.holder.swap(async () => checkDigest(await loadClassifierModel(host, path, version)));
    };

    let judge: Judge;
    switch (kind) {
      case "model":
      case "likelihood": {
        const holder = createModelHolder<OpenDecoder>({ name: `critic ${criticId} model`, validate: validateDecoderModel, logger });
        models = { kind: "decoder", holder };
        judge =
          kind === "model"
            ? createModelJudge(holder, {
                samples: cfg.samples,
                temperature: cfg.temperature,
                ...(cfg.threshold !== undefined ? { threshold: cfg.threshold } : {}),
                ...(cfg.minLogprob !== undefined ? { minLogprob: cfg.minLogprob } : {}),
              })
            : createLikelihoodJudge(holder, cfg.threshold !== undefined ? { threshold: cfg.threshold } : {});
        break;
      }
      case "classifier": {
        const holder = createModelHolder<ClassifierModel>({ name: `critic ${criticId} classifier`, validate: validateClassifierModel, logger });
        models = { kind: "classifier", holder };
        judge = createClassifierJudge(holder, { label: cfg.classifierLabel, ...(cfg.threshold !== undefined ? { threshold: cfg.threshold } : {}) });
        break;
      }
      case "rules":
        judge = withGameRules(createRulesJudge(cfg.maxCompletionChars > 0 ? { maxCompletionChars: cfg.maxCompletionChars } : {}));
        break;
      case "novelty":
        judge = createNoveltyJudge({ n: cfg.ngram, window: cfg.noveltyWindow, ...(cfg.threshold !== undefined ? { threshold: cfg.threshold } : {}) });
        break;
      case "verifier":
        judge = createVerifierJudge();
        break;
      case "accept-all":
        logger.warn("critic approves every sample without judging (accept-all): an ablation, not a filter", { criticId });
        judge = createAcceptAllJudge();
        break;
    }

    let unwatch: (() => void) | undefined;
    let stopModelFile: (() => Promise<void>) | undefined;
    const critic = createCritic({ bus: ctx.bus, criticId, judge, maxInFlight: cfg.maxInFlight, ackWaitMs: cfg.ackWait, logger });
    try {
      if (modelRef !== undefined) await loadFrom(parseModelRef(modelRef), "");
      if (cfg.model === undefined && cfg.modelFile !== undefined && modelRef !== undefined) {
        stopModelFile = watchModelRefFile({ path: cfg.modelFile, initial: modelRef, intervalMs: cfg.modelFilePoll, onChange: (ref) => loadFrom(parseModelRef(ref), ""), logger });
      }
      if (cfg.followPromoted && models?.kind === "decoder") {
        const reg = await getRegistry();
        if (reg === undefined) throw new AutodidactError("--follow-promoted needs the checkpoint registry (src/domain/registry)", Code.FailedPrecondition);
        const host = (worker ??= createModelWorker({ name: `critic-${criticId}` }));
        unwatch = await followPromoted({ registry: reg, lineage: cfg.lineage, holder: models.holder, load: (dir, version) => loadDecoderModel(host, dir, version, { fetcher: reg }), logger });
        if (models.holder.version === undefined && modelRef === undefined) {
          throw new AutodidactError(`--follow-promoted: lineage ${cfg.lineage} has no loadable promoted checkpoint yet`, Code.FailedPrecondition);
        }
      }
      await critic.start();
    } catch (err) {
      unwatch?.();
      await stopModelFile?.();
      await critic.stop().catch(() => undefined);
      await models?.holder.close().catch(() => undefined);
      await worker?.close().catch(() => undefined);
      throw err;
    }

    const info = createInfoHandler(CriticService, {
      instanceId: ctx.instanceId,
      tasks: cfg.task,
      taskIdentities: taskIdentities(cfg.task),
      attributes: { criticId, kind, executionProvider: selectedExecutionProvider() },
      models: () => {
        const v = models?.holder.version;
        return v === undefined ? [] : [servedModel("critic", v)];
      },
    });
    return {
      services: [
        implement(CriticService, {
          getInfo: () => info(),
          async score(req) {
            if (req.sample === undefined) throw new AutodidactError("ScoreRequest has no sample", Code.InvalidArgument);
            return critic.score(req.sample);
          },
          async swapModel(req) {
            let source: ModelSource;
            if (req.source.case === "path") source = { kind: "path", path: req.source.value };
            else if (req.source.case === "checkpointVersion") {
              source = { kind: "checkpoint", lineage: req.lineage || cfg.lineage, version: Number(req.source.value) };
            } else throw new AutodidactError("SwapModelRequest needs a path or a checkpoint_version", Code.InvalidArgument);
            if (source.kind === "checkpoint") logger.info("swapping to checkpoint", { version: checkpointVersion(source.lineage, source.version) });
            const r = await loadFrom(source, req.expectedDigest);
            return create(SwapModelResponseSchema, { oldVersion: r.oldVersion, newVersion: r.newVersion, swappedAt: timestampFromDate(r.swappedAt), loadMs: r.loadMs });
          },
          async getAgreement(req) {
            return critic.agreement(req.task, req.window);
          },
        }),
      ],
      async stop() {
        unwatch?.();
        await stopModelFile?.();
        await critic.stop();
        await models?.holder.close();
        await worker?.close();
      },
    };
  },
};
