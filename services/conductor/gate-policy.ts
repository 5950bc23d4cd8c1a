// The gating policy a run sets through the monitor at its start: the run's information regime written
// into it, so the monitor's gate reads validation labels only where the run says they exist and
// evaluates the test split (results) where the run says results are measured.
import { clone, create } from "@bufbuild/protobuf";
import { DifficultyRangeSchema } from "../../src/gen/autodidact/v1/common_pb.js";
import type { RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { GatingPolicySchema, type GatingPolicy } from "../../src/gen/autodidact/v1/report_pb.js";

/**
 * The spec's gate (the monitor's current policy when the spec names none) with `validation`, `test`
 * and their sizes taken from `spec.labels`, and the run's lineages as the peers of the label-free
 * check unless the gate names its own. An empty validation range is written as an explicit empty
 * range: an unset one would let the monitor read validation labels at every difficulty.
 */
export function runGatePolicy(spec: RunSpec, current: GatingPolicy): GatingPolicy {
  const gate = clone(GatingPolicySchema, spec.gate ?? current);
  const labels = spec.labels!;
  const v = labels.validation;
  gate.validation = create(DifficultyRangeSchema, v !== undefined && v.max >= v.min ? { min: v.min, max: v.max } : { min: 1, max: 0 });
  gate.test = create(DifficultyRangeSchema, { min: labels.test!.min, max: labels.test!.max });
  gate.validationSize = labels.validationSize;
  gate.testSize = labels.testSize;
  if (gate.peerLineages.length === 0) gate.peerLineages = spec.lineages.map((l) => l.name);
  return gate;
}
