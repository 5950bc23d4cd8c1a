// The one place a run's spec is checked and completed with its defaults: CreateRun, --run-spec-file
// and the CLI all go through normalizeRunSpec, so a spec that passes here is one the conductor can drive.
import { clone, create, equals } from "@bufbuild/protobuf";
import { isAbsolute, normalize, sep } from "node:path";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { policyFromProto } from "../../src/domain/consensus/index.js";
import { CurriculumPolicy_Kind, CurriculumPolicySchema, RunSpecSchema, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import type { DifficultyRange } from "../../src/gen/autodidact/v1/common_pb.js";
import { ConsensusPolicySchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { DataMix } from "../../src/gen/autodidact/v1/training_pb.js";

/** A run id (its spec's name): a KV key token and a subject token. */
export const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const CRITIC_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** The critic methods a run may name (the critic service's `--kind`s). */
export const CRITIC_KINDS = ["model", "likelihood", "rules", "novelty", "classifier", "verifier", "accept-all"] as const;

/** Most proposals (or probe problems) per round: one Generate call. */
export const MAX_PROPOSALS = 4096;
/** How long a round waits for its decisions when the spec says 0. */
export const DEFAULT_DECISION_TIMEOUT_S = 600;

const bad = (field: string, why: string): never => {
  throw new AutodidactError(`run spec: ${field} ${why}`, Code.InvalidArgument, { details: { field } });
};

const empty = (r: DifficultyRange | undefined): boolean => r === undefined || r.max < r.min;
const inside = (inner: DifficultyRange, outer: DifficultyRange | undefined): boolean => outer !== undefined && !empty(outer) && inner.min >= outer.min && inner.max <= outer.max;

/** Checks a model folder named relative to the models directory: no absolute path, nothing above it. */
export function checkRelativeModelPath(field: string, path: string): string {
  const norm = normalize(path);
  if (path.length === 0 || path.length > 256 || isAbsolute(path) || norm.split(sep).includes("..") || path.includes("\0")) {
    bad(field, `must be a folder inside the conductor's models directory (relative, no ".."), got ${JSON.stringify(path.slice(0, 80))}`);
  }
  return norm;
}

function checkRange(field: string, r: DifficultyRange | undefined, required: boolean): void {
  if (empty(r)) {
    if (required) bad(field, "must not be empty (min <= max)");
    return;
  }
  if (r!.min < 1) bad(`${field}.min`, `must be >= 1, got ${r!.min}`);
}

function checkLineagesAndCritics(spec: RunSpec): void {
  if (spec.lineages.length === 0) bad("lineages", "needs at least one lineage (the first generates)");
  const names = new Set<string>();
  for (const [i, l] of spec.lineages.entries()) {
    if (!TOKEN.test(l.name)) bad(`lineages[${i}].name`, `must be 1-128 letters, digits, "-" or "_", got ${JSON.stringify(l.name)}`);
    if (names.has(l.name)) bad(`lineages[${i}].name`, `repeats ${l.name}`);
    names.add(l.name);
    if (l.baseModel !== "") checkRelativeModelPath(`lineages[${i}].base_model`, l.baseModel);
  }
  const ids = new Set<string>();
  for (const [i, c] of spec.critics.entries()) {
    const at = `critics[${i}]`;
    if (!CRITIC_ID.test(c.id)) bad(`${at}.id`, `must be 1-64 letters, digits, ".", "-" or "_", got ${JSON.stringify(c.id)}`);
    if (ids.has(c.id)) bad(`${at}.id`, `repeats ${c.id}`);
    ids.add(c.id);
    if (!(CRITIC_KINDS as readonly string[]).includes(c.kind)) bad(`${at}.kind`, `must be one of ${CRITIC_KINDS.join(", ")}, got ${JSON.stringify(c.kind)}`);
    // A verifier reads ground truth: only an operator who says so may put one in a run.
    if (c.kind === "verifier" && !c.trustedVerifier) bad(`${at}`, `(${c.id}) is a verifier, which reads ground truth: set trusted_verifier to use one`);
    if (c.kind === "model") {
      if (spec.lineages.length < 2) bad(`${at}`, `(${c.id}) is a model critic: a run with model critics needs at least 2 lineages (one generates, the others judge)`);
      const judges = spec.lineages.slice(1).map((l) => l.name);
      if (!judges.includes(c.lineage)) bad(`${at}.lineage`, `must name a lineage other than the generator's (${judges.join(", ")}), got ${JSON.stringify(c.lineage)}`);
    }
  }
}

function checkCurriculum(spec: RunSpec): void {
  const c = spec.curriculum!;
  if (c.start < 1) bad("curriculum.start", `must be >= 1, got ${c.start}`);
  if (c.max < c.start) bad("curriculum.max", `must be >= curriculum.start (${c.start}), got ${c.max}`);
  if (c.kind === CurriculumPolicy_Kind.ACCEPTANCE && !(c.minAcceptedShare > 0 && c.minAcceptedShare <= 1)) {
    bad("curriculum.min_accepted_share", `must be in (0, 1], got ${c.minAcceptedShare}`);
  }
  if (c.kind === CurriculumPolicy_Kind.AGREEMENT) {
    if (!(c.minAgreement > 0 && c.minAgreement <= 1)) bad("curriculum.min_agreement", `must be in (0, 1], got ${c.minAgreement}`);
    if (!(c.probeSize >= 1 && c.probeSize <= MAX_PROPOSALS)) bad("curriculum.probe_size", `must be in 1..${MAX_PROPOSALS}, got ${c.probeSize}`);
    if (!spec.critics.some((x) => x.kind === "model")) bad("curriculum", "KIND_AGREEMENT measures the model critics' agreement: the run names no critic of kind \"model\"");
  }
}

function checkLabels(spec: RunSpec): void {
  const labels = spec.labels;
  if (labels === undefined) bad("labels", "must say which labelled data exists (anchor, validation, test)");
  checkRange("labels.anchor", labels!.anchor, false);
  checkRange("labels.test", labels!.test, true);
  checkRange("labels.validation", labels!.validation, false);
  // Real labels exist only where the anchor data is: the gate may not read validation data beyond it,
  // unless the spec names itself an ablation (answers a real deployment would not have).
  if (!empty(labels!.validation) && !inside(labels!.validation!, labels!.anchor) && !labels!.ablationValidationBeyondAnchor) {
    bad(
      "labels.validation",
      `must lie inside labels.anchor (where real labels exist), got ${labels!.validation!.min}..${labels!.validation!.max}; set ablation_validation_beyond_anchor for the ablation`,
    );
  }
}

function checkPolicies(spec: RunSpec): void {
  if (spec.consensus === undefined) bad("consensus", "must be set (the policy the run's decisions are made under)");
  try {
    const policy = clone(ConsensusPolicySchema, spec.consensus!);
    policy.name = spec.task;
    policy.version = 1n;
    policyFromProto(policy);
  } catch (err) {
    bad("consensus", err instanceof AutodidactError ? err.rawMessage : String(err));
  }
  if (spec.critics.length > 0) {
    const known = new Set(spec.critics.map((c) => c.id));
    const unknown = spec.consensus!.critics.filter((id) => !known.has(id));
    if (unknown.length > 0) bad("consensus.critics", `names critics the run does not list in critics: ${unknown.join(", ")}`);
  }
  // The conductor waits for the monitor's own gate on every candidate: it must decide on its own.
  if (spec.gate !== undefined && !spec.gate.autoPromote) bad("gate.auto_promote", "must be true: the monitor gates each candidate as it arrives");
  // Which labels the gate may read is the labels regime's to say, once (gate-policy.ts writes it in).
  if (spec.gate?.validation !== undefined || spec.gate?.test !== undefined) bad("gate.validation", "and gate.test come from labels.validation and labels.test: set them there");
}

/**
 * Checks a run spec and returns it completed with its defaults (curriculum kind AGREEMENT, the decision
 * timeout); InvalidArgument naming the field otherwise. Two specs that normalize to the same message
 * are the same run (CreateRun is idempotent on them).
 */
export function normalizeRunSpec(input: RunSpec): RunSpec {
  const spec = clone(RunSpecSchema, input);
  if (!RUN_ID.test(spec.name)) bad("name", `must be 1-64 letters, digits, "-" or "_" (it is the run id), got ${JSON.stringify(spec.name)}`);
  if (!TOKEN.test(spec.task)) bad("task", `must be a task pack name, got ${JSON.stringify(spec.task)}`);
  checkLineagesAndCritics(spec);
  spec.curriculum ??= create(CurriculumPolicySchema);
  if (spec.curriculum!.kind === CurriculumPolicy_Kind.UNSPECIFIED) spec.curriculum!.kind = CurriculumPolicy_Kind.AGREEMENT;
  checkCurriculum(spec);
  if (!(spec.proposalsPerRound >= 1 && spec.proposalsPerRound <= MAX_PROPOSALS)) bad("proposals_per_round", `must be in 1..${MAX_PROPOSALS}, got ${spec.proposalsPerRound}`);
  const stop = spec.stop;
  if (stop === undefined || (stop.maxRounds === 0 && stop.maxDifficulty === 0)) bad("stop", "must set max_rounds or max_difficulty (a run ends on its own)");
  if (stop!.maxDifficulty < 0) bad("stop.max_difficulty", `must be >= 0, got ${stop!.maxDifficulty}`);
  checkLabels(spec);
  checkPolicies(spec);
  if (spec.decisionTimeoutSeconds === 0) spec.decisionTimeoutSeconds = DEFAULT_DECISION_TIMEOUT_S;
  if (spec.decisionTimeoutSeconds > 86_400) bad("decision_timeout_seconds", `must be at most 86400, got ${spec.decisionTimeoutSeconds}`);
  if (!(Number.isFinite(spec.temperature) && spec.temperature >= 0 && spec.temperature <= 10)) bad("temperature", `must be in [0, 10], got ${spec.temperature}`);
  return spec;
}

/** Whether two normalized specs are the same run. */
export function sameRunSpec(a: RunSpec, b: RunSpec): boolean {
  return equals(RunSpecSchema, a, b);
}

/** Whether a run trains on this round's accepted samples only (REPLACE) rather than all of them so far. */
export function replacesData(spec: RunSpec): boolean {
  return spec.training?.mix === DataMix.REPLACE;
}
