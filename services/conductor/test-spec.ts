// Test helper (not exported from the module): a valid run spec to vary.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CurriculumPolicy_Kind, RunSpecSchema, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, TimeoutOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";

/** A run of two lineages with one model critic and a rules critic, the AGREEMENT curriculum, and `patch` on top. */
export function testSpec(patch: Record<string, unknown> = {}): RunSpec {
  const init = {
    name: "run-a",
    task: "addition",
    lineages: [{ name: "gen", baseModel: "tiny/gen" }, { name: "crit", baseModel: "tiny/crit" }],
    curriculum: { kind: CurriculumPolicy_Kind.AGREEMENT, start: 2, max: 8, minAgreement: 0.85, probeSize: 16 },
    proposalsPerRound: 24,
    stop: { maxRounds: 3 },
    critics: [{ id: "model-crit", kind: "model", lineage: "crit" }, { id: "rules", kind: "rules" }],
    consensus: { kind: ConsensusKind.K_OF_N, critics: ["model-crit", "rules"], k: 2, timeoutMs: 5_000n, onTimeout: TimeoutOutcome.REJECT },
    labels: { anchor: { min: 1, max: 3 }, validation: { min: 1, max: 3 }, test: { min: 1, max: 8 } },
    seed: 7n,
    ...patch,
  } as MessageInitShape<typeof RunSpecSchema>;
  return create(RunSpecSchema, init);
}
