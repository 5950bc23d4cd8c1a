import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { randomInt, randomUUID } from "node:crypto";
import { waitForLagBelow, type Bus, type PublishResult } from "../../src/platform/bus/index.js";
import { Durables, Subjects } from "../../src/domain/topology/index.js";
import type { OpenDecoder } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { SamplingParamsSchema } from "../../src/gen/autodidact/v1/common_pb.js";
import { SampleLineageSchema, SampleSchema, type Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { ModelHolder } from "../../src/domain/serving/index.js";
import { getTaskPack, taskIdentity, type TaskPack, type TaskProblem, type TaskStream } from "../../src/domain/tasks/index.js";
import { createLogger, getMeter, getTracer, type Logger } from "../../src/platform/telemetry/index.js";

/** Most samples one Generate call may ask for. */
export const MAX_GENERATE_COUNT = 4096;

/** An id prefix: its ids `<prefix>-<index>` are KV keys and message ids (sample ids: at most 200 characters). */
const ID_PREFIX = /^[A-Za-z0-9_-]{1,160}$/;

/** Sampling settings of one batch; unset fields take the proposer's defaults. */
export interface ProposeRequest {
  task?: string;
  count: number;
  /** 0/undefined = the configured difficulty. */
  difficulty?: number;
  /** 0 = greedy. */
  temperature?: number;
  /** 0/undefined = default. */
  topP?: number;
  topK?: number;
  /** 0/undefined = random (recorded in each sample). */
  seed?: number;
  round?: number;
  /** Also publish each sample to `samples.proposed.<task>`. */
  publish?: boolean;
  /**
   * Deterministic sample ids `<idPrefix>-<index>` (index over the request) instead of random UUIDs:
   * needs a fixed seed, so a repeated request proposes the same samples with the same ids.
   */
  idPrefix?: string;
  signal?: AbortSignal;
}

/** Options of {@link createProposer}. */
export interface ProposerOptions {
  readonly bus: Bus;
  readonly holder: ModelHolder<OpenDecoder>;
  /** Instance id recorded in every sample. */
  readonly generatorId: string;
  /** Checkpoint lineage of the generator model (sample lineage). */
  readonly lineage: string;
  readonly task: string;
  readonly difficulty: number;
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  /** Seed of the proposing loop's prompt stream and sampling (0 = random). */
  readonly seed: number;
  readonly batchSize: number;
  /** 0 = the task's longest answer + the end token. */
  readonly maxNewTokens?: number;
  readonly round?: number;
  readonly logger?: Logger;
}

/** Options of {@link Proposer.run}. */
export interface ProposeLoopOptions {
  /** Batches generating or publishing at once (default 2). */
  maxInFlight?: number;
  /** Back-pressure: wait while any critic durable has this many samples pending (default 1000). */
  maxLag?: number;
  /** Critic durables to watch; default every critic durable (`Durables.critic`) on the samples stream. */
  durables?: readonly string[];
  /** Stop after this many samples (default: until aborted). */
  limit?: number;
  signal: AbortSignal;
}

/** Counters of a proposer. */
export interface ProposerStats {
  generated: number;
  published: number;
  duplicates: number;
  batches: number;
  /** Times the loop waited for critics to catch up. */
  throttled: number;
}

/** Generates samples with the served model and proposes them to the critics. */
export interface Proposer {
  /** Generates `count` samples, batch by batch, yielding each as soon as its batch is done. */
  generate(request: ProposeRequest): AsyncIterable<Sample>;
  /** Publishes one sample to `samples.proposed.<task>` with its id as message id and its trace context. */
  publish(sample: Sample): Promise<PublishResult>;
  /** The proposing loop: batches of fresh prompts at the configured difficulty, throttled by critic lag. */
  run(options: ProposeLoopOptions): Promise<void>;
  stats(): Readonly<ProposerStats>;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Creates the generator's proposer. Exists so the Generate RPC and the background loop produce
 * samples the same way: prompts from the task pack, completions (with per-token log-probs) from the
 * model current at the start of each batch, and the model version, lineage, seed and sampling
 * parameters recorded in each sample; publishing de-duplicates by sample id.
 */
export function createProposer(options: ProposerOptions): Proposer {
  const { bus, holder } = options;
  const logger = options.logger ?? createLogger("generator");
  const tracer = getTracer("autodidact.generator");
  const meter = getMeter("autodidact.generator");
  const proposedCounter = meter.createCounter("autodidact.generator.samples", { description: "samples generated" });
  const stats: ProposerStats = { generated: 0, published: 0, duplicates: 0, batches: 0, throttled: 0 };
  const samplers = new Map<string, TaskStream<TaskProblem>>();

  const samplerFor = (task: TaskPack, difficulty: number, seed: number | undefined): TaskStream<TaskProblem> => {
    if (seed !== undefined) return task.createPromptSampler({ seed, difficulty });
    const key = `${task.name}/${difficulty}`;
    let s = samplers.get(key);
    if (s === undefined) {
      s = task.createPromptSampler({ seed: options.seed !== 0 ? options.seed : randomInt(1, 2 ** 31), difficulty });
      samplers.set(key, s);
    }
    return s;
  };

  let batchCounter = 0;
  /** `firstIndex`: index of the batch's first sample in its request (for `<idPrefix>-<index>` ids). */
  const batch = async (task: TaskPack, problems: readonly TaskProblem[], req: ProposeRequest, seed: number, firstIndex: number): Promise<Sample[]> => {
    const temperature = req.temperature ?? options.temperature;
    const topP = req.topP !== undefined && req.topP > 0 ? req.topP : options.topP;
    const topK = req.topK ?? options.topK;
    const maxDifficulty = Math.max(...problems.map((p) => p.difficulty));
    const maxNewTokens = options.maxNewTokens !== undefined && options.maxNewTokens > 0 ? options.maxNewTokens : task.maxAnswerLength(maxDifficulty) + 1;
    return holder.use(async (model, version) => {
      const gens = await model.generator.generate(
        problems.map((p) => p.prompt),
        {
          maxNewTokens,
          addBos: true,
          seed,
          ...(temperature === 0 ? { greedy: true } : { temperature }),
          ...(topP > 0 && topP < 1 ? { topP } : {}),
          ...(topK > 0 ? { topK } : {}),
        },
      );
      stats.batches++;
      stats.generated += gens.length;
      proposedCounter.add(gens.length, { task: task.name });
      return gens.map((g, i) => {
        const p = problems[i] as TaskProblem;
        return create(SampleSchema, {
          id: req.idPrefix !== undefined && req.idPrefix !== "" ? `${req.idPrefix}-${firstIndex + i}` : randomUUID(),
          task: task.name,
          prompt: p.prompt,
          completion: task.normalize(g.text),
          tokenLogprobs: [...g.logprobs],
          difficulty: p.difficulty,
          generatorModelVersion: version,
          lineage: create(SampleLineageSchema, { generatorLineage: options.lineage, promptId: p.id }),
          round: req.round ?? options.round ?? 0,
          createdAt: timestampNow(),
          seed: BigInt(seed),
          sampling: create(SamplingParamsSchema, { temperature, topP, topK, maxTokens: maxNewTokens }),
          real: false,
          generatorId: options.generatorId,
          taskIdentity: taskIdentity(task.name),
        });
      });
    });
  };

  const publish = async (sample: Sample): Promise<PublishResult> => {
    // Each sample starts its own trace: generate → every critic's verdict → consensus → training.
    const span = tracer.startSpan("propose sample", {
      kind: SpanKind.PRODUCER,
      root: true,
      attributes: { "autodidact.sample_id": sample.id, "autodidact.task": sample.task, "autodidact.model_version": sample.generatorModelVersion },
    });
    try {
      const r = await context.with(trace.setSpan(context.active(), span), () =>
        bus.publish(Subjects.proposed(sample.task), toBinary(SampleSchema, sample), { msgId: sample.id }),
      );
      if (r.duplicate) stats.duplicates++;
      else stats.published++;
      return r;
    } finally {
      span.end();
    }
  };

  const proposer: Proposer = {
    async *generate(req) {
      if (!Number.isInteger(req.count) || req.count < 1 || req.count > MAX_GENERATE_COUNT) {
        throw new AutodidactError(`count must be in 1..${MAX_GENERATE_COUNT}, got ${req.count}`, Code.InvalidArgument);
      }
      const task = getTaskPack(req.task !== undefined && req.task !== "" ? req.task : options.task);
      const difficulty = req.difficulty !== undefined && req.difficulty !== 0 ? req.difficulty : options.difficulty;
      const fixedSeed = req.seed !== undefined && req.seed !== 0 ? req.seed : undefined;
      if (req.idPrefix !== undefined && req.idPrefix !== "") {
        if (!ID_PREFIX.test(req.idPrefix)) {
          throw new AutodidactError(`id_prefix must be 1..160 letters, digits, "_" or "-", got ${JSON.stringify(req.idPrefix.slice(0, 80))}`, Code.InvalidArgument);
        }
        // Without a fixed seed a repeat would give other prompts the same ids.
        if (fixedSeed === undefined) throw new AutodidactError("id_prefix needs a fixed seed (seed != 0)", Code.InvalidArgument);
      }
      const sampler = samplerFor(task, difficulty, fixedSeed);
      let left = req.count;
      let index = 0;
      let produced = 0;
      while (left > 0) {
        if (req.signal?.aborted === true) throw new AutodidactError("generation cancelled", Code.Canceled);
        const n = Math.min(left, options.batchSize);
        const seed = fixedSeed !== undefined ? fixedSeed + index : options.seed !== 0 ? options.seed + ++batchCounter : randomInt(1, 2 ** 31);
        const samples = await batch(task, sampler.take(n), req, seed, produced);
        if (req.publish === true) await Promise.all(samples.map(publish));
        for (const s of samples) yield s;
        left -= n;
        produced += n;
        index++;
      }
    },
    publish,
    async run(loop) {
      const maxInFlight = Math.max(1, loop.maxInFlight ?? 2);
      const maxLag = Math.max(1, loop.maxLag ?? 1000);
      const inFlight = new Set<Promise<void>>();
      let produced = 0;
      let durables: readonly string[] = loop.durables ?? [];
      let durablesAt = 0;
      const watched = async (): Promise<readonly string[]> => {
        if (loop.durables !== undefined) return loop.durables;
        if (Date.now() - durablesAt > 5_000) {
          durablesAt = Date.now();
          const names: string[] = [];
          try {
            for await (const c of bus.jsm.consumers.list(Durables.critic.stream)) if (Durables.critic.matches(c.name)) names.push(c.name);
            durables = names;
          } catch (err) {
            logger.debug("cannot list critic durables", { error: String(err) });
          }
        }
        return durables;
      };
      while (!loop.signal.aborted && (loop.limit === undefined || produced < loop.limit)) {
        if (holder.version === undefined) {
          await sleep(500, loop.signal);
          continue;
        }
        for (const durable of await watched()) {
          const lag = await waitForLagBelow(bus, Durables.critic.stream, durable, maxLag, { signal: loop.signal, pollMs: 100 }).catch(() => undefined);
          if (lag !== undefined && lag.total > maxLag / 2) stats.throttled++;
        }
        if (loop.signal.aborted) break;
        while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
        const n = loop.limit !== undefined ? Math.min(options.batchSize, loop.limit - produced) : options.batchSize;
        produced += n;
        const p = (async () => {
          try {
            const samples: Sample[] = [];
            for await (const s of proposer.generate({ count: n })) samples.push(s);
            await Promise.all(samples.map(publish));
          } catch (err) {
            produced -= n;
            logger.warn("proposing batch failed", { error: err instanceof Error ? err.message : String(err) });
            await sleep(1_000, loop.signal);
          }
        })();
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await Promise.all(inFlight);
    },
    stats: () => ({ ...stats }),
  };
  return proposer;
}
