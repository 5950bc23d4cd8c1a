import { toBinary } from "@bufbuild/protobuf";
import type { Bus } from "../../src/platform/bus/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { RoundEventSchema, type RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import type { CheckpointRecord, Registry } from "../../src/domain/registry/index.js";
import { getMeter, type Logger } from "../../src/platform/telemetry/index.js";
import { publishCandidate, trainLineage, type LineageContext } from "./lineage-round.js";
import type { RoundJournal, RoundPlan, RoundState } from "./round-journal.js";
import { RoundExecutions } from "./round-executions.js";
import { planMismatch, planRound, type RoundDefaults, type RoundRequest } from "./round-plan.js";
import { progress, roundReport } from "./round-report.js";
import { resolveTraining } from "./training-config.js";
import type { TrainingSet } from "./training-set.js";

export type { RoundDefaults, RoundRequest } from "./round-plan.js";

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

const sameLineages = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/**
 * Creates the round runner: rounds one at a time (a serial queue), each planned, journaled and run
 * lineage by lineage (`lineage-round.ts`), so a crash at any point redoes only what has no candidate.
 */
export function createRoundRunner(deps: RoundRunnerDeps): RoundRunner {
  const { bus, registry, journal, defaults, logger } = deps;
  const meter = getMeter("autodidact-trainer");
  const lossHistogram = meter.createHistogram("autodidact.trainer.step_loss", { description: "training loss per optimizer step" });
  const roundsCounter = meter.createCounter("autodidact.trainer.rounds", { description: "training rounds by outcome" });
  const lineageCtx: LineageContext = { ...deps, lossHistogram };
  let chain: Promise<unknown> = Promise.resolve();
  let pending = 0;
  const executions = new RoundExecutions();

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    pending++;
    const next = chain.then(fn, fn).finally(() => pending--);
    chain = next.catch(() => undefined);
    return next;
  };

  const publishRoundEvent = async (round: number, event: RoundEvent, tag: string): Promise<void> => {
    try {
      await bus.publish(Subjects.checkpoints("round"), toBinary(RoundEventSchema, event), { msgId: `round-${round}-${tag}` });
    } catch (err) {
      logger.warn("could not publish round event", { round, error: String(err) });
    }
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
          await publishCandidate(bus, rec);
          await journal.append({ kind: "candidate", round: p.round, lineage, version: allocated });
          records.push(rec);
          continue;
        }
      }
      try {
        records.push(await trainLineage(lineageCtx, p, state, lineage, li, emit));
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
    const report = roundReport(p, records, started, new Date());
    emit(report);
    await publishRoundEvent(p.round, report, "done");
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
      const p = await planRound(deps, request);
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
      const report = roundReport(state.plan, records, at, at);
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
