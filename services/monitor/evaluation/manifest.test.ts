import { describe, expect, it } from "vitest";
import { summarizeManifest } from "./manifest.js";

const rec = (manifest: Record<string, unknown>) => ({
  lineage: "m", version: 2, parentVersion: 1, round: 4, status: "candidate" as const, statusReason: "", files: [], manifest, metrics: {}, createdAt: "",
});

describe("summarizeManifest", () => {
  it("reads camelCase and snake_case trainer manifests, and defaults what is missing", () => {
    const a = summarizeManifest(rec({ task: "addition", sampleIdsDigest: "abc", sampleCount: 5, mix: { syntheticCount: 3, realCount: 2 }, criticVotes: { approve: 4, agreement: "0.5" }, samples: [{ prompt: "1+1=", completion: "2" }, { bad: 1 }] }));
    expect(a).toMatchObject({ task: "addition", sampleIdsDigest: "abc", sampleCount: 5, syntheticCount: 3, realCount: 2, criticVotes: { approve: 4, agreement: 0.5 }, rounds: [4] });
    expect(a.acceptedSamples).toEqual([{ prompt: "1+1=", completion: "2" }]);
    const b = summarizeManifest(rec({ sample_ids_digest: "def", sample_count: "7", mix: { synthetic_count: 1, real_count: 9 }, rounds_included: [2, 3] }));
    expect(b).toMatchObject({ task: undefined, sampleIdsDigest: "def", sampleCount: 7, syntheticCount: 1, realCount: 9, rounds: [2, 3] });
    expect(summarizeManifest(rec({})).sampleCount).toBe(0);
  });
});
