// PROBE: the curriculum chooses the next difficulty from label-free facts. FIXED_STEP and ACCEPTANCE
// need only the round's counts; AGREEMENT first waits for generator and model critics to serve the
// models the gate just promoted, then measures their agreement on fresh unlabelled problems (seeded
// per run, round and difficulty: a repeat after a crash measures the same). Then the round ends.
import { RoundPhase } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { probes, stepByAgreement, stepWithoutProbe, type CurriculumStep } from "../curriculum.js";
import { AgreementProbe } from "../probe.js";
import { finishRound } from "../round-end.js";
import type { Phase, PhaseInput, PhaseOutcome } from "./phase.js";
import { modelCritics, waitForServing } from "./serving.js";

/** PROBE: choose the next difficulty; end the round. */
export class ProbePhase implements Phase {
  readonly phase = RoundPhase.PROBE;
  readonly key = "probe";

  async run({ run, services, signal, progress }: PhaseInput): Promise<PhaseOutcome> {
    const spec = run.spec!;
    const policy = spec.curriculum!;
    const cur = run.current!;
    let step: CurriculumStep;
    if (probes(policy)) {
      await waitForServing(services, run, signal);
      const probe = new AgreementProbe(
        services.peers,
        { runId: run.id, runSeed: spec.seed, task: spec.task, round: run.round, problems: policy.probeSize, critics: [...modelCritics(run).keys()] },
        signal,
      );
      step = await stepByAgreement(policy, run.difficulty, async (difficulty) => {
        const m = await probe.measure(difficulty);
        await progress(0, 0, `difficulty ${difficulty}: agreement ${(100 * m.agreement).toFixed(0)}% of ${m.problems}`);
        return m;
      });
    } else {
      step = stepWithoutProbe(policy, { difficulty: run.difficulty, proposed: Number(cur.proposed), accepted: Number(cur.accepted) });
    }
    return { apply: (r) => finishRound(r, step, Date.now()) };
  }
}
