import { createHash } from "node:crypto";
import { AutodidactError, Code } from "../../platform/errors/index.js";

/** How the votes of the expected critics combine (mirrors `autodidact.v1.ConsensusKind`). */
export type ConsensusKind = "unanimous" | "k_of_n" | "weighted";

/**
 * What a timeout decides when not every expected vote arrived:
 * - `reject`: reject (unseen votes count as rejections);
 * - `accept`: accept unless a counted vote or a missing required critic rules it out, or no expected critic voted;
 * - `decide_with_votes`: apply the rule to the critics that did vote, as if they were the panel
 *   (`autodidact.v1.TimeoutOutcome.TIMEOUT_OUTCOME_ACCEPT`).
 */
export type TimeoutPolicy = "accept" | "reject" | "decide_with_votes";

/** What a weighted policy thresholds: the weighted share of approvals, or the weighted mean score. */
export type WeightedBasis = "approvals" | "mean_score";

/** A consensus policy as written by an operator (config file, SetConsensusPolicy). */
export interface ConsensusPolicySpec {
  /** Policy name, e.g. "default". */
  name?: string;
  /** Monotonic version; decisions record the version they were made under. */
  version: number;
  kind: ConsensusKind;
  /** Critic ids whose votes count (n = size). Votes from others are recorded but ignored. */
  expected: readonly string[];
  /** Critics with a veto: their rejection rejects; their missing vote blocks acceptance. */
  required?: readonly string[];
  /** Approvals needed for `k_of_n`. */
  k?: number;
  /** Threshold in (0, 1] for `weighted`. */
  threshold?: number;
  /** Weight per critic for `weighted`; critics not listed weigh 1. */
  weights?: Readonly<Record<string, number>>;
  /** `approvals` (default) or `mean_score` for `weighted`. */
  basis?: WeightedBasis;
  /** How long to wait for all expected votes, from the first event of a sample, in ms (> 0). */
  timeoutMs: number;
  onTimeout: TimeoutPolicy;
  /** Free text for the audit trail. */
  note?: string;
}

/**
 * A validated, normalized, frozen policy. `hash` identifies the rule itself (not its name, version
 * or note), so two versions with the same rule are recognisably the same.
 */
export interface ConsensusPolicy {
  readonly name: string;
  readonly version: number;
  readonly kind: ConsensusKind;
  /** Sorted, unique. */
  readonly expected: readonly string[];
  /** Sorted, unique, a subset of `expected`. */
  readonly required: readonly string[];
  /** `k_of_n`: approvals needed; `unanimous`: n; `weighted`: 0. */
  readonly k: number;
  /** `weighted`: threshold; otherwise 0. */
  readonly threshold: number;
  /** A weight for every expected critic (1 unless set). */
  readonly weights: Readonly<Record<string, number>>;
  readonly basis: WeightedBasis;
  readonly timeoutMs: number;
  readonly onTimeout: TimeoutPolicy;
  readonly note: string;
  /** SHA-256 (hex) of the canonical rule. */
  readonly hash: string;
}

const invalid = (message: string, details: Record<string, unknown> = {}): AutodidactError =>
  new AutodidactError(`invalid consensus policy: ${message}`, Code.InvalidArgument, { details });

