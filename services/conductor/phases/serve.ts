// SERVE: generator and model critics serve the lineages' promoted versions (the round's parents);
// then the last DECISIONS sequence is recorded — the round's decisions come after it — before any
// proposal exists.
import { create } from "@bufbuild/protobuf";
import { LineageRoundSchema, RoundPhase } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { lastDecisionSeq } from "../decision-cursor.js";
import type { Phase, PhaseInput, PhaseOutcome } from "./phase.js";
import { waitForServing } from "./serving.js";

/** SERVE: wait for the promoted models to be served. */
export class ServePhase implements Phase {
  readonly phase = RoundPhase.SERVE;
  readonly key = "serve";

  async run({ run, services, signal }: PhaseInput): Promise<PhaseOutcome> {
    const parents = await waitForServing(services, run, signal);
    const after = await lastDecisionSeq(services.bus);
    return {
      apply(r) {
        const cur = r.current!;
        cur.lineages = [...parents].map(([lineage, version]) => create(LineageRoundSchema, { lineage, parentVersion: BigInt(version) }));
        cur.decisionsAfterSeq = BigInt(after);
        r.phase = RoundPhase.PROPOSE;
      },
    };
  }
}
