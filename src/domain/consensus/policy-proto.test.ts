import { describe, expect, it } from "vitest";
import { ConsensusKind, TimeoutOutcome } from "../../gen/autodidact/v1/consensus_pb.js";
import { createConsensusPolicy, policyFromProto, policyToProto, type ConsensusPolicySpec } from "./index.js";

const specs: ConsensusPolicySpec[] = [
  { name: "u", version: 1, kind: "unanimous", expected: ["a", "b"], timeoutMs: 100, onTimeout: "reject" },
  { name: "k", version: 2, kind: "k_of_n", k: 2, expected: ["a", "b", "c"], required: ["c"], timeoutMs: 5000, onTimeout: "decide_with_votes", note: "two of three" },
  { name: "w", version: 3, kind: "weighted", threshold: 0.7, weights: { a: 2 }, expected: ["a", "b"], timeoutMs: 1, onTimeout: "accept" },
  { name: "m", version: 4, kind: "weighted", threshold: 0.5, basis: "mean_score", expected: ["a"], timeoutMs: 10, onTimeout: "reject", note: "scores" },
];

describe("policy wire form", () => {
  it("round-trips every policy exactly, including features the wire form lacks", () => {
    for (const spec of specs) {
      const policy = createConsensusPolicy(spec);
      const back = policyFromProto(policyToProto(policy));
      expect(back).toEqual(policy);
    }
  });

  it("maps onto the proto enums", () => {
    const k = policyToProto(createConsensusPolicy(specs[1] as ConsensusPolicySpec));
    expect(k.kind).toBe(ConsensusKind.K_OF_N);
    expect(k.onTimeout).toBe(TimeoutOutcome.ACCEPT);
    expect(k.critics).toEqual(["a", "b", "c"]);
    expect(k.requiredCritics).toEqual(["c"]);
    expect(k.timeoutMs).toBe(5000n);
    expect(k.note).toBe("two of three");
    const w = policyToProto(createConsensusPolicy(specs[2] as ConsensusPolicySpec));
    expect(w.weights).toEqual({ a: 2, b: 1 });
    expect(w.note).toBe("[consensus-ext on_timeout=accept]");
  });

  it("refuses a wire policy without a kind", () => {
    const p = policyToProto(createConsensusPolicy(specs[0] as ConsensusPolicySpec));
    p.kind = ConsensusKind.UNSPECIFIED;
    expect(() => policyFromProto(p)).toThrow(/kind 0 is not set/);
    p.kind = ConsensusKind.K_OF_N;
    p.k = 9;
    expect(() => policyFromProto(p)).toThrow(/k must be an integer/);
  });
});