function idList(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be a list of critic ids`);
  const out = new Set<string>();
  for (const id of value) {
    if (typeof id !== "string" || id.length === 0) throw invalid(`${field} holds an empty or non-string critic id`);
    if (out.has(id)) throw invalid(`${field} lists critic ${JSON.stringify(id)} twice`);
    out.add(id);
  }
  return [...out].sort();
}

/** The fields that define what a policy decides, in a fixed order, for hashing. */
function canonicalRule(p: Omit<ConsensusPolicy, "hash" | "name" | "version" | "note">): string {
  return JSON.stringify([
    p.kind,
    p.expected,
    p.required,
    p.k,
    p.threshold,
    p.expected.map((id) => p.weights[id]),
    p.basis,
    p.timeoutMs,
    p.onTimeout,
  ]);
}

/**
 * Validates a policy spec and returns the normalized, frozen policy with its hash. Every mistake
 * (k out of range, required critic not expected, weight for an unknown critic…) is an
 * InvalidArgument naming the field, so a bad SetConsensusPolicy is refused before it decides anything.
 */
export function createConsensusPolicy(spec: ConsensusPolicySpec): ConsensusPolicy {
  if (typeof spec !== "object" || spec === null) throw invalid("spec must be an object");
  const kind = spec.kind;
  if (kind !== "unanimous" && kind !== "k_of_n" && kind !== "weighted") {
    throw invalid(`kind must be unanimous, k_of_n or weighted, got ${JSON.stringify(kind)}`);
  }
  if (!Number.isSafeInteger(spec.version) || spec.version < 0) throw invalid(`version must be a non-negative integer, got ${spec.version}`);
  const expected = idList("expected", spec.expected);
  if (expected.length === 0) throw invalid("expected must name at least one critic");
  const required = idList("required", spec.required ?? []);
  const stranger = required.find((id) => !expected.includes(id));
  if (stranger !== undefined) throw invalid(`required critic ${JSON.stringify(stranger)} is not in expected`, { critic: stranger });
  if (!Number.isSafeInteger(spec.timeoutMs) || spec.timeoutMs <= 0) throw invalid(`timeoutMs must be a positive integer, got ${spec.timeoutMs}`);
  if (spec.onTimeout !== "accept" && spec.onTimeout !== "reject" && spec.onTimeout !== "decide_with_votes") {
    throw invalid(`onTimeout must be accept, reject or decide_with_votes, got ${JSON.stringify(spec.onTimeout)}`);
  }

  let k = 0;
  let threshold = 0;
  const weights: Record<string, number> = {};
  for (const id of expected) weights[id] = 1;
  let basis: WeightedBasis = "approvals";
  if (kind === "unanimous") {
    k = expected.length;
  } else if (kind === "k_of_n") {
    k = spec.k ?? Number.NaN;
    if (!Number.isInteger(k) || k < 1 || k > expected.length) {
      throw invalid(`k must be an integer in 1..${expected.length} (the number of expected critics), got ${spec.k}`);
    }
  } else {
    threshold = spec.threshold ?? Number.NaN;
    if (!(threshold > 0 && threshold <= 1)) throw invalid(`threshold must be in (0, 1], got ${spec.threshold}`);
    for (const [id, w] of Object.entries(spec.weights ?? {})) {
      if (!expected.includes(id)) throw invalid(`weight given for critic ${JSON.stringify(id)} that is not expected`, { critic: id });
      if (!Number.isFinite(w) || w < 0) throw invalid(`weight of ${JSON.stringify(id)} must be a finite number >= 0, got ${w}`);
      weights[id] = w;
    }
    if (expected.every((id) => weights[id] === 0)) throw invalid("at least one expected critic needs a positive weight");
    basis = spec.basis ?? "approvals";
    if (basis !== "approvals" && basis !== "mean_score") throw invalid(`basis must be approvals or mean_score, got ${JSON.stringify(basis)}`);
  }

  const body = {
    kind,
    expected: Object.freeze(expected),
    required: Object.freeze(required),
    k,
    threshold,
    weights: Object.freeze(weights),
    basis,
    timeoutMs: spec.timeoutMs,
    onTimeout: spec.onTimeout,
  };
  return Object.freeze({
    name: spec.name ?? "default",
    version: spec.version,
    note: spec.note ?? "",
    ...body,
    hash: createHash("sha256").update(canonicalRule(body)).digest("hex"),
  });
}

/** The spec a policy was made from (normalized), e.g. to store it next to a sample's votes. */
export function policyToSpec(policy: ConsensusPolicy): ConsensusPolicySpec {
  const spec: ConsensusPolicySpec = {
    name: policy.name,
    version: policy.version,
    kind: policy.kind,
    expected: [...policy.expected],
    required: [...policy.required],
    timeoutMs: policy.timeoutMs,
    onTimeout: policy.onTimeout,
    note: policy.note,
  };
  if (policy.kind === "k_of_n") spec.k = policy.k;
  if (policy.kind === "weighted") {
    spec.threshold = policy.threshold;
    spec.weights = { ...policy.weights };
    spec.basis = policy.basis;
  }
  return spec;
}
