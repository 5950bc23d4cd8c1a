// PROPOSE: the generator proposes the round's samples and publishes them, with deterministic ids
// `<run>-r<round>-<index>` and a seed fixed by run and round. Proposing again after a crash yields the
// same samples under the same ids: the samples stream drops them within its duplicate window, the
// consensus ledger and the trainer's intake after it, so no round is proposed twice.
import { RoundPhase } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { proposalPrefix, seedOf } from "../seeds.js";
import type { Phase, PhaseInput, PhaseOutcome } from "./phase.js";

/** PROPOSE: Generate with publish. */
export class ProposePhase implements Phase {
  readonly phase = RoundPhase.PROPOSE;
  readonly key = "propose";

  async run({ run, services, signal, progress }: PhaseInput): Promise<PhaseOutcome> {
    const spec = run.spec!;
    const round = run.round;
    const total = spec.proposalsPerRound;
    let proposed = 0;
    const request = {
      task: spec.task,
      count: total,
      difficulty: run.difficulty,
      temperature: spec.temperature,
      publish: true,
      round,
      seed: seedOf(run.id, spec.seed, round, "propose"),
      idPrefix: proposalPrefix(run.id, round),
    };
    for await (const _ of services.peers.generator().generate(request, { signal })) {
      proposed++;
      await progress(proposed, total, `proposed ${proposed} of ${total} at difficulty ${run.difficulty}`);
    }
    return {
      apply(r) {
        r.current!.proposed = BigInt(proposed);
        r.phase = RoundPhase.JUDGE;
      },
    };
  }
}
