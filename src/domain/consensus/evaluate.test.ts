import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createConsensusPolicy, evaluateVotes, type ConsensusPolicySpec, type Vote } from "./index.js";

const A = "a";
const B = "b";
const C = "c";
const yes = (criticId: string, score?: number): Vote => (score === undefined ? { criticId, approve: true } : { criticId, approve: true, score });
const no = (criticId: string, score?: number): Vote => (score === undefined ? { criticId, approve: false } : { criticId, approve: false, score });

const base = { version: 1, expected: [A, B, C], timeoutMs: 1000, onTimeout: "reject" } as const;
const before = { now: 500, firstVoteAt: 0 };
const after = { now: 1000, firstVoteAt: 0 };

type Row = {
  name: string;
  spec: Partial<ConsensusPolicySpec>;
  votes: Vote[];
  clock?: { now: number; firstVoteAt?: number };
  want: "pending" | { accepted: boolean; outcome: string; reason?: RegExp };
};

const rows: Row[] = [
  // unanimous
  { name: "unanimous: all approve", spec: { kind: "unanimous" }, votes: [yes(A), yes(B), yes(C)], want: { accepted: true, outcome: "quorum" } },
  { name: "unanimous: one reject decides early", spec: { kind: "unanimous" }, votes: [yes(A), no(B)], want: { accepted: false, outcome: "early" } },
  { name: "unanimous: two approvals wait", spec: { kind: "unanimous" }, votes: [yes(A), yes(B)], want: "pending" },
  { name: "unanimous: nothing yet", spec: { kind: "unanimous" }, votes: [], clock: { now: 10_000 }, want: "pending" },
  // k_of_n
  { name: "2-of-3: two approvals accept early", spec: { kind: "k_of_n", k: 2 }, votes: [yes(A), yes(C)], want: { accepted: true, outcome: "early", reason: /2\/3 approved, k=2/ } },
  { name: "2-of-3: two rejections reject early", spec: { kind: "k_of_n", k: 2 }, votes: [no(A), no(B)], want: { accepted: false, outcome: "early" } },
  { name: "2-of-3: split waits", spec: { kind: "k_of_n", k: 2 }, votes: [yes(A), no(B)], want: "pending" },
  { name: "2-of-3: split then approve", spec: { kind: "k_of_n", k: 2 }, votes: [yes(A), no(B), yes(C)], want: { accepted: true, outcome: "quorum" } },
  { name: "3-of-3: one reject rejects", spec: { kind: "k_of_n", k: 3 }, votes: [no(C)], want: { accepted: false, outcome: "early" } },
  { name: "1-of-3: first approval accepts", spec: { kind: "k_of_n", k: 1 }, votes: [no(A), yes(B)], want: { accepted: true, outcome: "early" } },
  // required critics
  { name: "required reject vetoes at once", spec: { kind: "k_of_n", k: 1, required: [C] }, votes: [yes(A), no(C)], want: { accepted: false, outcome: "veto", reason: /vetoed by required critic c/ } },
  { name: "required missing blocks acceptance", spec: { kind: "k_of_n", k: 2, required: [C] }, votes: [yes(A), yes(B)], want: "pending" },
  { name: "required present unblocks", spec: { kind: "k_of_n", k: 2, required: [C] }, votes: [yes(A), yes(B), yes(C)], want: { accepted: true, outcome: "quorum" } },
  { name: "required missing at timeout rejects even with onTimeout=accept", spec: { kind: "k_of_n", k: 2, required: [C], onTimeout: "accept" }, votes: [yes(A), yes(B)], clock: after, want: { accepted: false, outcome: "timeout", reason: /required critic c did not vote/ } },
  { name: "rule reject beats missing required", spec: { kind: "k_of_n", k: 3, required: [C] }, votes: [no(A)], want: { accepted: false, outcome: "early" } },
  // weighted, approvals
  { name: "weighted: heavy approver reaches threshold early", spec: { kind: "weighted", threshold: 0.6, weights: { a: 3, b: 1, c: 1 } }, votes: [yes(A)], want: { accepted: true, outcome: "early" } },
  { name: "weighted: heavy rejecter makes threshold unreachable", spec: { kind: "weighted", threshold: 0.6, weights: { a: 3, b: 1, c: 1 } }, votes: [no(A)], want: { accepted: false, outcome: "early" } },
  { name: "weighted: light votes wait", spec: { kind: "weighted", threshold: 0.6, weights: { a: 3, b: 1, c: 1 } }, votes: [yes(B), yes(C)], want: "pending" },
  { name: "weighted: exactly at threshold accepts", spec: { kind: "weighted", threshold: 0.5, weights: { a: 1, b: 1, c: 2 } }, votes: [yes(C)], want: { accepted: true, outcome: "early" } },
  { name: "weighted: just below threshold rejects", spec: { kind: "weighted", threshold: 0.5, weights: { a: 1, b: 1, c: 2 } }, votes: [yes(A), no(B), no(C)], want: { accepted: false, outcome: "quorum" } },
  { name: "weighted: zero-weight critic cannot decide", spec: { kind: "weighted", threshold: 1, weights: { a: 0 } }, votes: [yes(B), yes(C)], want: { accepted: true, outcome: "early" } },
  { name: "weighted: threshold still exactly reachable waits", spec: { kind: "weighted", threshold: 0.5, weights: { a: 1, b: 1, c: 2 } }, votes: [no(C)], want: "pending" },
  // weighted, mean score
  { name: "mean score: high scores accept", spec: { kind: "weighted", threshold: 0.7, basis: "mean_score" }, votes: [yes(A, 0.9), yes(B, 0.8), no(C, 0.5)], want: { accepted: true, outcome: "quorum" } },
  { name: "mean score: low scores reject", spec: { kind: "weighted", threshold: 0.7, basis: "mean_score" }, votes: [yes(A, 0.9), yes(B, 0.6), no(C, 0.5)], want: { accepted: false, outcome: "quorum" } },
  { name: "mean score: certain early", spec: { kind: "weighted", threshold: 0.7, basis: "mean_score" }, votes: [no(A, 0), no(B, 0.1)], want: { accepted: false, outcome: "early" } },
  { name: "mean score: missing score follows approve", spec: { kind: "weighted", threshold: 0.6, basis: "mean_score" }, votes: [yes(A), yes(B)], want: { accepted: true, outcome: "early" } },
  // timeouts
  { name: "timeout reject", spec: { kind: "k_of_n", k: 2 }, votes: [yes(A)], clock: after, want: { accepted: false, outcome: "timeout" } },
  { name: "before timeout still pending", spec: { kind: "k_of_n", k: 2 }, votes: [yes(A)], clock: { now: 999, firstVoteAt: 0 }, want: "pending" },
  { name: "timeout accept", spec: { kind: "k_of_n", k: 3, onTimeout: "accept" }, votes: [yes(A), yes(B)], clock: after, want: { accepted: true, outcome: "timeout" } },
  { name: "timeout with votes: 1 of 1 voter approves (k=2 of 3 scales to 1)", spec: { kind: "k_of_n", k: 2, onTimeout: "decide_with_votes" }, votes: [yes(A)], clock: after, want: { accepted: true, outcome: "timeout" } },
  { name: "timeout with votes: split voters (k=3 of 3 scales to 2)", spec: { kind: "k_of_n", k: 3, onTimeout: "decide_with_votes" }, votes: [yes(A), yes(B)], clock: after, want: { accepted: true, outcome: "timeout" } },
  { name: "timeout with votes: unanimous among voters", spec: { kind: "unanimous", onTimeout: "decide_with_votes" }, votes: [yes(A), yes(B)], clock: after, want: { accepted: true, outcome: "timeout" } },
  { name: "timeout with votes: weighted share of voters", spec: { kind: "weighted", threshold: 0.8, weights: { a: 1, b: 4, c: 1 }, onTimeout: "decide_with_votes" }, votes: [no(A), yes(C)], clock: after, want: { accepted: false, outcome: "timeout" } },
  { name: "timeout with only unexpected votes rejects even with onTimeout=accept", spec: { kind: "k_of_n", k: 2, onTimeout: "accept" }, votes: [yes("x")], clock: after, want: { accepted: false, outcome: "timeout", reason: /no expected critic voted/ } },
  { name: "timeout with no votes at all rejects", spec: { kind: "unanimous", onTimeout: "decide_with_votes" }, votes: [], clock: after, want: { accepted: false, outcome: "timeout", reason: /no expected critic voted/ } },
  // de-duplication
  { name: "duplicate approvals count once", spec: { kind: "k_of_n", k: 2 }, votes: [yes(A), yes(A), yes(A)], want: "pending" },
  { name: "a changed vote is ignored", spec: { kind: "k_of_n", k: 2 }, votes: [no(A), yes(A), yes(B)], want: "pending" },
  { name: "votes of unexpected critics are ignored", spec: { kind: "k_of_n", k: 2 }, votes: [yes("x"), yes("y"), yes(A)], want: "pending" },
];

