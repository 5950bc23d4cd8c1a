import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ConsensusKind as ProtoKind,
  ConsensusPolicySchema,
  TimeoutOutcome,
  type ConsensusPolicy as ProtoPolicy,
} from "../../gen/autodidact/v1/consensus_pb.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createConsensusPolicy, type ConsensusKind, type ConsensusPolicy, type ConsensusPolicySpec } from "./policy.js";

/*
 * The wire `ConsensusPolicy` has no field for two features of the TypeScript policy: an
 * unconditional accept on timeout, and the weighted `mean_score` basis. Rather than drop them,
 * they travel in a marker at the end of `note`, `[consensus-ext on_timeout=accept basis=mean_score]`,
 * which `policyFromProto` reads back, so a policy survives the round trip exactly.
 */
const EXT = /\s*\[consensus-ext((?: [a-z_]+=[a-z_]+)*)\]$/;

const kindToProto: Record<ConsensusKind, ProtoKind> = {
  unanimous: ProtoKind.UNANIMOUS,
  k_of_n: ProtoKind.K_OF_N,
  weighted: ProtoKind.WEIGHTED,
};

/** Converts a policy to its wire form (for PolicyRef in decisions and the policy RPCs). */
export function policyToProto(policy: ConsensusPolicy, updatedAtMs?: number): ProtoPolicy {
  const ext: string[] = [];
  if (policy.onTimeout === "accept") ext.push("on_timeout=accept");
  if (policy.kind === "weighted" && policy.basis === "mean_score") ext.push("basis=mean_score");
  const note = ext.length > 0 ? `${policy.note}${policy.note ? " " : ""}[consensus-ext ${ext.join(" ")}]` : policy.note;
  return create(ConsensusPolicySchema, {
    name: policy.name,
    version: BigInt(policy.version),
    kind: kindToProto[policy.kind],
    critics: [...policy.expected],
    requiredCritics: [...policy.required],
    k: policy.kind === "k_of_n" ? policy.k : 0,
    threshold: policy.threshold,
    weights: policy.kind === "weighted" ? { ...policy.weights } : {},
    timeoutMs: BigInt(policy.timeoutMs),
    onTimeout: policy.onTimeout === "reject" ? TimeoutOutcome.REJECT : TimeoutOutcome.ACCEPT,
    ...(updatedAtMs === undefined ? {} : { updatedAt: timestampFromMs(updatedAtMs) }),
    note,
  });
}

/** Reads and validates a wire policy; InvalidArgument for anything {@link createConsensusPolicy} refuses. */
export function policyFromProto(msg: ProtoPolicy): ConsensusPolicy {
  const kind: ConsensusKind | undefined =
    msg.kind === ProtoKind.UNANIMOUS ? "unanimous" : msg.kind === ProtoKind.K_OF_N ? "k_of_n" : msg.kind === ProtoKind.WEIGHTED ? "weighted" : undefined;
  if (kind === undefined) throw new AutodidactError(`consensus policy kind ${msg.kind} is not set or unknown`, Code.InvalidArgument);
  const m = EXT.exec(msg.note);
  const ext = new Map((m?.[1] ?? "").trim().split(" ").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
  const note = m === null ? msg.note : msg.note.slice(0, m.index);
  let onTimeout: ConsensusPolicySpec["onTimeout"];
  if (ext.get("on_timeout") === "accept") onTimeout = "accept";
  else if (msg.onTimeout === TimeoutOutcome.ACCEPT) onTimeout = "decide_with_votes";
  else onTimeout = "reject"; // REJECT, and the safe reading of UNSPECIFIED
  if (msg.version > BigInt(Number.MAX_SAFE_INTEGER) || msg.timeoutMs > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new AutodidactError("consensus policy version or timeout is out of range", Code.InvalidArgument);
  }
  const spec: ConsensusPolicySpec = {
    name: msg.name || "default",
    version: Number(msg.version),
    kind,
    expected: msg.critics,
    required: msg.requiredCritics,
    timeoutMs: Number(msg.timeoutMs),
    onTimeout,
    note,
  };
  if (kind === "k_of_n") spec.k = msg.k;
  if (kind === "weighted") {
    spec.threshold = msg.threshold;
    spec.weights = msg.weights;
    spec.basis = ext.get("basis") === "mean_score" ? "mean_score" : "approvals";
  }
  return createConsensusPolicy(spec);
}
