// The curriculum: which difficulty the next round labels, from label-free facts only — the round's
// accepted share, or how often the lineages' models agree on fresh unlabelled problems. Pure: it
// knows no task pack, no verifier and no held-out data (tests/architecture.test.ts checks its imports),
// so nothing it decides can have read ground truth.
import { CurriculumPolicy_Kind, type CurriculumPolicy, type ProbeResult } from "../../src/gen/autodidact/v1/conductor_pb.js";

/** What a finished round says without labels. */
export interface RoundFacts {
  /** The difficulty it labelled. */
  readonly difficulty: number;
  readonly proposed: number;
  readonly accepted: number;
}

/** One probe's measurement at a difficulty: problems answered, and the share every model critic approved. */
export interface ProbeMeasurement {
  readonly problems: number;
  readonly agreement: number;
}

/** The curriculum's choice after a round. */
export interface CurriculumStep {
  /** The difficulty the next round labels, before the curriculum's cap (the stop rule looks at it). */
  readonly next: number;
  readonly probes: readonly Pick<ProbeResult, "difficulty" | "problems" | "agreement">[];
}

/** Whether the policy probes the lineages' agreement (and so needs the model critics after the gate). */
export function probes(policy: CurriculumPolicy): boolean {
  return policy.kind === CurriculumPolicy_Kind.AGREEMENT || policy.kind === CurriculumPolicy_Kind.UNSPECIFIED;
}

/** The difficulty a round may label: never beyond the policy's `max`, never below its `start`. */
export function capDifficulty(policy: CurriculumPolicy, difficulty: number): number {
  return Math.max(policy.start, Math.min(policy.max, difficulty));
}

/**
 * The next difficulty for the policies that need no probe: FIXED_STEP one harder every round;
 * ACCEPTANCE one harder once a round's accepted share reaches `min_accepted_share`, else the same.
 */
export function stepWithoutProbe(policy: CurriculumPolicy, facts: RoundFacts): CurriculumStep {
  if (policy.kind === CurriculumPolicy_Kind.FIXED_STEP) return { next: facts.difficulty + 1, probes: [] };
  if (policy.kind === CurriculumPolicy_Kind.ACCEPTANCE) {
    const share = facts.proposed > 0 ? facts.accepted / facts.proposed : 0;
    return { next: share >= policy.minAcceptedShare ? facts.difficulty + 1 : facts.difficulty, probes: [] };
  }
  throw new Error(`curriculum kind ${policy.kind} probes: use stepByAgreement`);
}

/**
 * The AGREEMENT curriculum: probes the round's difficulty, then one harder while the agreement stays
 * at or above `min_agreement`; the next round labels the first difficulty below it — the lineages
 * agree where they have learned, and the edge of that is worth labelling. E.g. "7:100% 8:59%" →
 * label 8. Past the cap nothing is probed: mastering the cap gives cap + 1 (the stop rule sees it).
 */
export async function stepByAgreement(policy: CurriculumPolicy, from: number, probe: (difficulty: number) => Promise<ProbeMeasurement>): Promise<CurriculumStep> {
  const out: { difficulty: number; problems: number; agreement: number }[] = [];
  let d = from;
  for (;;) {
    const m = await probe(d);
    out.push({ difficulty: d, problems: m.problems, agreement: m.agreement });
    if (m.agreement < policy.minAgreement) return { next: d, probes: out };
    if (d >= policy.max) return { next: d + 1, probes: out };
    d++;
  }
}
