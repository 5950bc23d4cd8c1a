import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../errors/index.js";
import { createSession } from "../runtime/index.js";
import { attr, createGraphBuilder, graphIssues, GraphBuilder, parseModel, serialize, validate, type Graph } from "./index.js";

describe("graph builder", () => {
  it("infers shapes through the ops the transformer uses", () => {
    const b = createGraphBuilder();
    const ids = b.input("ids", "int64", ["B", 5]);
    const emb = b.input("emb", "float32", [16, 8]);
    const h = b.gather(emb, ids); // [B,5,8]
    expect(h.shape).toEqual(["B", 5, 8]);
    const q = b.reshape(h, [0, 0, 2, 4]);
    expect(q.shape).toEqual(["B", 5, 2, 4]);
    const qt = b.transpose(q, [0, 2, 1, 3]);
    expect(qt.shape).toEqual(["B", 2, 5, 4]);
    const s = b.matMul(qt, b.transpose(qt, [0, 1, 3, 2]));
    expect(s.shape).toEqual(["B", 2, 5, 5]);
    expect(b.reduceMean(h, [-1]).shape).toEqual(["B", 5, 1]);
    expect(b.reduceSum(h, [0, 1], false).shape).toEqual([8]);
    expect(b.slice(h, [1], [100], [1]).shape).toEqual(["B", 4, 8]);
    expect(b.concat([h, h], 1).shape).toEqual(["B", 10, 8]);
    expect(b.unsqueeze(ids, [1, 2]).shape).toEqual(["B", 1, 1, 5]);
    expect(b.reshape(h, [-1, 8]).shape).toEqual([null, 8]);
    expect(b.reshape(b.input("f", "float32", [3, 4, 2]), [-1, 4]).shape).toEqual([6, 4]);
    expect(() => b.matMul(h, b.input("w", "float32", [7, 3]))).toThrow(/shape mismatch/);
    expect(() => b.add(h, b.input("c", "float32", [3]))).toThrow(/broadcast/);
  });

  it("serializes to ONNX that onnxruntime runs, and parses back", async () => {
    const b = createGraphBuilder("g");
    const x = b.input("x", "float32", [2, 3]);
    const w = b.initializer("w", "float32", [3], Float32Array.of(1, 2, 3));
    const y = b.softmax(b.mul(x, w), -1);
    const m = b.reduceMax(y, [1], false);
    b.output(b.cast(m, "float64"), "m");
    const model = b.buildModel({ metadata: { purpose: "test" } });
    validate(model.graph);
    const bytes = serialize(model);
    const back = parseModel(bytes);
    expect(back.graph.nodes.map((n) => n.op)).toEqual(model.graph.nodes.map((n) => n.op));
    expect(back.graph.initializers[0]!.data).toEqual(Float32Array.of(1, 2, 3));
    expect(back.metadata).toEqual({ purpose: "test" });
    expect(back.graph.nodes.find((n) => n.op === "Cast")!.attrs!.to).toEqual(attr.int(11));
    const s = await createSession(bytes);
    const out = await s.run({ x: { dtype: "float32", dims: [2, 3], data: Float32Array.of(0, 0, 0, 1, 1, 1) } });
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const want = e[2]! / (e[0]! + e[1]! + e[2]!);
    expect(out.m!.dtype).toBe("float64");
    expect(out.m!.data[0]).toBeCloseTo(1 / 3, 6);
    expect(out.m!.data[1]).toBeCloseTo(want, 6);
  });

  it("extend() continues an existing graph with unique names", () => {
    const b = createGraphBuilder();
    const x = b.input("x", "float32", [2]);
    b.output(b.neg(x), "y");
    const g = b.build();
    const b2 = GraphBuilder.extend(g);
    const z = b2.mul(b2.get("y"), b2.get("x"));
    b2.output(z, "z");
    const g2 = b2.build();
    validate(g2);
    expect(g2.outputs.map((o) => o.name)).toEqual(["y", "z"]);
    expect(() => b2.input("x", "float32", [1])).toThrow(/duplicate/);
  });

  it("validate() reports dangling names, bad order, duplicates and bad initializers", () => {
    const g: Graph = {
      name: "bad",
      inputs: [
        { name: "a", dtype: "float32", shape: [2] },
        { name: "m", dtype: "float32", shape: ["B", 3, 4] },
        { name: "n", dtype: "float32", shape: [5, 6] },
      ],
      outputs: [{ name: "out", dtype: "float32", shape: [2] }, { name: "never", dtype: "float32", shape: [2] }],
      initializers: [{ name: "w", dtype: "float32", dims: [3], data: new Float32Array(2) }],
      valueInfo: [],
      nodes: [
        { op: "Add", inputs: ["a", "later"], outputs: ["out"] },
        { op: "Neg", inputs: ["a"], outputs: ["later"] },
        { op: "Neg", inputs: ["ghost"], outputs: ["out"] },
        { op: "MatMul", inputs: ["m", "n"], outputs: ["mm"] },
        { op: "Add", inputs: ["a", "n"], outputs: ["sum"] },
      ],
    };
    const issues = graphIssues(g);
    expect(issues.some((i) => i.includes('"later"') && i.includes("not defined before"))).toBe(true);
    expect(issues.some((i) => i.includes('"ghost"'))).toBe(true);
    expect(issues.some((i) => i.includes('duplicate value "out"'))).toBe(true);
    expect(issues.some((i) => i.includes('initializer "w"'))).toBe(true);
    expect(issues.some((i) => i.includes('"never" is never produced'))).toBe(true);
    expect(issues.some((i) => i.includes("MatMul") && i.includes("4 vs 5"))).toBe(true);
    expect(issues.some((i) => i.includes("Add") && i.includes("broadcast"))).toBe(true);
    try {
      validate(g);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AutodidactError);
      expect((e as AutodidactError).code).toBe(Code.InvalidArgument);
    }
  });
});
