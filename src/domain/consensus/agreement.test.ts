import { describe, expect, it } from "vitest";
import { agreementReport, agreementToProto, createAgreementWindow, criticStats, fleissKappa, pairwiseAgreement, type JudgedSample } from "./index.js";

const sample = (votes: Record<string, boolean>, accepted?: boolean): JudgedSample => ({
  votes: Object.entries(votes).map(([criticId, approve]) => ({ criticId, approve })),
  ...(accepted === undefined ? {} : { accepted }),
});

describe("fleissKappa", () => {
  it("matches a two-category example computed by hand", () => {
    // 4 subjects, 3 raters, categories [approve, reject]:
    //   P_i = (sum_j n_ij^2 - n) / (n (n - 1)):  [3,0] → 1, [2,1] → 1/3, [1,2] → 1/3, [0,3] → 1
    //   P̄ = (1 + 1/3 + 1/3 + 1) / 4 = 2/3;  p = (6/12, 6/12) → P̄e = 1/2
    //   κ = (2/3 − 1/2) / (1 − 1/2) = 1/3
    expect(fleissKappa([[3, 0], [2, 1], [1, 2], [0, 3]])).toBeCloseTo(1 / 3, 12);
  });

  it("matches the textbook 10-subject, 14-rater, 5-category example (Fleiss 1971, κ ≈ 0.210)", () => {
    const table = [
      [0, 0, 0, 0, 14],
      [0, 2, 6, 4, 2],
      [0, 0, 3, 5, 6],
      [0, 3, 9, 2, 0],
      [2, 2, 8, 1, 1],
      [7, 7, 0, 0, 0],
      [3, 2, 6, 3, 0],
      [2, 5, 3, 2, 2],
      [6, 5, 2, 1, 0],
      [0, 2, 2, 3, 7],
    ];
    // By hand: p_j = (20, 28, 39, 21, 32) / 140 → P̄e = (400 + 784 + 1521 + 441 + 1024) / 19600 = 4170/19600
    // Σ_i Σ_j n_ij^2 = 196+60+70+94+74+98+58+46+66+66 = 828; P̄ = (828 − 140) / (10 · 14 · 13) = 688/1820
    const pe = 4170 / 19600;
    const pbar = 688 / 1820;
    expect(fleissKappa(table)).toBeCloseTo((pbar - pe) / (1 - pe), 12);
    expect(fleissKappa(table)).toBeCloseTo(0.21, 2);
  });

  it("is 1 for perfect agreement on mixed subjects, undefined when every rating is the same category", () => {
    expect(fleissKappa([[3, 0], [0, 3]])).toBe(1);
    expect(fleissKappa([[3, 0], [3, 0]])).toBeNull();
    expect(fleissKappa([[1, 0]])).toBeNull(); // a single rater carries no agreement
    expect(() => fleissKappa([[1.5, 1]])).toThrow(/non-negative integers/);
  });
});

describe("critic and pairwise agreement", () => {
  // A: Y Y N N, B: Y N N N, decisions: accept, reject, reject, reject
  const samples = [
    sample({ a: true, b: true }, true),
    sample({ a: true, b: false }, false),
    sample({ a: false, b: false }, false),
    sample({ a: false, b: false }, false),
    sample({ c: true }), // only c voted, undecided
  ];

  it("computes approval rates and agreement with the decision", () => {
    expect(criticStats(samples)).toEqual([
      { criticId: "a", kind: "", modelVersion: "", votes: 4, approvals: 2, approvalRate: 0.5, agreementWithDecision: 0.75 },
      { criticId: "b", kind: "", modelVersion: "", votes: 4, approvals: 1, approvalRate: 0.25, agreementWithDecision: 1 },
      { criticId: "c", kind: "", modelVersion: "", votes: 1, approvals: 1, approvalRate: 1, agreementWithDecision: null },
    ]);
    const r = agreementReport(samples);
    expect(r.decided).toBe(4);
    expect(r.acceptanceRate).toBe(0.25);
  });

  it("computes pairwise agreement and Cohen's kappa by hand", () => {
    // a–b: p_o = 3/4; p_e = 0.5·0.25 + 0.5·0.75 = 0.5 → κ = (0.75 − 0.5)/0.5 = 0.5
    const pairs = pairwiseAgreement(samples);
    expect(pairs).toHaveLength(3);
    expect(pairs[0]).toEqual({ criticA: "a", criticB: "b", bothVoted: 4, agreement: 0.75, cohenKappa: 0.5 });
    expect(pairs.find((p) => p.criticA === "a" && p.criticB === "c")).toEqual({
      criticA: "a",
      criticB: "c",
      bothVoted: 0,
      agreement: null,
      cohenKappa: null,
    });
  });

  it("counts only a critic's first vote in a sample", () => {
    const dup: JudgedSample = { votes: [{ criticId: "a", approve: true }, { criticId: "a", approve: false }, { criticId: "b", approve: true }] };
    expect(criticStats([dup])[0]).toMatchObject({ votes: 1, approvals: 1 });
    expect(agreementReport([dup, sample({ a: false, b: false })]).fleissKappa).toBe(1);
  });
});

