// Search-guided self-play for game tasks: the generator's game path. A Generate call for a game task
// plays `count` games of the promoted policy/value model against itself (PUCT with root noise and
// temperature for the opening plies, the leaves of concurrent games batched into one engine call)
// and publishes each finished game as a Sample whose typed payload is the game record.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { randomInt, randomUUID } from "node:crypto";
import type { Bus } from "../../src/platform/bus/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { SamplingParamsSchema } from "../../src/gen/autodidact/v1/common_pb.js";
import { SampleLineageSchema, SampleSchema, type Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { ModelHolder, PolicyValueModel } from "../../src/domain/serving/index.js";
import { gameRecordToProto, getGamePack, movesText, NetworkEvaluator, selfPlay, type GamePack, type SelfPlayStats } from "../../src/domain/games/index.js";
import { getMeter, getTracer, type Logger } from "../../src/platform/telemetry/index.js";
import { MAX_GENERATE_COUNT, type ProposeRequest } from "./proposer.js";

/** Search settings of the generator's self-play (flags). */
export interface GameSearchSettings {
  /** PUCT simulations per move. */
  readonly simulations: number;
  /** Plies played ∝ visits (temperature 1) before the most visited move is taken. */
  readonly temperatureMoves: number;
  /** Games in flight at once: their leaves share one engine call. */
  readonly concurrency: number;
  readonly dirichletAlpha: number;
  readonly dirichletEpsilon: number;
}

/** Options of {@link createGameProposer}. */
export interface GameProposerOptions {
  readonly bus: Bus;
  readonly holder: ModelHolder<PolicyValueModel>;
  readonly generatorId: string;
  readonly lineage: string;
  /** The default task (a game pack name). */
  readonly task: string;
  readonly search: GameSearchSettings;
  readonly logger: Logger;
}

/** Self-play throughput of the last call, for status and benches. */
export interface GameProposerStats {
  games: number;
  positions: number;
  seconds: number;
  last?: SelfPlayStats;
}

/** The game path of the generator. */
export interface GameProposer {
  /** Plays `count` games (in chunks of `concurrency`) and yields each game's sample, published first when asked. */
  generate(request: ProposeRequest): AsyncIterable<Sample>;
  stats(): Readonly<GameProposerStats>;
}

const ID_PREFIX = /^[A-Za-z0-9_-]{1,160}$/;

/** Creates the generator's self-play proposer for game tasks. */
export function createGameProposer(options: GameProposerOptions): GameProposer {
  const { bus, holder, search } = options;
  const tracer = getTracer("autodidact.generator");
  const meter = getMeter("autodidact.generator");
  const gamesCounter = meter.createCounter("autodidact.generator.games", { description: "self-play games played" });
  const positionsCounter = meter.createCounter("autodidact.generator.positions", { description: "positions searched in self-play" });
  const stats: GameProposerStats = { games: 0, positions: 0, seconds: 0 };

  const publish = async (sample: Sample): Promise<void> => {
    const span = tracer.startSpan("propose game", { kind: SpanKind.PRODUCER, root: true, attributes: { "autodidact.sample_id": sample.id, "autodidact.task": sample.task } });
    try {
      await context.with(trace.setSpan(context.active(), span), () => bus.publish(Subjects.proposed(sample.task), toBinary(SampleSchema, sample), { msgId: sample.id }));
    } finally {
      span.end();
    }
  };

  /** Plays one chunk of games with the model current at its start. */
  const chunk = (pack: GamePack, count: number, seed: string, firstIndex: number, req: ProposeRequest): Promise<Sample[]> =>
    holder.use(async (model, version) => {
      const madeFor = model.extra["game"];
      if (madeFor !== undefined && madeFor !== pack.game.name) {
        throw new AutodidactError(`served model ${version} was made for ${String(madeFor)}, not ${pack.game.name}`, Code.FailedPrecondition);
      }
      const evaluator = new NetworkEvaluator(pack.game, model.network);
      const { records, stats: s } = await selfPlay(pack.game, evaluator, {
        games: count,
        mcts: { simulations: search.simulations, dirichletAlpha: search.dirichletAlpha, dirichletEpsilon: search.dirichletEpsilon },
        temperatureMoves: search.temperatureMoves,
        concurrency: Math.min(count, search.concurrency),
        seed: `${seed}/${firstIndex}`,
      });
      stats.games += s.games;
      stats.positions += s.positions;
      stats.seconds += s.seconds;
      stats.last = s;
      gamesCounter.add(s.games, { task: pack.name });
      positionsCounter.add(s.positions, { task: pack.name });
      const start = pack.game.stateText(pack.game.initial());
      return records.map((r, i) =>
        create(SampleSchema, {
          id: req.idPrefix ? `${req.idPrefix}-${firstIndex + i}` : randomUUID(),
          task: pack.name,
          prompt: start,
          completion: movesText(pack.game, r.moves),
          difficulty: req.difficulty && req.difficulty > 0 ? req.difficulty : 1,
          generatorModelVersion: version,
          lineage: create(SampleLineageSchema, { generatorLineage: options.lineage, promptId: `${pack.name}-${seed}-${firstIndex + i}` }),
          round: req.round ?? 0,
          createdAt: timestampNow(),
          seed: BigInt(Number.parseInt(seed, 10) || 0),
          sampling: create(SamplingParamsSchema, { temperature: 1, maxTokens: search.simulations }),
          real: false,
          generatorId: options.generatorId,
          game: gameRecordToProto(r, search.simulations),
        }),
      );
    });

  return {
    async *generate(req) {
      if (!Number.isInteger(req.count) || req.count < 1 || req.count > MAX_GENERATE_COUNT) {
        throw new AutodidactError(`count must be in 1..${MAX_GENERATE_COUNT}, got ${req.count}`, Code.InvalidArgument);
      }
      const task = req.task !== undefined && req.task !== "" ? req.task : options.task;
      if (task !== options.task) throw new AutodidactError(`this generator plays ${options.task}, not ${task}`, Code.InvalidArgument);
      const pack = getGamePack(task);
      const fixedSeed = req.seed !== undefined && req.seed !== 0 ? req.seed : undefined;
      if (req.idPrefix !== undefined && req.idPrefix !== "") {
        if (!ID_PREFIX.test(req.idPrefix)) throw new AutodidactError(`id_prefix must be 1..160 letters, digits, "_" or "-"`, Code.InvalidArgument);
        if (fixedSeed === undefined) throw new AutodidactError("id_prefix needs a fixed seed (seed != 0)", Code.InvalidArgument);
      }
      const seed = String(fixedSeed ?? randomInt(1, 2 ** 31));
      for (let done = 0; done < req.count; ) {
        if (req.signal?.aborted === true) throw new AutodidactError("generation cancelled", Code.Canceled);
        const n = Math.min(search.concurrency, req.count - done);
        const samples = await chunk(pack, n, seed, done, req);
        if (req.publish === true) await Promise.all(samples.map(publish));
        for (const s of samples) yield s;
        done += n;
      }
    },
    stats: () => ({ ...stats }),
  };
}