describe("evaluateVotes (table)", () => {
  for (const row of rows) {
    it(row.name, () => {
      const policy = createConsensusPolicy({ ...base, ...row.spec } as ConsensusPolicySpec);
      const result = evaluateVotes(policy, row.votes, row.clock ?? before);
      if (row.want === "pending") {
        expect(result.state).toBe("pending");
        return;
      }
      expect(result.state).toBe("decided");
      if (result.state !== "decided") return;
      expect(result.accepted).toBe(row.want.accepted);
      expect(result.outcome).toBe(row.want.outcome);
      if (row.want.reason) expect(result.reason).toMatch(row.want.reason);
    });
  }

  it("reports duplicates, conflicts and unexpected critics in the tally", () => {
    const policy = createConsensusPolicy({ ...base, kind: "k_of_n", k: 2 });
    const r = evaluateVotes(policy, [no(A), yes(A), no(A), yes("x"), yes(B)], before);
    expect(r.tally.duplicates).toBe(1);
    expect(r.tally.conflicting).toEqual([A]);
    expect(r.tally.unexpected).toBe(1);
    expect(r.tally.approvals).toEqual([B]);
    expect(r.tally.rejections).toEqual([A]);
    expect(r.tally.missing).toEqual([C]);
    expect(r.state === "pending" && r.deadline).toBe(1000);
  });
});

