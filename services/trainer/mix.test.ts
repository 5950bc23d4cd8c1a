import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { getTaskPack } from "../../src/domain/tasks/index.js";
import { anchorsPerBatch, buildMix } from "./mix.js";

const pool = Array.from({ length: 23 }, (_, i) => ({ sampleId: `s-${String(i).padStart(2, "0")}`, difficulty: 2 + (i % 2) }));
const anchors = (seed: string) => getTaskPack("addition").createAnchorSource({ seed, minDifficulty: 2, maxDifficulty: 3 });

describe("buildMix", () => {
  it("keeps at least the anchor ratio of real data in every batch, including the last", () => {
    for (const [batchSize, ratio] of [[8, 0.25], [10, 0.25], [7, 0.3], [16, 0.5]] as const) {
      const mix = buildMix(pool, anchors("a"), { batchSize, anchorRatio: ratio, maxReuse: 1, steps: 0, seed: "x" });
      expect(mix.batches.length).toBeGreaterThan(0);
      for (const b of mix.batches) {
        expect(b.synthetic.length + b.anchors.length).toBe(batchSize);
        expect(b.anchors.length / batchSize).toBeGreaterThanOrEqual(ratio);
      }
      expect(mix.syntheticCount + mix.realCount).toBe(batchSize * mix.batches.length);
    }
    expect(anchorsPerBatch(8, 0.25)).toBe(2);
    expect(anchorsPerBatch(10, 0.25)).toBe(3);
    expect(anchorsPerBatch(8, 0.01)).toBe(1);
    expect(anchorsPerBatch(8, 0)).toBe(0);
  });

  it("one pass uses every sample exactly once; max reuse caps appearances when more steps are asked", () => {
    const once = buildMix(pool, anchors("a"), { batchSize: 8, anchorRatio: 0.25, maxReuse: 1, steps: 0, seed: "x" });
    const used = once.batches.flatMap((b) => b.synthetic.map((s) => s.sampleId));
    expect(used.length).toBe(pool.length);
    expect([...once.sampleIds]).toEqual(pool.map((s) => s.sampleId).sort());
    const capped = buildMix(pool, anchors("a"), { batchSize: 8, anchorRatio: 0.25, maxReuse: 2, steps: 1000, seed: "x" });
    const counts = new Map<string, number>();
    for (const b of capped.batches) for (const s of b.synthetic) counts.set(s.sampleId, (counts.get(s.sampleId) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBe(2);
    expect(capped.batches.length).toBe(Math.ceil((2 * pool.length) / 6));
  });

  it("an unbounded max reuse runs exactly the steps asked for, each sample at most ceil(steps x slots / pool) times", () => {
    const mix = buildMix(pool, anchors("a"), { batchSize: 8, anchorRatio: 0.25, maxReuse: 1_000_000, steps: 40, seed: "x" });
    expect(mix.batches).toHaveLength(40);
    const uses = new Map<string, number>();
    for (const b of mix.batches) for (const s of b.synthetic) uses.set(s.sampleId, (uses.get(s.sampleId) ?? 0) + 1);
    expect(uses.size).toBe(pool.length);
    expect(Math.max(...uses.values())).toBeLessThanOrEqual(Math.ceil((40 * 6) / pool.length));
    expect(mix.syntheticCount).toBe(40 * 6);
  });

  it("hardestShare gives the hardest difficulty its share of every batch's synthetic slots, the other samples the rest", () => {
    // 40 samples of difficulties 2..5: the hardest (5) is a tenth of the pool.
    const graded = Array.from({ length: 40 }, (_, i) => ({ sampleId: `g-${String(i).padStart(2, "0")}`, difficulty: i < 4 ? 5 : 2 + (i % 3) }));
    const o = { batchSize: 16, anchorRatio: 0.25, maxReuse: 1_000_000, steps: 50, seed: "h" };
    const uniform = buildMix(graded, anchors("a"), o);
    const focused = buildMix(graded, anchors("a"), { ...o, hardestShare: 0.5 });
    expect(focused.batches).toHaveLength(50);
    for (const b of focused.batches) {
      expect(b.synthetic.filter((s) => s.difficulty === 5).length).toBe(6); // round(0.5 x 12)
      expect(b.anchors.length).toBe(4);
      expect(new Set(b.synthetic.map((s) => s.difficulty)).size).toBeGreaterThan(1);
    }
    const share = (m: typeof uniform): number => (m.syntheticByDifficulty[5] ?? 0) / m.syntheticCount;
    expect(share(uniform)).toBeLessThan(0.2);
    expect(share(focused)).toBe(0.5);
    // Share 0 is the uniform rule itself; a pool of one difficulty has nothing to focus on.
    expect(buildMix(graded, anchors("a"), { ...o, hardestShare: 0 }).batches.map((b) => b.synthetic.map((s) => s.sampleId))).toEqual(uniform.batches.map((b) => b.synthetic.map((s) => s.sampleId)));
    const flat = graded.filter((s) => s.difficulty === 2);
    expect(buildMix(flat, anchors("a"), { ...o, hardestShare: 0.5 }).batches.map((b) => b.synthetic.map((s) => s.sampleId))).toEqual(buildMix(flat, anchors("a"), o).batches.map((b) => b.synthetic.map((s) => s.sampleId)));
    // Max reuse still caps every sample's appearances; once the hardest run out, the others fill their slots.
    const capped = buildMix(graded, anchors("a"), { ...o, maxReuse: 2, steps: 10, hardestShare: 0.5 });
    const counts = new Map<string, number>();
    for (const b of capped.batches) for (const s of b.synthetic) counts.set(s.sampleId, (counts.get(s.sampleId) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBe(2);
    expect(capped.syntheticByDifficulty[5]).toBe(8);
    expect(capped.batches).toHaveLength(7); // 80 appearances allowed / 12 slots
    expect(capped.batches.slice(0, 6).every((b) => b.synthetic.length === 12)).toBe(true);
    expect(() => buildMix(graded, anchors("a"), { ...o, hardestShare: 1 })).toThrow(/hardest share/);
  });

  it("is reproducible from its seed and changes with it", () => {
    const ids = (seed: string) =>
      buildMix(pool, anchors(seed), { batchSize: 8, anchorRatio: 0.25, maxReuse: 1, steps: 0, seed }).batches.map((b) => [
        b.synthetic.map((s) => s.sampleId),
        b.anchors.map((a) => a.id),
      ]);
    expect(ids("one")).toEqual(ids("one"));
    expect(ids("one")).not.toEqual(ids("two"));
  });

  it("refuses an empty pool and a ratio that leaves no synthetic slot", () => {
    const err = (f: () => unknown): AutodidactError => {
      try {
        f();
      } catch (e) {
        return e as AutodidactError;
      }
      throw new Error("no error");
    };
    expect(err(() => buildMix([], anchors("a"), { batchSize: 8, anchorRatio: 0.25, maxReuse: 1, steps: 0, seed: "x" })).code).toBe(Code.FailedPrecondition);
    expect(err(() => buildMix(pool, anchors("a"), { batchSize: 2, anchorRatio: 0.9, maxReuse: 1, steps: 0, seed: "x" })).code).toBe(Code.InvalidArgument);
    expect(err(() => buildMix(pool, anchors("a"), { batchSize: 8, anchorRatio: 1, maxReuse: 1, steps: 0, seed: "x" })).code).toBe(Code.InvalidArgument);
  });
});
