import { create } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { CriticAgreementSchema, PairwiseAgreementSchema, type Decision } from "../../gen/autodidact/v1/consensus_pb.js";
import { GetAgreementResponseSchema, type GetAgreementResponse } from "../../gen/autodidact/v1/critic_pb.js";

/** A decided sample as agreement metrics see it: the critics' votes and the final decision. */
export interface JudgedSample {
  readonly votes: ReadonlyArray<{
    readonly criticId: string;
    readonly approve: boolean;
    /** Critic method ("verifier", "ensemble-vote"…), when known. */
    readonly kind?: string;
    /** Model version that produced the vote, when known. */
    readonly modelVersion?: string;
  }>;
  /** The consensus decision, when known (for agreement with the decision). */
  readonly accepted?: boolean;
}

/**
 * A decision as agreement metrics see it (the counted votes and the outcome), so the monitor and
 * the critics can feed an agreement window from the decisions stream just as the consensus
 * worker does.
 */
export function judgedSampleFromDecision(decision: Decision): JudgedSample {
  return {
    votes: decision.votes.map((v) => ({ criticId: v.criticId, approve: v.approve, kind: v.criticKind, modelVersion: v.criticModelVersion })),
    accepted: decision.accepted,
  };
}

/** Per-critic statistics over a set of samples (mirrors `autodidact.v1.CriticAgreement`). */
export interface CriticStats {
  readonly criticId: string;
  /** Kind and model version of the critic's most recent vote in the window ("" when unknown). */
  readonly kind: string;
  readonly modelVersion: string;
  readonly votes: number;
  readonly approvals: number;
  /** approvals / votes; 0 when the critic cast no vote. */
  readonly approvalRate: number;
  /** Share of the critic's votes that matched the decision; null when no decided sample has its vote. */
  readonly agreementWithDecision: number | null;
}

/** Agreement of two critics on the samples both judged (mirrors `autodidact.v1.PairwiseAgreement`). */
export interface PairStats {
  readonly criticA: string;
  readonly criticB: string;
  readonly bothVoted: number;
  /** Share of jointly judged samples with equal votes; null when there are none. */
  readonly agreement: number | null;
  /** Cohen's kappa; null when undefined (no joint samples, or chance agreement is 1). */
  readonly cohenKappa: number | null;
}

/** Everything the monitor plots about critic agreement for one window. */
export interface AgreementReport {
  readonly samples: number;
  /** Samples with a known decision, and the share of them accepted (null when none). */
  readonly decided: number;
  readonly acceptanceRate: number | null;
  readonly critics: readonly CriticStats[];
  readonly pairs: readonly PairStats[];
  /** Fleiss' kappa over samples with at least two votes; null when undefined. */
  readonly fleissKappa: number | null;
}

/** First vote of each critic in a sample (re-deliveries and changed votes do not count twice). */
function votesOf(sample: JudgedSample): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const v of sample.votes) if (!out.has(v.criticId)) out.set(v.criticId, v.approve);
  return out;
}

/**
 * Fleiss' kappa: chance-corrected agreement of many raters. `counts[i][j]` is how many raters put
 * subject i in category j. Subjects may have different numbers of raters (subjects with fewer
 * than two are skipped); with equal numbers this is exactly Fleiss (1971). Null when undefined.
 */
export function fleissKappa(counts: ReadonlyArray<readonly number[]>): number | null {
  const rows = counts.filter((row) => row.reduce((a, b) => a + b, 0) >= 2);
  if (rows.length === 0) return null;
  const categories = Math.max(...rows.map((r) => r.length));
  const totals = new Array<number>(categories).fill(0);
  let ratings = 0;
  let agreement = 0;
  for (const row of rows) {
    let n = 0;
    let squares = 0;
    row.forEach((c, j) => {
      if (!Number.isInteger(c) || c < 0) throw new AutodidactError(`rating counts must be non-negative integers, got ${c}`, Code.InvalidArgument);
      n += c;
      squares += c * c;
      totals[j] = (totals[j] ?? 0) + c;
    });
    ratings += n;
    agreement += (squares - n) / (n * (n - 1));
  }
  const observed = agreement / rows.length;
  const chance = totals.reduce((acc, t) => acc + (t / ratings) ** 2, 0);
  if (chance >= 1) return null;
  return (observed - chance) / (1 - chance);
}

/** Cohen's kappa of two binary raters from their joint votes; null when undefined. */
function cohenKappa(pairs: ReadonlyArray<readonly [boolean, boolean]>): number | null {
  if (pairs.length === 0) return null;
  let agree = 0;
  let aYes = 0;
  let bYes = 0;
  for (const [a, b] of pairs) {
    if (a === b) agree++;
    if (a) aYes++;
    if (b) bYes++;
  }
  const n = pairs.length;
  const po = agree / n;
  const pe = (aYes / n) * (bYes / n) + (1 - aYes / n) * (1 - bYes / n);
  if (pe >= 1) return null;
  return (po - pe) / (1 - pe);
}

/** Approval rate and agreement with the decision of every critic that voted, sorted by id. */
export function criticStats(samples: readonly JudgedSample[]): CriticStats[] {
  const acc = new Map<string, { votes: number; approvals: number; decided: number; matched: number; kind: string; modelVersion: string }>();
  for (const s of samples) {
    const meta = new Map<string, { kind?: string; modelVersion?: string }>();
    for (const v of s.votes) if (!meta.has(v.criticId)) meta.set(v.criticId, v);
    for (const [id, approve] of votesOf(s)) {
      const a = acc.get(id) ?? { votes: 0, approvals: 0, decided: 0, matched: 0, kind: "", modelVersion: "" };
      const m = meta.get(id);
      if (m?.kind) a.kind = m.kind;
      if (m?.modelVersion) a.modelVersion = m.modelVersion;
      a.votes++;
      if (approve) a.approvals++;
      if (s.accepted !== undefined) {
        a.decided++;
        if (s.accepted === approve) a.matched++;
      }
      acc.set(id, a);
    }
  }
  return [...acc.entries()]
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([criticId, a]) => ({
      criticId,
      kind: a.kind,
      modelVersion: a.modelVersion,
      votes: a.votes,
      approvals: a.approvals,
      approvalRate: a.votes === 0 ? 0 : a.approvals / a.votes,
      agreementWithDecision: a.decided === 0 ? null : a.matched / a.decided,
    }));
}

