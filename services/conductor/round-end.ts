// How a round ends, as data: its summary joins the run's rounds, then the stop rule either ends the
// run or the next round starts at the difficulty the curriculum chose. Pure, so the phase table's
// last step is tested without a mesh.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { RoundPhase, RoundStateSchema, RoundSummarySchema, RunStatus, type RoundState, type Run } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { capDifficulty, type CurriculumStep } from "./curriculum.js";
import { statusSnapshot, type EventInit } from "./run-store.js";

/** A fresh round in progress. */
export function newRoundState(round: number, difficulty: number, pool: bigint, nowMs: number): RoundState {
  return create(RoundStateSchema, { round, difficulty, pool, startedAt: timestampFromMs(nowMs), phaseStartedAt: timestampFromMs(nowMs) });
}

/** Why the run stops after its latest round, or undefined to go on. `next` is the curriculum's choice before its cap. */
export function stopReason(run: Run, next: number): string | undefined {
  const stop = run.spec?.stop;
  if (stop === undefined) return undefined;
  if (stop.maxRounds > 0 && run.rounds.length >= stop.maxRounds) return `ran ${run.rounds.length} round${run.rounds.length === 1 ? "" : "s"} (stop.max_rounds)`;
  if (stop.maxDifficulty > 0 && next > stop.maxDifficulty) return `the curriculum would label difficulty ${next}, beyond stop.max_difficulty ${stop.maxDifficulty}`;
  return undefined;
}

/**
 * Ends the run's current round with the curriculum's step: appends its summary, then ends the run
 * (SUCCEEDED) when the stop rule says so, else starts the next round at the next difficulty (capped
 * by the curriculum's max). Returns the events of the change.
 */
export function finishRound(run: Run, step: CurriculumStep, nowMs: number): EventInit[] {
  const cur = run.current!;
  const startedMs = cur.startedAt === undefined ? nowMs : timestampMs(cur.startedAt);
  const summary = create(RoundSummarySchema, {
    round: cur.round,
    difficulty: cur.difficulty,
    proposed: cur.proposed,
    accepted: cur.accepted,
    decided: cur.decided,
    lineages: cur.lineages,
    probes: step.probes.map((p) => ({ difficulty: p.difficulty, problems: p.problems, agreement: p.agreement })),
    phaseSeconds: { ...cur.phaseSeconds },
    seconds: (nowMs - startedMs) / 1000,
    nextDifficulty: capDifficulty(run.spec!.curriculum!, step.next),
  });
  run.rounds.push(summary);
  const events: EventInit[] = [{ event: { case: "roundDone", value: summary }, round: cur.round }];
  const why = stopReason(run, step.next);
  if (why !== undefined) {
    run.status = RunStatus.SUCCEEDED;
    run.phase = RoundPhase.DONE;
    run.message = why;
    run.requestedStatus = RunStatus.UNSPECIFIED;
    run.driver = "";
    events.push(statusSnapshot(run));
    return events;
  }
  run.round = cur.round + 1;
  run.difficulty = summary.nextDifficulty;
  run.phase = RoundPhase.SERVE;
  run.current = newRoundState(run.round, run.difficulty, cur.pool, nowMs);
  return events;
}
