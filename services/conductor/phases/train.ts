// TRAIN: once each lineage's trainer has taken in the round's decisions (its intake durable has
// acknowledged the round's last decision), StartRound per lineage in parallel with the run's
// training config. StartRound is idempotent per (lineage, round) in the trainer: a repeat after a
// crash returns the finished round's report or follows the running one, so no lineage trains twice
// for one round. With nothing accepted yet there is nothing to train on: no candidates.
import { clone, create } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { LineageRoundSchema, RoundPhase, type LineageRound, type Run } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { TrainingConfigSchema, type TrainingConfig } from "../../../src/gen/autodidact/v1/training_pb.js";
import { Streams } from "../../../src/domain/topology/index.js";
import type { ConductorServices, Phase, PhaseInput, PhaseOutcome } from "./phase.js";
import { waitUntil } from "./wait.js";

/** The run's training config, with the anchor range of its information regime where the config leaves it unset. */
export function trainingOf(run: Run): TrainingConfig {
  const t = run.spec?.training === undefined ? create(TrainingConfigSchema) : clone(TrainingConfigSchema, run.spec.training);
  const anchor = run.spec?.labels?.anchor;
  if (anchor !== undefined && anchor.max >= anchor.min) {
    t.anchor ??= create(TrainingConfigSchema.field.anchor.message!) as TrainingConfig["anchor"];
    t.anchor!.minDifficulty ??= anchor.min;
    t.anchor!.maxDifficulty ??= anchor.max;
  }
  return t;
}

/** Waits until a trainer's intake durable acknowledged every decision up to `seq`. */
async function waitForIntake(services: ConductorServices, lineage: string, seq: number, signal: AbortSignal): Promise<void> {
  const trainer = services.peers.trainer(lineage);
  const durable = (await trainer.getInfo({}, { deadlineMs: 10_000 })).attributes["durable"];
  if (durable === undefined || durable === "") return; // an older trainer: it says nothing about its intake
  await waitUntil(
    async () => {
      const info = await services.bus.jsm.consumers.info(Streams.Decisions, durable).catch(() => undefined);
      if (info === undefined) return undefined;
      return info.ack_floor.stream_seq >= seq || (info.num_pending === 0 && info.num_ack_pending === 0) ? true : undefined;
    },
    { timeoutMs: services.settings.serveTimeoutMs, pollMs: services.settings.pollMs, signal, what: `the intake of ${lineage}'s trainer (${durable}) to reach decision ${seq}` },
  );
}

/** TRAIN: one StartRound per lineage. */
export class TrainPhase implements Phase {
  readonly phase = RoundPhase.TRAIN;
  readonly key = "train";

  async run({ run, services, signal, progress }: PhaseInput): Promise<PhaseOutcome> {
    const cur = run.current!;
    if (cur.pool === 0n) {
      return {
        apply(r) {
          for (const l of r.current!.lineages) Object.assign(l, { status: "no_candidate", reasons: ["nothing accepted yet: no training"] });
          r.phase = RoundPhase.GATE;
        },
      };
    }
    const training = trainingOf(run);
    const steps = new Map<string, [number, number]>();
    const report = async (): Promise<void> => {
      const done = [...steps.values()].reduce((a, [s]) => a + s, 0);
      const total = [...steps.values()].reduce((a, [, t]) => a + t, 0);
      await progress(done, total, [...steps].map(([l, [s, t]]) => `${l} ${s}/${t}`).join(", "));
    };
    const results = await Promise.all(
      cur.lineages.map(async (l): Promise<LineageRound> => {
        await waitForIntake(services, l.lineage, Number(cur.lastDecisionSeq), signal);
        const request = { round: run.round, lineage: l.lineage, task: run.spec!.task, training };
        let out: LineageRound | undefined;
        for await (const ev of services.peers.trainer(l.lineage).startRound(request, { signal })) {
          if (ev.event.case === "progress" && ev.event.value.phase === "train") {
            steps.set(l.lineage, [Number(ev.event.value.step), Number(ev.event.value.totalSteps)]);
            await report();
          } else if (ev.event.case === "report") {
            const r = ev.event.value;
            const loss = r.lossCurve[r.lossCurve.length - 1]?.loss ?? 0;
            out = create(LineageRoundSchema, { ...l, candidateVersion: r.candidateVersion, finalLoss: loss, status: r.candidateVersion > 0n ? "candidate" : "no_candidate" });
          }
        }
        if (out === undefined) throw new AutodidactError(`the trainer of ${l.lineage} ended round ${run.round} without a report`, Code.Internal);
        return out;
      }),
    );
    return {
      apply(r) {
        r.current!.lineages = results;
        r.phase = RoundPhase.GATE;
      },
    };
  }
}
