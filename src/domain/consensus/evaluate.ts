import type { ConsensusPolicy } from "./policy.js";

/** One critic's vote as consensus sees it (a `Verdict` reduced to what the rule needs). */
export interface Vote {
  readonly criticId: string;
  readonly approve: boolean;
  /** Score in [0, 1]; used by weighted `mean_score` policies. Missing → 1 for approve, 0 for reject. */
  readonly score?: number;
}

/** How a decision was reached (mirrors `autodidact.v1.DecisionOutcome`). */
export type DecisionOutcomeKind = "quorum" | "early" | "veto" | "timeout";

/** The votes after de-duplication, as the rule saw them. */
export interface VoteTally {
  /** First vote of each expected critic, in arrival order. */
  readonly counted: readonly Vote[];
  /** Expected critics that approved / rejected, sorted. */
  readonly approvals: readonly string[];
  readonly rejections: readonly string[];
  /** Expected critics that have not voted, sorted. */
  readonly missing: readonly string[];
  /** Votes repeated unchanged (idempotent re-deliveries). */
  readonly duplicates: number;
  /** Critics that sent a different vote after their first one (the change is ignored), sorted. */
  readonly conflicting: readonly string[];
  /** Votes from critics the policy does not expect (recorded, ignored). */
  readonly unexpected: number;
}

/** Result of {@link evaluateVotes}. */
export type ConsensusEvaluation =
  | {
      readonly state: "pending";
      readonly tally: VoteTally;
      /** When the timeout will fire (ms epoch), if the clock has started. */
      readonly deadline?: number;
    }
  | {
      readonly state: "decided";
      readonly accepted: boolean;
      readonly outcome: DecisionOutcomeKind;
      /** Human-readable explanation ("2/3 approved, k=2"). */
      readonly reason: string;
      /** Approval count (unanimous, k_of_n) or weighted share/mean (weighted) the rule used. */
      readonly support: number;
      readonly tally: VoteTally;
    };

/** The clock of one sample: `now`, and when its first vote (or the sample) arrived. */
export interface EvaluationClock {
  readonly now: number;
  /** Undefined while nothing has arrived: no timeout can fire. */
  readonly firstVoteAt?: number;
}

function sameVote(a: Vote, b: Vote): boolean {
  return a.approve === b.approve && (a.score ?? null) === (b.score ?? null);
}

/** A vote's score clamped to [0, 1]; non-finite or missing scores follow the approve flag. */
function scoreOf(v: Vote): number {
  const s = v.score;
  if (s === undefined || !Number.isFinite(s)) return v.approve ? 1 : 0;
  return Math.min(1, Math.max(0, s));
}

/** De-duplicates votes by critic (first wins) and splits them by the policy's expected critics. */
export function tallyVotes(policy: ConsensusPolicy, votes: readonly Vote[]): VoteTally {
  const expected = new Set(policy.expected);
  const first = new Map<string, Vote>();
  const counted: Vote[] = [];
  const conflicting = new Set<string>();
  let duplicates = 0;
  let unexpected = 0;
  for (const v of votes) {
    const prior = first.get(v.criticId);
    if (prior !== undefined) {
      if (sameVote(prior, v)) duplicates++;
      else conflicting.add(v.criticId);
      continue;
    }
    first.set(v.criticId, v);
    if (expected.has(v.criticId)) counted.push(v);
    else unexpected++;
  }
  const approvals: string[] = [];
  const rejections: string[] = [];
  const missing: string[] = [];
  for (const id of policy.expected) {
    const v = first.get(id);
    if (v === undefined) missing.push(id);
    else (v.approve ? approvals : rejections).push(id);
  }
  return { counted, approvals, rejections, missing, duplicates, conflicting: [...conflicting].sort(), unexpected };
}

type RuleStatus = { status: "accept" | "reject" | "open"; support: number; detail: string };

/**
 * Applies the rule under uncertainty: "accept"/"reject" only when every possible completion of
 * the missing votes gives that result. Sums run over the sorted expected list in the same order
 * for the lower bound, the upper bound and the final value, so floating-point rounding is
 * monotone and an early decision can never disagree with the full-vote one.
 */
function applyRule(policy: ConsensusPolicy, byCritic: ReadonlyMap<string, Vote>): RuleStatus {
  const n = policy.expected.length;
  let approvals = 0;
  let rejections = 0;
  for (const id of policy.expected) {
    const v = byCritic.get(id);
    if (v !== undefined) {
      if (v.approve) approvals++;
      else rejections++;
    }
  }
  const missing = n - approvals - rejections;
  if (policy.kind === "unanimous") {
    const detail = `${approvals}/${n} approved, unanimous`;
    if (rejections > 0) return { status: "reject", support: approvals, detail: `${rejections} rejected, unanimous needed` };
    return { status: missing === 0 ? "accept" : "open", support: approvals, detail };
  }
  if (policy.kind === "k_of_n") {
    const detail = `${approvals}/${n} approved, k=${policy.k}`;
    if (approvals >= policy.k) return { status: "accept", support: approvals, detail };
    if (approvals + missing < policy.k) return { status: "reject", support: approvals, detail };
    return { status: "open", support: approvals, detail };
  }
  let total = 0;
  let low = 0;
  let high = 0;
  for (const id of policy.expected) {
    const w = policy.weights[id] ?? 1;
    total += w;
    const v = byCritic.get(id);
    if (v === undefined) {
      high += w;
      continue;
    }
    const part = policy.basis === "mean_score" ? w * scoreOf(v) : v.approve ? w : 0;
    low += part;
    high += part;
  }
  const lo = low / total;
  const hi = high / total;
  const what = policy.basis === "mean_score" ? "weighted mean score" : "weighted approval share";
  const detail = `${what} ${lo.toFixed(3)}${missing > 0 ? `..${hi.toFixed(3)}` : ""}, threshold ${policy.threshold}`;
  if (lo >= policy.threshold) return { status: "accept", support: lo, detail };
  if (hi < policy.threshold) return { status: "reject", support: lo, detail };
  return { status: "open", support: lo, detail };
}

