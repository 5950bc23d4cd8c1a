// Run spec validation: the one place a spec is checked, each refusal naming its field.
import { describe, expect, it } from "vitest";
import { Code } from "../../src/platform/errors/index.js";
import { CurriculumPolicy_Kind } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { normalizeRunSpec, sameRunSpec } from "./run-spec.js";
import { parseRunSpec } from "./run-spec-file.js";
import { testSpec } from "./test-spec.js";

const refusal = (patch: Parameters<typeof testSpec>[0]): string => {
  try {
    normalizeRunSpec(testSpec(patch));
  } catch (err) {
    expect((err as { code: number }).code).toBe(Code.InvalidArgument);
    return (err as Error).message;
  }
  throw new Error("the spec was accepted");
};

describe("normalizeRunSpec", () => {
  it("accepts a valid spec and fills its defaults", () => {
    const spec = normalizeRunSpec(testSpec({ curriculum: { kind: CurriculumPolicy_Kind.UNSPECIFIED, start: 2, max: 8, minAgreement: 0.9, probeSize: 8 } }));
    expect(spec.curriculum?.kind).toBe(CurriculumPolicy_Kind.AGREEMENT);
    expect(spec.decisionTimeoutSeconds).toBe(600);
    expect(sameRunSpec(spec, normalizeRunSpec(spec))).toBe(true);
    expect(sameRunSpec(spec, normalizeRunSpec(testSpec({ proposalsPerRound: 25 })))).toBe(false);
  });

  it("names must be KV- and subject-safe", () => {
    expect(refusal({ name: "run.a" })).toMatch(/name must be 1-64 letters/);
    expect(refusal({ name: "r".repeat(65) })).toMatch(/name must be/);
    expect(refusal({ task: "add>" })).toMatch(/task must be a task pack name/);
    expect(refusal({ lineages: [{ name: "a b" }] })).toMatch(/lineages\[0\]\.name/);
    expect(refusal({ lineages: [{ name: "gen", baseModel: "../../etc" }, { name: "crit" }] })).toMatch(/lineages\[0\]\.base_model must be a folder inside/);
    expect(refusal({ lineages: [{ name: "gen", baseModel: "/abs/model" }, { name: "crit" }] })).toMatch(/base_model/);
  });

  it("model critics need at least two lineages, and judge with a lineage other than the generator's", () => {
    expect(refusal({ lineages: [{ name: "gen" }] })).toMatch(/needs at least 2 lineages/);
    expect(refusal({ critics: [{ id: "model-crit", kind: "model", lineage: "gen" }, { id: "rules", kind: "rules" }] })).toMatch(/critics\[0\]\.lineage must name a lineage other than the generator's/);
  });

  it("a verifier critic reads ground truth: refused unless trusted_verifier is set", () => {
    const critics = [{ id: "model-crit", kind: "model", lineage: "crit" }, { id: "rules", kind: "rules" }, { id: "oracle", kind: "verifier" }];
    expect(refusal({ critics })).toMatch(/oracle\) is a verifier, which reads ground truth: set trusted_verifier/);
    expect(() => normalizeRunSpec(testSpec({ critics: critics.map((c) => (c.kind === "verifier" ? { ...c, trustedVerifier: true } : c)) }))).not.toThrow();
    expect(refusal({ critics: [{ id: "x", kind: "oracle" }] })).toMatch(/critics\[0\]\.kind must be one of/);
  });

  it("curriculum ranges must be sane, and AGREEMENT needs model critics", () => {
    expect(refusal({ curriculum: { kind: CurriculumPolicy_Kind.FIXED_STEP, start: 0, max: 4 } })).toMatch(/curriculum\.start must be >= 1/);
    expect(refusal({ curriculum: { kind: CurriculumPolicy_Kind.FIXED_STEP, start: 5, max: 4 } })).toMatch(/curriculum\.max must be >= curriculum\.start/);
    expect(refusal({ curriculum: { kind: CurriculumPolicy_Kind.ACCEPTANCE, start: 1, max: 4, minAcceptedShare: 0 } })).toMatch(/min_accepted_share must be in \(0, 1\]/);
    expect(refusal({ curriculum: { kind: CurriculumPolicy_Kind.AGREEMENT, start: 1, max: 4, minAgreement: 0.8, probeSize: 0 } })).toMatch(/probe_size must be in 1\.\.4096/);
    expect(refusal({ critics: [{ id: "rules", kind: "rules" }], consensus: { kind: 1, critics: ["rules"], timeoutMs: 1000n, onTimeout: 1 } })).toMatch(/KIND_AGREEMENT measures the model critics' agreement/);
  });

  it("the labels regime: a non-empty test split, validation inside what exists (the anchor range)", () => {
    expect(refusal({ labels: undefined })).toMatch(/labels must say which labelled data exists/);
    expect(refusal({ labels: { anchor: { min: 1, max: 3 }, test: { min: 2, max: 1 } } })).toMatch(/labels\.test must not be empty/);
    expect(refusal({ labels: { anchor: { min: 1, max: 3 }, validation: { min: 1, max: 6 }, test: { min: 1, max: 8 } } })).toMatch(/labels\.validation must lie inside labels\.anchor/);
    expect(refusal({ labels: { validation: { min: 1, max: 2 }, test: { min: 1, max: 8 } } })).toMatch(/labels\.validation must lie inside labels\.anchor/);
  });

  it("validation beyond the anchor range only as a named ablation", () => {
    const ablation = { anchor: { min: 1, max: 3 }, validation: { min: 1, max: 8 }, test: { min: 1, max: 8 }, ablationValidationBeyondAnchor: true };
    expect(normalizeRunSpec(testSpec({ labels: ablation })).labels?.ablationValidationBeyondAnchor).toBe(true);
    expect(refusal({ labels: { ...ablation, ablationValidationBeyondAnchor: false } })).toMatch(/set ablation_validation_beyond_anchor for the ablation/);
  });

  it("a stop rule, a consensus policy over the run's critics, a gate that decides on its own", () => {
    expect(refusal({ stop: undefined })).toMatch(/stop must set max_rounds or max_difficulty/);
    expect(refusal({ stop: { maxRounds: 0, maxDifficulty: 0 } })).toMatch(/stop must set/);
    expect(refusal({ consensus: undefined })).toMatch(/consensus must be set/);
    expect(refusal({ consensus: { kind: 2, critics: ["model-crit", "other"], k: 1, timeoutMs: 1000n, onTimeout: 1 } })).toMatch(/consensus\.critics names critics the run does not list in critics: other/);
    expect(refusal({ consensus: { kind: 2, critics: ["rules"], k: 3, timeoutMs: 1000n, onTimeout: 1 } })).toMatch(/consensus/);
    expect(refusal({ gate: { autoPromote: false } })).toMatch(/gate\.auto_promote must be true/);
    expect(refusal({ proposalsPerRound: 0 })).toMatch(/proposals_per_round must be in 1\.\.4096/);
  });

  it("parses a spec from JSON with protobuf JSON names, refusing unknown fields", async () => {
    const spec = await parseRunSpec(
      JSON.stringify({ name: "r1", task: "addition", lineages: [{ name: "main", base_model: "m" }], curriculum: { kind: "KIND_FIXED_STEP", start: 1, max: 4 }, proposalsPerRound: 8, stop: { maxRounds: 1 } }),
      "r1.json",
    );
    expect(spec.curriculum?.kind).toBe(CurriculumPolicy_Kind.FIXED_STEP);
    expect(spec.lineages[0]?.baseModel).toBe("m");
    await expect(parseRunSpec(JSON.stringify({ name: "r1", bogus: 1 }), "r1.json")).rejects.toThrow(/r1\.json is not a run spec/);
    await expect(parseRunSpec("{nope", "r1.json")).rejects.toThrow(/r1\.json is not valid JSON/);
    // YAML
    const y = await parseRunSpec("name: r2\ntask: addition\nproposalsPerRound: 4\n", "r2.yaml");
    expect(y.proposalsPerRound).toBe(4);
  });
});
