// Building decisions: the Decision message from a sample, its votes and the evaluation, with the
// policy objects, references and specs it needs cached per worker.
import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DecisionOutcome, DecisionSchema, PolicyRefSchema, type Decision, type PolicyRef } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema, type Sample, type Verdict } from "../../src/gen/autodidact/v1/sample_pb.js";
import {
  createConsensusPolicy,
  policyToProto,
  policyToSpec,
  type ConsensusEvaluation,
  type ConsensusPolicy,
  type ConsensusPolicySpec,
  type DecisionOutcomeKind,
  type Vote,
} from "../../src/domain/consensus/index.js";
import { decidedRecord, unb64, type ConsensusRecord } from "./record.js";

/** An evaluation that decided. */
export type Decided = Extract<ConsensusEvaluation, { state: "decided" }>;

/** What a decision is made of, decoded: from a KV record or straight from held messages. */
export interface DecisionParts {
  sampleId: string;
  task: string;
  sample: Sample | undefined;
  votes: Verdict[];
  conflicts: string[];
}

const outcomeToProto: Record<DecisionOutcomeKind, DecisionOutcome> = {
  quorum: DecisionOutcome.QUORUM_REACHED,
  early: DecisionOutcome.EARLY,
  veto: DecisionOutcome.VETO,
  timeout: DecisionOutcome.TIMEOUT,
};

/** A verdict as the pure rule counts it. */
export function toVote(v: Verdict): Vote {
  return { criticId: v.criticId, approve: v.approve, score: v.score };
}

/** The parts of a pending record, decoded. */
export function partsOfRecord(r: ConsensusRecord): DecisionParts {
  return {
    sampleId: r.sampleId,
    task: r.task,
    sample: r.sample === undefined ? undefined : fromBinary(SampleSchema, unb64(r.sample)),
    votes: r.votes.map((v) => fromBinary(VerdictSchema, unb64(v))),
    conflicts: r.conflicts,
  };
}

/** Most policy specs a worker keeps built (they change only when an operator sets a new policy). */
const MAX_POLICIES = 64;

/**
 * Builds the decisions of one worker (its id is their `decider_id`). Every decision carries its
 * policy's reference; the policy object of a stored spec, and the reference and spec of a policy
 * object, are built once and cached.
 */
export class DecisionBuilder {
  readonly deciderId: string;
  /** Policy objects by their spec's JSON (records store the spec). */
  private readonly policies = new Map<string, ConsensusPolicy>();
  private readonly refs = new WeakMap<ConsensusPolicy, PolicyRef>();
  private readonly specs = new WeakMap<ConsensusPolicy, ConsensusPolicySpec>();

  constructor(deciderId: string) {
    this.deciderId = deciderId;
  }

  /** The policy a record names. */
  policyOf(spec: ConsensusPolicySpec): ConsensusPolicy {
    const key = JSON.stringify(spec);
    let p = this.policies.get(key);
    if (p === undefined) {
      p = createConsensusPolicy(spec);
      if (this.policies.size > MAX_POLICIES) this.policies.clear();
      this.policies.set(key, p);
    }
    return p;
  }

  /** The spec of a policy, as records store it. */
  specOf(policy: ConsensusPolicy): ConsensusPolicySpec {
    let spec = this.specs.get(policy);
    if (spec === undefined) {
      spec = policyToSpec(policy);
      this.specs.set(policy, spec);
    }
    return spec;
  }

  /** The Decision for these parts; `detail` overrides the evaluation's reason. */
  build(r: DecisionParts, policy: ConsensusPolicy, ev: Decided, now: number, detail?: string): Decision {
    return create(DecisionSchema, {
      sampleId: r.sampleId,
      task: r.task,
      accepted: ev.accepted,
      ...(r.sample === undefined ? {} : { sample: r.sample }),
      votes: r.votes,
      policy: this.refOf(policy),
      outcome: outcomeToProto[ev.outcome],
      outcomeDetail: detail ?? (r.conflicts.length > 0 ? `${ev.reason}; ignored changed votes of ${r.conflicts.join(", ")}` : ev.reason),
      decidedAt: timestampFromMs(now),
      deciderId: this.deciderId,
      support: ev.support,
    });
  }

  /** The decided record of a sample, naming this worker as its decider. */
  decidedRecord(record: Pick<ConsensusRecord, "sampleId" | "task" | "policy" | "conflicts">, decision: Uint8Array, now: number): ConsensusRecord {
    return decidedRecord(record, decision, now, this.deciderId);
  }

  private refOf(policy: ConsensusPolicy): PolicyRef {
    let ref = this.refs.get(policy);
    if (ref === undefined) {
      ref = create(PolicyRefSchema, { name: policy.name, version: BigInt(policy.version), spec: policyToProto(policy) });
      this.refs.set(policy, ref);
    }
    return ref;
  }
}