describe("createConsensusPolicy", () => {
  const bad = (spec: Partial<ConsensusPolicySpec>, message: RegExp): void => {
    let caught: unknown;
    try {
      createConsensusPolicy({ ...base, kind: "k_of_n", k: 2, ...spec } as ConsensusPolicySpec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AutodidactError);
    expect((caught as AutodidactError).code).toBe(Code.InvalidArgument);
    expect((caught as AutodidactError).message).toMatch(message);
  };

  it("refuses invalid specs with InvalidArgument", () => {
    bad({ k: 4 }, /k must be an integer in 1..3/);
    bad({ k: 0 }, /k must be/);
    bad({ expected: [] }, /at least one critic/);
    bad({ expected: [A, A] }, /twice/);
    bad({ required: ["z"] }, /required critic "z" is not in expected/);
    bad({ timeoutMs: 0 }, /timeoutMs/);
    bad({ onTimeout: "maybe" as never }, /onTimeout/);
    bad({ kind: "majority" as never }, /kind must be/);
    bad({ kind: "weighted", threshold: 1.5 }, /threshold must be in \(0, 1\]/);
    bad({ kind: "weighted", threshold: 0.5, weights: { z: 1 } }, /not expected/);
    bad({ kind: "weighted", threshold: 0.5, weights: { a: -1 } }, />= 0/);
    bad({ kind: "weighted", threshold: 0.5, weights: { a: 0, b: 0, c: 0 } }, /positive weight/);
  });

  it("hashes the rule stably: order-insensitive, version-insensitive, rule-sensitive", () => {
    const p1 = createConsensusPolicy({ ...base, kind: "k_of_n", k: 2, expected: [A, B, C], version: 1 });
    const p2 = createConsensusPolicy({ ...base, kind: "k_of_n", k: 2, expected: [C, A, B], version: 7, note: "moved" });
    const p3 = createConsensusPolicy({ ...base, kind: "k_of_n", k: 3 });
    const p4 = createConsensusPolicy({ ...base, kind: "k_of_n", k: 2, required: [A] });
    expect(p1.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(p2.hash).toBe(p1.hash);
    expect(new Set([p1.hash, p3.hash, p4.hash]).size).toBe(3);
    expect(p2.expected).toEqual([A, B, C]);
    expect(Object.isFrozen(p1)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: order, duplication and delay of the same votes never change the decision.

const critics = ["c0", "c1", "c2", "c3", "c4"];

const policyArb: fc.Arbitrary<ConsensusPolicySpec> = fc
  .record({
    n: fc.integer({ min: 1, max: 5 }),
    kind: fc.constantFrom("unanimous", "k_of_n", "weighted") as fc.Arbitrary<"unanimous" | "k_of_n" | "weighted">,
    kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    threshold: fc.double({ min: 0.01, max: 1, noNaN: true }),
    weights: fc.array(fc.double({ min: 0.1, max: 5, noNaN: true }), { minLength: 5, maxLength: 5 }),
    basis: fc.constantFrom("approvals", "mean_score") as fc.Arbitrary<"approvals" | "mean_score">,
    requiredMask: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
    onTimeout: fc.constantFrom("accept", "reject", "decide_with_votes") as fc.Arbitrary<"accept" | "reject" | "decide_with_votes">,
  })
  .map(({ n, kind, kFrac, threshold, weights, basis, requiredMask, onTimeout }) => {
    const expected = critics.slice(0, n);
    return {
      version: 1,
      kind,
      expected,
      required: expected.filter((_, i) => requiredMask[i] && i % 2 === 0),
      k: Math.max(1, Math.ceil(kFrac * n)),
      threshold,
      weights: Object.fromEntries(expected.map((id, i) => [id, weights[i] as number])),
      basis,
      timeoutMs: 1000,
      onTimeout,
    };
  });

/** One vote per critic (some critics may not vote), plus a few unexpected critics. */
const votesArb: fc.Arbitrary<Vote[]> = fc
  .array(
    fc.record({ approve: fc.boolean(), score: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }), voted: fc.boolean() }),
    { minLength: 6, maxLength: 6 },
  )
  .map((rs) =>
    rs.flatMap((r, i) => {
      if (!r.voted && i < 5) return [];
      const criticId = i < 5 ? (critics[i] as string) : "outsider";
      return [r.score === undefined ? { criticId, approve: r.approve } : { criticId, approve: r.approve, score: r.score }];
    }),
  );

/** A permutation of the votes with some repeated (re-deliveries). */
const shuffledWithDuplicates = (votes: Vote[]): fc.Arbitrary<Vote[]> =>
  fc
    .tuple(fc.array(fc.nat(), { minLength: votes.length, maxLength: votes.length }), fc.array(fc.nat(), { maxLength: 6 }))
    .map(([keys, dupes]) => {
      const out = votes.map((v, i) => ({ v, key: keys[i] as number }));
      if (votes.length > 0) for (const d of dupes) out.push({ v: votes[d % votes.length] as Vote, key: d * 7 });
      return out.sort((x, y) => x.key - y.key).map((x) => x.v);
    });

const final = (r: ReturnType<typeof evaluateVotes>): unknown =>
  r.state === "pending" ? "pending" : { accepted: r.accepted, outcome: r.outcome, reason: r.reason, support: r.support };

describe("evaluateVotes (properties)", () => {
  it("any permutation or duplication of the same votes decides identically", () => {
    fc.assert(
      fc.property(
        policyArb,
        votesArb.chain((votes) => fc.tuple(fc.constant(votes), shuffledWithDuplicates(votes))),
        fc.boolean(),
        (spec, [votes, shuffled], timedOut) => {
          const policy = createConsensusPolicy(spec);
          const clock = timedOut ? after : before;
          expect(final(evaluateVotes(policy, shuffled, clock))).toEqual(final(evaluateVotes(policy, votes, clock)));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("a decision taken on any prefix of the arrivals is the decision of all the votes", () => {
    fc.assert(
      fc.property(
        policyArb,
        votesArb.chain((votes) => fc.tuple(fc.constant(votes), shuffledWithDuplicates(votes))),
        (spec, [votes, arrivals]) => {
          const policy = createConsensusPolicy(spec);
          const full = evaluateVotes(policy, votes, before);
          for (let i = 0; i <= arrivals.length; i++) {
            const r = evaluateVotes(policy, arrivals.slice(0, i), before);
            if (r.state === "decided") {
              // Once all expected critics voted, the full evaluation is decided too.
              if (full.state === "decided") expect(r.accepted).toBe(full.accepted);
              else throw new Error(`prefix decided (${r.reason}) but the full vote set is pending`);
            }
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("delays: an event-driven decider reaches the same decision whatever the arrival times", () => {
    // Arrival times in ms; votes before the deadline (first arrival + timeout) count, later ones
    // cannot change a decision already made at the deadline.
    fc.assert(
      fc.property(
        policyArb,
        votesArb.chain((votes) =>
          fc.tuple(
            fc.constant(votes),
            shuffledWithDuplicates(votes).chain((arr) =>
              fc.tuple(fc.constant(arr), fc.array(fc.integer({ min: 0, max: 2500 }), { minLength: arr.length, maxLength: arr.length })),
            ),
          ),
        ),
        (spec, [, [arrivals, times]]) => {
          const policy = createConsensusPolicy(spec);
          const events = arrivals.map((v, i) => ({ v, t: times[i] as number })).sort((a, b) => a.t - b.t);
          if (events.length === 0) return;
          const first = (events[0] as { t: number }).t;
          const deadline = first + policy.timeoutMs;
          // The decider: evaluate after each arrival, and once at the deadline.
          let decision: ReturnType<typeof evaluateVotes> | undefined;
          const seen: Vote[] = [];
          for (const e of events) {
            if (e.t >= deadline) break;
            seen.push(e.v);
            const r = evaluateVotes(policy, seen, { now: e.t, firstVoteAt: first });
            if (r.state === "decided") {
              decision = r;
              break;
            }
          }
          decision ??= evaluateVotes(policy, seen, { now: deadline, firstVoteAt: first });
          expect(decision.state).toBe("decided");
          // Reference: the votes that arrived before the deadline, in canonical (critic) order.
          const inTime = events.filter((e) => e.t < deadline).map((e) => e.v);
          const canonical = [...inTime].sort((a, b) => a.criticId.localeCompare(b.criticId));
          const reference = evaluateVotes(policy, canonical, { now: deadline, firstVoteAt: first });
          expect(reference.state).toBe("decided");
          if (decision.state === "decided" && reference.state === "decided") expect(decision.accepted).toBe(reference.accepted);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
