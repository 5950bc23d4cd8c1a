// IMPORT (before the first round): every lineage without a promoted checkpoint gets its base model
// imported (registered, then promoted by the monitor); the run's consensus and gating policies are
// set through the monitor (only when they differ: a repeat changes nothing); the run's first round
// number is chosen after every round the mesh has seen for its lineages and task.
import { clone, equals } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { policyFromProto } from "../../../src/domain/consensus/index.js";
import { RoundPhase, RunStatus, type Run, type RunSpec } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusPolicySchema } from "../../../src/gen/autodidact/v1/consensus_pb.js";
import { GatingPolicySchema, type GatingPolicy } from "../../../src/gen/autodidact/v1/report_pb.js";
import { capDifficulty } from "../curriculum.js";
import { runGatePolicy } from "../gate-policy.js";
import { newRoundState } from "../round-end.js";
import type { ConductorServices, Phase, PhaseInput, PhaseOutcome } from "./phase.js";
import { throwIfStopped } from "./wait.js";

/** The gate's rule without its bookkeeping (version, time, note), to compare two policies. */
function gateRule(p: GatingPolicy): GatingPolicy {
  const c = clone(GatingPolicySchema, p);
  c.version = 0n;
  c.updatedAt = undefined;
  c.note = "";
  return c;
}

/** Sets the run's consensus policy (named after its task) and gating policy (with the run's labels regime) through the monitor, unless they are set already. */
async function setPolicies(services: ConductorServices, spec: RunSpec): Promise<void> {
  const monitor = services.peers.monitor();
  const desired = clone(ConsensusPolicySchema, spec.consensus!);
  desired.name = spec.task;
  desired.version = 1n;
  const current = await monitor.getConsensusPolicy({ name: spec.task }).catch((err: unknown) => {
    if (err instanceof AutodidactError && err.code === Code.NotFound) return undefined;
    throw err;
  });
  if (current === undefined || policyFromProto(current).hash !== policyFromProto(desired).hash) {
    desired.note = desired.note || `run ${spec.name}`;
    await monitor.setConsensusPolicy({ policy: desired });
  }
  // The gate always carries the run's labels regime (validation and test ranges), even when the spec names no gate.
  const currentGate = await monitor.getPolicy({});
  const gate = runGatePolicy(spec, currentGate);
  if (!equals(GatingPolicySchema, gateRule(currentGate), gateRule(gate))) {
    gate.note = gate.note || `run ${spec.name}`;
    await monitor.setPolicy({ policy: gate });
  }
}

/** The run's first round: after every round its lineages' checkpoints and the other runs of its task have used. */
async function firstRoundOf(services: ConductorServices, run: Run): Promise<number> {
  let last = 0;
  for (const l of run.spec!.lineages) for (const r of await services.registry.listCheckpoints(l.name)) last = Math.max(last, r.round);
  for (const other of await services.store.list()) {
    if (other.id === run.id || other.spec?.task !== run.spec!.task || other.status === RunStatus.PENDING) continue;
    last = Math.max(last, other.round, ...other.rounds.map((r) => r.round));
  }
  return last + 1;
}

/** IMPORT: bases, policies, the first round. */
export class ImportPhase implements Phase {
  readonly phase = RoundPhase.IMPORT;
  readonly key = "import";

  async run({ run, services, signal }: PhaseInput): Promise<PhaseOutcome> {
    const spec = run.spec!;
    for (const l of spec.lineages) {
      throwIfStopped(signal);
      if ((await services.registry.getPromoted(l.name)) !== undefined) continue;
      if (l.baseModel === "") throw new AutodidactError(`lineage ${l.name} has no promoted checkpoint and the run names no base_model for it`, Code.FailedPrecondition);
      await services.importer.importBase(l.name, l.baseModel, spec.task);
    }
    throwIfStopped(signal);
    await setPolicies(services, spec);
    const first = await firstRoundOf(services, run);
    return {
      apply(r) {
        const difficulty = capDifficulty(spec.curriculum!, spec.curriculum!.start);
        r.firstRound = first;
        r.round = first;
        r.difficulty = difficulty;
        r.phase = RoundPhase.SERVE;
        r.current = newRoundState(first, difficulty, 0n, Date.now());
      },
    };
  }
}