/** Raw agreement and Cohen's kappa for every pair of critics that voted (a < b by id). */
export function pairwiseAgreement(samples: readonly JudgedSample[]): PairStats[] {
  const perSample = samples.map(votesOf);
  const ids = [...new Set(perSample.flatMap((m) => [...m.keys()]))].sort();
  const out: PairStats[] = [];
  for (let i = 0; i < ids.length; i++) {
    for (let j = i + 1; j < ids.length; j++) {
      const a = ids[i] as string;
      const b = ids[j] as string;
      const joint: Array<[boolean, boolean]> = [];
      for (const m of perSample) {
        const va = m.get(a);
        const vb = m.get(b);
        if (va !== undefined && vb !== undefined) joint.push([va, vb]);
      }
      out.push({
        criticA: a,
        criticB: b,
        bothVoted: joint.length,
        agreement: joint.length === 0 ? null : joint.filter(([x, y]) => x === y).length / joint.length,
        cohenKappa: cohenKappa(joint),
      });
    }
  }
  return out;
}

/** Per-critic, pairwise and Fleiss agreement of a set of samples in one pass of the API. */
export function agreementReport(samples: readonly JudgedSample[]): AgreementReport {
  const counts = samples.map((s) => {
    let yes = 0;
    let no = 0;
    for (const approve of votesOf(s).values()) {
      if (approve) yes++;
      else no++;
    }
    return [yes, no];
  });
  const decided = samples.filter((s) => s.accepted !== undefined);
  return {
    samples: samples.length,
    decided: decided.length,
    acceptanceRate: decided.length === 0 ? null : decided.filter((s) => s.accepted === true).length / decided.length,
    critics: criticStats(samples),
    pairs: pairwiseAgreement(samples),
    fleissKappa: fleissKappa(counts),
  };
}

/** A sliding window over the last N decided samples, for live agreement metrics. */
export interface AgreementWindow {
  /** Capacity of the window. */
  readonly capacity: number;
  /** Samples currently held (<= capacity). */
  readonly size: number;
  /** Adds a decided sample, evicting the oldest when full. */
  add(sample: JudgedSample): void;
  /** Agreement over the samples in the window, or over only the `last` most recent ones. */
  report(last?: number): AgreementReport;
  clear(): void;
}

/**
 * Creates an {@link AgreementWindow}: the consensus worker feeds every decision in, the monitor
 * reads the report, so agreement reflects the recent critics rather than all of history.
 */
export function createAgreementWindow(capacity: number): AgreementWindow {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new AutodidactError(`agreement window capacity must be a positive integer, got ${capacity}`, Code.InvalidArgument);
  }
  const ring: JudgedSample[] = [];
  let head = 0;
  return {
    capacity,
    get size() {
      return ring.length;
    },
    add(sample) {
      const copy: JudgedSample = {
        votes: sample.votes.map((v) => ({
          criticId: v.criticId,
          approve: v.approve,
          ...(v.kind === undefined ? {} : { kind: v.kind }),
          ...(v.modelVersion === undefined ? {} : { modelVersion: v.modelVersion }),
        })),
        ...(sample.accepted === undefined ? {} : { accepted: sample.accepted }),
      };
      if (ring.length < capacity) ring.push(copy);
      else {
        ring[head] = copy;
        head = (head + 1) % capacity;
      }
    },
    report(last) {
      const ordered = ring.length < capacity ? ring : [...ring.slice(head), ...ring.slice(0, head)];
      if (last === undefined) return agreementReport(ordered);
      if (!Number.isInteger(last) || last < 0) throw new AutodidactError(`last must be a non-negative integer, got ${last}`, Code.InvalidArgument);
      return agreementReport(last === 0 ? [] : ordered.slice(-last));
    },
    clear() {
      ring.length = 0;
      head = 0;
    },
  };
}

/**
 * The wire form of an agreement report (the critic service's GetAgreement answer). Undefined
 * kappas become NaN as the contract says; shares with nothing to count become 0.
 */
export function agreementToProto(report: AgreementReport): GetAgreementResponse {
  return create(GetAgreementResponseSchema, {
    critics: report.critics.map((c) =>
      create(CriticAgreementSchema, {
        criticId: c.criticId,
        criticKind: c.kind,
        criticModelVersion: c.modelVersion,
        votes: BigInt(c.votes),
        approvals: BigInt(c.approvals),
        approvalRate: c.approvalRate,
        agreementWithDecision: c.agreementWithDecision ?? 0,
      }),
    ),
    pairwise: report.pairs.map((p) =>
      create(PairwiseAgreementSchema, {
        criticA: p.criticA,
        criticB: p.criticB,
        bothVoted: BigInt(p.bothVoted),
        agreement: p.agreement ?? 0,
        cohenKappa: p.cohenKappa ?? Number.NaN,
      }),
    ),
    fleissKappa: report.fleissKappa ?? Number.NaN,
    decisions: BigInt(report.decided),
    acceptanceRate: report.acceptanceRate ?? 0,
  });
}