describe("agreementToProto", () => {
  it("fills the GetAgreement answer, with NaN for undefined kappas", () => {
    const samples: JudgedSample[] = [
      { votes: [{ criticId: "a", approve: true, kind: "verifier", modelVersion: "" }, { criticId: "b", approve: true, kind: "model-likelihood", modelVersion: "m-1" }], accepted: true },
      { votes: [{ criticId: "a", approve: true, kind: "verifier" }, { criticId: "b", approve: true, kind: "model-likelihood", modelVersion: "m-2" }], accepted: true },
    ];
    const msg = agreementToProto(agreementReport(samples));
    expect(msg.decisions).toBe(2n);
    expect(msg.acceptanceRate).toBe(1);
    expect(msg.critics.map((c) => [c.criticId, c.criticKind, c.criticModelVersion, c.votes, c.approvalRate])).toEqual([
      ["a", "verifier", "", 2n, 1],
      ["b", "model-likelihood", "m-2", 2n, 1],
    ]);
    // Everyone always approves: agreement is total, but chance-corrected agreement is undefined.
    expect(msg.pairwise[0]?.agreement).toBe(1);
    expect(msg.pairwise[0]?.cohenKappa).toBeNaN();
    expect(msg.fleissKappa).toBeNaN();
  });
});

describe("createAgreementWindow", () => {
  it("reports over the most recent samples on request", () => {
    const w = createAgreementWindow(10);
    w.add(sample({ a: true }, true));
    w.add(sample({ a: false }, false));
    w.add(sample({ a: false }, false));
    expect(w.report(2).critics[0]?.approvals).toBe(0);
    expect(w.report(3).critics[0]?.approvals).toBe(1);
    expect(w.report(100).samples).toBe(3);
    expect(w.report(0).samples).toBe(0);
  });

  it("keeps only the last N samples", () => {
    const w = createAgreementWindow(3);
    w.add(sample({ a: false, b: true })); // evicted below
    for (let i = 0; i < 3; i++) w.add(sample({ a: true, b: true }, true));
    expect(w.size).toBe(3);
    const r = w.report();
    expect(r.samples).toBe(3);
    expect(r.critics.map((c) => c.approvalRate)).toEqual([1, 1]);
    expect(r.pairs[0]?.agreement).toBe(1);
    // Now the disagreement comes back in and pushes an agreeing sample out.
    w.add(sample({ a: false, b: true }, false));
    w.add(sample({ a: false, b: false }, false));
    const r2 = w.report();
    expect(r2.samples).toBe(3);
    expect(r2.critics.find((c) => c.criticId === "a")?.approvals).toBe(1);
    expect(r2.pairs[0]?.agreement).toBeCloseTo(2 / 3, 12);
    // The window report equals the report of exactly those three samples.
    expect(r2).toEqual(
      agreementReport([sample({ a: true, b: true }, true), sample({ a: false, b: true }, false), sample({ a: false, b: false }, false)]),
    );
    w.clear();
    expect(w.size).toBe(0);
    expect(w.report().fleissKappa).toBeNull();
    expect(() => createAgreementWindow(0)).toThrow(/positive integer/);
  });
});
