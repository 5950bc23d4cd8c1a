// The phase table and a round's end, as data: which phase runs where, how a finished round becomes a
// summary and the next round (or the end of the run), and how pause, resume and cancel change a run.
import { clone, create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LineageRoundSchema, RoundPhase, RoundStateSchema, RunSchema, RunStatus, type Run } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { PHASE_TABLE } from "./phases/index.js";
import type { ConductorServices } from "./phases/index.js";
import { cancelChange, newRun, pauseChange, resumeChange } from "./run-control.js";
import { finishRound, stopReason } from "./round-end.js";
import { normalizeRunSpec } from "./run-spec.js";
import { testSpec } from "./test-spec.js";

const running = (patch: Parameters<typeof testSpec>[0] = {}): Run => {
  const run = newRun(normalizeRunSpec(testSpec(patch)));
  run.status = RunStatus.RUNNING;
  run.round = 4;
  run.firstRound = 4;
  run.difficulty = 3;
  run.phase = RoundPhase.PROBE;
  run.current = create(RoundStateSchema, {
    round: 4,
    difficulty: 3,
    proposed: 24n,
    decided: 24n,
    accepted: 10n,
    pool: 10n,
    lineages: [create(LineageRoundSchema, { lineage: "gen", parentVersion: 1n, candidateVersion: 2n, promotedVersion: 2n, status: "promoted" })],
    phaseSeconds: { serve: 1, propose: 2 },
  });
  return run;
};

describe("phase table", () => {
  it("has one phase per round phase, in the order a round goes", () => {
    expect([...PHASE_TABLE.keys()]).toEqual([RoundPhase.IMPORT, RoundPhase.SERVE, RoundPhase.PROPOSE, RoundPhase.JUDGE, RoundPhase.TRAIN, RoundPhase.GATE, RoundPhase.PROBE]);
    for (const [phase, p] of PHASE_TABLE) expect(p.phase).toBe(phase);
    expect(new Set([...PHASE_TABLE.values()].map((p) => p.key)).size).toBe(PHASE_TABLE.size);
    expect(PHASE_TABLE.has(RoundPhase.DONE)).toBe(false);
  });

  it("TRAIN with nothing accepted yet trains nothing and goes to GATE", async () => {
    const run = running();
    run.phase = RoundPhase.TRAIN;
    run.current!.pool = 0n;
    const out = await PHASE_TABLE.get(RoundPhase.TRAIN)!.run({ run, services: {} as ConductorServices, signal: new AbortController().signal, progress: async () => undefined });
    const next = clone(RunSchema, run);
    out.apply(next);
    expect(next.phase).toBe(RoundPhase.GATE);
    expect(next.current!.lineages[0]).toMatchObject({ status: "no_candidate", reasons: ["nothing accepted yet: no training"] });
  });
});

describe("the end of a round", () => {
  it("appends its summary and starts the next round at the curriculum's (capped) difficulty", () => {
    const run = running({ stop: { maxRounds: 3 } });
    const events = finishRound(run, { next: 4, probes: [{ difficulty: 3, problems: 16, agreement: 0.9 }, { difficulty: 4, problems: 16, agreement: 0.5 }] }, Date.now());
    expect(run.rounds).toHaveLength(1);
    expect(run.rounds[0]).toMatchObject({ round: 4, difficulty: 3, proposed: 24n, accepted: 10n, decided: 24n, nextDifficulty: 4 });
    expect(run.rounds[0]!.probes.map((p) => p.agreement)).toEqual([0.9, 0.5]);
    expect(run.rounds[0]!.phaseSeconds).toEqual({ serve: 1, propose: 2 });
    expect(events.map((e) => e.event.case)).toEqual(["roundDone"]);
    expect(run).toMatchObject({ round: 5, difficulty: 4, phase: RoundPhase.SERVE, status: RunStatus.RUNNING });
    expect(run.current).toMatchObject({ round: 5, difficulty: 4, pool: 10n, proposed: 0n });
    const capped = running();
    finishRound(capped, { next: 42, probes: [] }, Date.now());
    expect(capped.difficulty).toBe(8);
  });

  it("ends the run when the stop rule says so", () => {
    const run = running({ stop: { maxRounds: 1 } });
    const events = finishRound(run, { next: 4, probes: [] }, Date.now());
    expect(run).toMatchObject({ status: RunStatus.SUCCEEDED, phase: RoundPhase.DONE, driver: "" });
    expect(run.message).toMatch(/ran 1 round \(stop\.max_rounds\)/);
    expect(events.map((e) => e.event.case)).toEqual(["roundDone", "status"]);
    const byDifficulty = running({ stop: { maxDifficulty: 5 } });
    expect(stopReason(byDifficulty, 5)).toBeUndefined();
    expect(stopReason(byDifficulty, 6)).toMatch(/beyond stop\.max_difficulty 5/);
  });
});

describe("pause, resume, cancel", () => {
  it("a driven run changes after its current phase; one nobody drives changes at once", () => {
    const run = running();
    expect(pauseChange(run)).toHaveLength(1);
    expect(run).toMatchObject({ status: RunStatus.RUNNING, requestedStatus: RunStatus.PAUSED });
    expect(pauseChange(run)).toBeUndefined();
    expect(resumeChange(run)).toHaveLength(1);
    expect(run.requestedStatus).toBe(RunStatus.UNSPECIFIED);
    run.status = RunStatus.PAUSED;
    expect(resumeChange(run)).toHaveLength(1);
    expect(run.status).toBe(RunStatus.RUNNING);
    expect(cancelChange(run)).toHaveLength(1);
    expect(run).toMatchObject({ status: RunStatus.RUNNING, requestedStatus: RunStatus.CANCELLED });
    const paused = running();
    paused.status = RunStatus.PAUSED;
    cancelChange(paused);
    expect(paused.status).toBe(RunStatus.CANCELLED);
    expect(() => resumeChange(paused)).toThrow(/is CANCELLED: it cannot be resumed/);
    const failed = running();
    failed.status = RunStatus.FAILED;
    failed.current!.attempts = 5;
    resumeChange(failed);
    expect(failed).toMatchObject({ status: RunStatus.RUNNING, current: { attempts: 0 } });
    const done = running();
    done.status = RunStatus.SUCCEEDED;
    expect(() => cancelChange(done)).toThrow(/cannot be cancelled/);
  });
});
