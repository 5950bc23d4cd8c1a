// The phase table: which phase runs at each RoundPhase of a run. A round goes SERVE → PROPOSE → JUDGE
// → TRAIN → GATE → PROBE, then the next round's SERVE (or the run ends); IMPORT comes once, first.
import { RoundPhase } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import { GatePhase } from "./gate.js";
import { ImportPhase } from "./import.js";
import { JudgePhase } from "./judge.js";
import type { Phase } from "./phase.js";
import { ProbePhase } from "./probe.js";
import { ProposePhase } from "./propose.js";
import { ServePhase } from "./serve.js";
import { TrainPhase } from "./train.js";

export type { ConductorServices, DriverSettings, Phase, PhaseInput, PhaseOutcome } from "./phase.js";
export { trainingOf } from "./train.js";

/** The phase that runs at each phase of a run (DONE runs nothing: the run has ended). */
export const PHASE_TABLE: ReadonlyMap<RoundPhase, Phase> = new Map<RoundPhase, Phase>(
  [new ImportPhase(), new ServePhase(), new ProposePhase(), new JudgePhase(), new TrainPhase(), new GatePhase(), new ProbePhase()].map((p) => [p.phase, p]),
);
