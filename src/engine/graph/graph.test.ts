import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
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

  it("builds a Loop with a subgraph body that reads the outer scope, serializes it both ways, and ORT runs it", async () => {
    // Running sum of x, times a factor from the outer scope, until it passes a limit (cond) or
    // after maxTrips iterations; scan output = the sum after each iteration.
    const b = createGraphBuilder("loop");
    const x = b.input("x", "float32", [2]);
    const trips = b.input("trips", "int64", []);
    const limit = b.input("limit", "float32", []);
    const factor = b.mul(x, b.scalar(2));
    const g = b.subgraph("body");
    g.input("i", "int64", []);
    g.input("c", "bool", []);
    const acc = g.input("acc", "float32", [2]);
    const next = g.add(acc, factor);
    const [top] = g.op("ReduceMax", [next], [{ dtype: "float32", shape: [] }], { attrs: { keepdims: attr.int(0) } });
    g.output(g.compare("Less", top!, limit));
    g.output(next);
    g.output(g.identity(next));
    const body = g.build();
    const [final, sums] = b.loop(trips, b.scalar(1, "bool"), [b.constant("float32", [2], Float32Array.of(0, 0))], body);
    expect(sums!.shape).toEqual([null, 2]);
    b.output(final!, "final");
    b.output(sums!, "sums");
    const model = b.buildModel();
    validate(model.graph);
    const back = parseModel(serialize(model));
    const loop = back.graph.nodes.find((n) => n.op === "Loop");
    expect(loop?.attrs?.["body"]?.kind).toBe("graph");
    validate(back.graph);
    const s = await createSession(serialize(back));
    const run = async (n: number, lim: number) => {
      const out = await s.run({
        x: { dtype: "float32", dims: [2], data: Float32Array.of(1, 3) },
        trips: { dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(n)) },
        limit: { dtype: "float32", dims: [], data: Float32Array.of(lim) },
      });
      return { final: Array.from(out.final!.data as Float32Array), sums: Array.from(out.sums!.data as Float32Array), steps: out.sums!.dims[0] };
    };
    expect(await run(3, 100)).toEqual({ final: [6, 18], sums: [2, 6, 4, 12, 6, 18], steps: 3 });
    // cond turns false after the second iteration (max 12 >= 10).
    expect(await run(5, 10)).toEqual({ final: [4, 12], sums: [2, 6, 4, 12], steps: 2 });
    await s.release();
  });

  it("validate() refuses malformed subgraphs and names the Loop and the problem", () => {
    const outerInputs = [
      { name: "m", dtype: "int64" as const, shape: [] },
      { name: "c", dtype: "bool" as const, shape: [] },
      { name: "v", dtype: "float32" as const, shape: [2] },
    ];
    const body = (nodes: Graph["nodes"], inputs = 3): Graph => ({
      name: "body",
      inputs: [
        { name: "i", dtype: "int64", shape: [] },
        { name: "cin", dtype: "bool", shape: [] },
        { name: "vin", dtype: "float32", shape: [2] },
      ].slice(0, inputs) as Graph["inputs"],
      outputs: [
        { name: "cout", dtype: "bool", shape: [] },
        { name: "vout", dtype: "float32", shape: [2] },
      ],
      nodes,
      initializers: [],
      valueInfo: [],
    });
    const outer = (g: Graph, extra: Graph["nodes"] = []): Graph => ({
      name: "outer",
      inputs: outerInputs,
      outputs: [{ name: "final", dtype: "float32", shape: [2] }],
      nodes: [{ op: "Loop", inputs: ["m", "c", "v"], outputs: ["final"], attrs: { body: attr.graph(g) } }, ...extra],
      initializers: [],
      valueInfo: [],
    });
    const good = body([
      { op: "Identity", inputs: ["cin"], outputs: ["cout"] },
      { op: "Add", inputs: ["vin", "v"], outputs: ["vout"] },
    ]);
    expect(graphIssues(outer(good))).toEqual([]);
    // A dangling name inside the body.
    const dangling = graphIssues(outer(body([{ op: "Identity", inputs: ["cin"], outputs: ["cout"] }, { op: "Add", inputs: ["vin", "nowhere"], outputs: ["vout"] }])));
    expect(dangling.some((i) => i.includes("Loop") && i.includes('subgraph "body"') && i.includes('"nowhere"'))).toBe(true);
    // The body reads an outer value defined only after the Loop node.
    const late = outer(body([{ op: "Identity", inputs: ["cin"], outputs: ["cout"] }, { op: "Add", inputs: ["vin", "after"], outputs: ["vout"] }]), [
      { op: "Neg", inputs: ["v"], outputs: ["after"] },
    ]);
    expect(graphIssues(late).some((i) => i.includes('subgraph "body"') && i.includes('"after"') && i.includes("not defined before"))).toBe(true);
    // Wrong signature: the body takes 2 inputs for iteration + cond + 1 carried.
    const short = graphIssues(outer(body([{ op: "Identity", inputs: ["cin"], outputs: ["cout"] }, { op: "Identity", inputs: ["v"], outputs: ["vout"] }], 2)));
    expect(short.some((i) => i.includes("body takes 2 inputs") && i.includes("= 3"))).toBe(true);
    // A body value shadowing an outer one.
    const shadow = graphIssues(outer(body([{ op: "Identity", inputs: ["cin"], outputs: ["cout"] }, { op: "Identity", inputs: ["vin"], outputs: ["v"] }, { op: "Identity", inputs: ["v"], outputs: ["vout"] }])));
    expect(shadow.some((i) => i.includes('duplicate value "v"'))).toBe(true);
    expect(() => validate(late)).toThrow(/graph "outer" is invalid: .*subgraph "body"/);
  });
});
