// JUDGE: counts the round's decisions from the DECISIONS stream, read from the sequence recorded
// before proposing; a decision is the round's when its sample carries the round and the round's id
// prefix. Each sample counts once (a re-published decision is a copy). Until every proposal is
// decided or the spec's timeout passes (from the phase's persisted start: a crash does not reset it).
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { RoundPhase } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { DecisionCursor } from "../decision-cursor.js";
import { replacesData } from "../run-spec.js";
import { proposalPrefix } from "../seeds.js";
import type { Phase, PhaseInput, PhaseOutcome } from "./phase.js";
import { sleep, throwIfStopped } from "./wait.js";

/** JUDGE: wait for the round's decisions. */
export class JudgePhase implements Phase {
  readonly phase = RoundPhase.JUDGE;
  readonly key = "judge";

  async run({ run, services, signal, progress }: PhaseInput): Promise<PhaseOutcome> {
    const spec = run.spec!;
    const cur = run.current!;
    const proposed = Number(cur.proposed);
    const prefix = `${proposalPrefix(run.id, run.round)}-`;
    const cursor = new DecisionCursor(services.bus, spec.task, Number(cur.decisionsAfterSeq));
    const decided = new Map<string, boolean>();
    let lastSeq = 0;
    const began = cur.phaseStartedAt === undefined ? Date.now() : timestampMs(cur.phaseStartedAt);
    const deadline = began + spec.decisionTimeoutSeconds * 1000;
    while (decided.size < proposed) {
      throwIfStopped(signal);
      const next = await cursor.next();
      if (next === null) {
        if (Date.now() > deadline) break;
        await sleep(services.settings.pollMs, signal);
        continue;
      }
      const d = next.decision;
      if (d.sample?.round !== run.round || !d.sampleId.startsWith(prefix) || decided.has(d.sampleId)) continue;
      decided.set(d.sampleId, d.accepted);
      lastSeq = Math.max(lastSeq, next.seq);
      await progress(decided.size, proposed, `${decided.size} of ${proposed} proposals decided`);
    }
    const accepted = [...decided.values()].filter(Boolean).length;
    if (decided.size < proposed) services.logger.warn("round went on without every decision", { run: run.id, round: run.round, decided: decided.size, proposed });
    return {
      apply(r) {
        const c = r.current!;
        c.decided = BigInt(decided.size);
        c.accepted = BigInt(accepted);
        c.lastDecisionSeq = BigInt(lastSeq);
        c.pool = replacesData(spec) ? BigInt(accepted) : c.pool + BigInt(accepted);
        r.phase = RoundPhase.TRAIN;
      },
    };
  }
}