/** The rule applied to the critics that voted only, as if they were the whole panel. */
function applyRuleToVoters(policy: ConsensusPolicy, tally: VoteTally): { accepted: boolean; support: number; detail: string } {
  const cast = tally.approvals.length + tally.rejections.length;
  if (cast === 0) return { accepted: false, support: 0, detail: "no expected critic voted" };
  if (policy.kind === "unanimous") {
    return { accepted: tally.rejections.length === 0, support: tally.approvals.length, detail: `${tally.approvals.length}/${cast} voters approved, unanimous` };
  }
  if (policy.kind === "k_of_n") {
    // The same proportion of the voters as k is of n.
    const need = Math.ceil((policy.k * cast) / policy.expected.length);
    return {
      accepted: tally.approvals.length >= need,
      support: tally.approvals.length,
      detail: `${tally.approvals.length}/${cast} voters approved, needed ${need} (k=${policy.k} of ${policy.expected.length} scaled)`,
    };
  }
  const byCritic = new Map(tally.counted.map((v) => [v.criticId, v]));
  let total = 0;
  let sum = 0;
  for (const id of policy.expected) {
    const v = byCritic.get(id);
    if (v === undefined) continue;
    const w = policy.weights[id] ?? 1;
    total += w;
    sum += policy.basis === "mean_score" ? w * scoreOf(v) : v.approve ? w : 0;
  }
  const value = total > 0 ? sum / total : 0;
  return {
    accepted: total > 0 && value >= policy.threshold,
    support: value,
    detail: `${policy.basis === "mean_score" ? "weighted mean score" : "weighted approval share"} of voters ${value.toFixed(3)}, threshold ${policy.threshold}`,
  };
}

/**
 * Decides one sample from the votes received so far, as early as the outcome is certain.
 *
 * Votes are de-duplicated by critic id (the first wins; an identical repeat is idempotent; a
 * changed vote is ignored and reported in `tally.conflicting`), so any order or duplication of
 * the same votes decides the same way, and a decision made on a prefix of the votes is the one
 * all of them would give. A required critic's rejection is a veto; its missing vote blocks
 * acceptance (and rejects at the timeout). Once `now - firstVoteAt >= timeoutMs`, the policy's
 * `onTimeout` decides what is still open, except that a sample no expected critic voted on is
 * always rejected: nothing unjudged enters training data.
 */
export function evaluateVotes(policy: ConsensusPolicy, votes: readonly Vote[], clock: EvaluationClock): ConsensusEvaluation {
  const tally = tallyVotes(policy, votes);
  const byCritic = new Map(tally.counted.map((v) => [v.criticId, v]));
  const decided = (accepted: boolean, outcome: DecisionOutcomeKind, reason: string, support: number): ConsensusEvaluation => ({
    state: "decided",
    accepted,
    outcome,
    reason,
    support,
    tally,
  });

  const vetoes = policy.required.filter((id) => byCritic.get(id)?.approve === false);
  const rule = applyRule(policy, byCritic);
  if (vetoes.length > 0) return decided(false, "veto", `vetoed by required critic ${vetoes.join(", ")}`, rule.support);

  const complete = tally.missing.length === 0;
  const missingRequired = policy.required.filter((id) => !byCritic.has(id));
  if (rule.status === "reject") return decided(false, complete ? "quorum" : "early", rule.detail, rule.support);
  if (rule.status === "accept" && missingRequired.length === 0) {
    return decided(true, complete ? "quorum" : "early", rule.detail, rule.support);
  }

  const deadline = clock.firstVoteAt === undefined ? undefined : clock.firstVoteAt + policy.timeoutMs;
  if (deadline === undefined || clock.now < deadline) {
    return deadline === undefined ? { state: "pending", tally } : { state: "pending", tally, deadline };
  }
  const late = `timeout after ${policy.timeoutMs} ms, missing ${tally.missing.join(", ")}`;
  if (tally.counted.length === 0) return decided(false, "timeout", `${late}; no expected critic voted`, 0);
  if (missingRequired.length > 0) {
    return decided(false, "timeout", `${late}; required critic ${missingRequired.join(", ")} did not vote`, rule.support);
  }
  if (policy.onTimeout === "reject") return decided(false, "timeout", `${late}; on timeout: reject`, rule.support);
  if (policy.onTimeout === "accept") return decided(true, "timeout", `${late}; on timeout: accept`, rule.support);
  const partial = applyRuleToVoters(policy, tally);
  return decided(partial.accepted, "timeout", `${late}; decided with the votes present: ${partial.detail}`, partial.support);
}
