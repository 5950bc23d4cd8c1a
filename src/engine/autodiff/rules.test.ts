import { describe, expect, it } from "vitest";
import { createGraphBuilder, type GraphBuilder } from "../graph/builder.js";
import { attr, MS_DOMAIN, type DType, type ValueInfo } from "../graph/ir.js";
import { createRng, type Rng } from "../random.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { checkGradients } from "./gradcheck.js";
import { serialize } from "../graph/serialize.js";
import { createSession } from "../runtime/session.js";
import { buildGradientGraph, buildGradientModel } from "./gradient.js";

/** How an input is filled. */
type Fill = "normal" | "positive" | "away0" | { readonly ints: number } | "bool";

interface InputSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly fill?: Fill;
  /** Differentiate w.r.t. this input (default: float inputs are differentiated). */
  readonly grad?: boolean;
}

interface Case {
  readonly inputs: readonly InputSpec[];
  readonly build: (b: GraphBuilder, v: Record<string, ValueInfo>) => ValueInfo;
  readonly dtype?: "float32" | "float64";
  readonly contrib?: boolean;
  readonly tol?: number;
  readonly eps?: number;
}

function fillTensor(rng: Rng, spec: InputSpec, dtype: DType): HostTensor {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  const fill = spec.fill ?? "normal";
  if (typeof fill === "object") {
    return { dtype: "int64", dims: spec.dims, data: BigInt64Array.from({ length: n }, () => BigInt(rng.int(fill.ints))) };
  }
  if (fill === "bool") return { dtype: "bool", dims: spec.dims, data: Uint8Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0)) };
  const values = Array.from({ length: n }, () => {
    if (fill === "positive") return 0.5 + 1.5 * rng.next();
    if (fill === "away0") return (rng.next() < 0.5 ? -1 : 1) * (0.3 + rng.next());
    return rng.normal();
  });
  return dtype === "float64"
    ? { dtype: "float64", dims: spec.dims, data: Float64Array.from(values) }
    : { dtype: "float32", dims: spec.dims, data: Float32Array.from(values) };
}

function inputDtype(spec: InputSpec, dtype: DType): DType {
  const fill = spec.fill ?? "normal";
  if (typeof fill === "object") return "int64";
  if (fill === "bool") return "bool";
  return dtype;
}

let caseCounter = 0;

/** Builds op-under-test → L = Σ(y ⊙ R) and compares autodiff with central differences. */
async function check(c: Case): Promise<number> {
  const dtype = c.dtype ?? "float64";
  const rng = createRng(`case-${caseCounter++}`);
  const b = createGraphBuilder("rule");
  const v: Record<string, ValueInfo> = {};
  const feeds: TensorMap = {};
  const wrt: string[] = [];
  for (const spec of c.inputs) {
    const dt = inputDtype(spec, dtype);
    v[spec.name] = b.input(spec.name, dt, spec.dims);
    feeds[spec.name] = fillTensor(rng, spec, dt);
    if ((dt === "float32" || dt === "float64") && spec.grad !== false) wrt.push(spec.name);
  }
  const y = c.build(b, v);
  const dims = y.shape.map((d) => {
    if (typeof d !== "number") throw new Error(`test output must be static, got ${String(d)}`);
    return d;
  });
  const n = dims.reduce((p, q) => p * q, 1);
  const rValues = Array.from({ length: n }, () => rng.normal());
  const r = b.constant(dtype, dims, dtype === "float64" ? Float64Array.from(rValues) : Float32Array.from(rValues));
  const loss = b.reduceSum(b.mul(y, r), Array.from({ length: dims.length }, (_, i) => i), false, "loss");
  b.output(loss);
  const model = b.buildModel();
  const result = await checkGradients(model, {
    wrt,
    loss: "loss",
    feeds,
    ...(c.contrib !== undefined ? { contrib: c.contrib } : {}),
    ...(c.eps !== undefined ? { eps: c.eps } : {}),
  });
  const tol = c.tol ?? (dtype === "float64" ? 1e-6 : 2e-2);
  expect(result.checked).toBeGreaterThan(0);
  if (result.maxRelError > tol) {
    throw new Error(`gradient mismatch ${result.maxRelError.toExponential(2)} at ${JSON.stringify(result.worst)}`);
  }
  return result.maxRelError;
}

/** Random shape of rank `rank` with dims in [2, 4]. */
function randomShape(rng: Rng, rank: number): number[] {
  return Array.from({ length: rank }, () => 2 + rng.int(3));
}

/** A shape `base` is broadcast from: some dims set to 1 and maybe leading dims dropped. */
function broadcastFrom(rng: Rng, base: readonly number[]): number[] {
  const drop = rng.int(base.length);
  return base.slice(drop).map((d) => (rng.next() < 0.4 ? 1 : d));
}

const shapeRng = createRng("autodiff-rule-shapes");

describe("gradient rules vs central finite differences (float64)", () => {
  for (const op of ["Add", "Sub", "Mul", "Div"] as const) {
    it(`${op} with broadcasting over random shapes`, async () => {
      for (let t = 0; t < 4; t++) {
        const base = randomShape(shapeRng, 1 + shapeRng.int(3));
        const other = broadcastFrom(shapeRng, base);
        const [sa, sb] = t % 2 === 0 ? [base, other] : [other, base];
        await check({
          inputs: [
            { name: "a", dims: sa },
            { name: "b", dims: sb, fill: op === "Div" ? "positive" : "normal" },
          ],
          build: (bb, v) => bb.binary(op, v.a!, v.b!),
        });
      }
      // Both operands broadcast ([1,4] with [3,1]) and a scalar operand.
      await check({ inputs: [{ name: "a", dims: [1, 4] }, { name: "b", dims: [3, 1], fill: "positive" }], build: (bb, v) => bb.binary(op, v.a!, v.b!) });
      await check({ inputs: [{ name: "a", dims: [2, 3] }, { name: "b", dims: [], fill: "positive" }], build: (bb, v) => bb.binary(op, v.a!, v.b!) });
    });
  }

  it("a bias broadcast over 256 rows or more: its gradient is one ones-row product, not a ReduceSum", async () => {
    for (const [xDims, bDims] of [
      [[4, 70, 3], [3]],
      [[300, 2, 3], [2, 3]],
    ] as const) {
      await check({ inputs: [{ name: "x", dims: xDims }, { name: "b", dims: bDims }], build: (bb, v) => bb.add(v.x!, v.b!) });
      const b = createGraphBuilder("bias");
      const x = b.input("x", "float32", xDims);
      const bias = b.input("b", "float32", bDims);
      b.output(b.reduceSum(b.mul(b.add(x, bias), x), [0, 1, 2], false, "loss"));
      const { graph } = buildGradientGraph(b.buildModel().graph, { wrt: ["b"], loss: "loss" });
      const rows = xDims.slice(0, xDims.length - bDims.length).reduce((p, q) => p * q, 1);
      const ones = graph.initializers.find((t) => t.dims.length === 2 && t.dims[0] === 1 && t.dims[1] === rows);
      expect(ones, "a [1, rows] ones initializer").toBeDefined();
      expect(graph.nodes.some((n) => n.op === "MatMul" && n.inputs[0] === ones!.name)).toBe(true);
      expect(graph.nodes.some((n) => n.op === "ReduceSum" && n.outputs[0]!.startsWith("grad"))).toBe(false);
    }
  });

  it("Max and Min (broadcasting; operands apart so the choice is stable under perturbation)", async () => {
    for (const op of ["Max", "Min"]) {
      await check({
        inputs: [{ name: "a", dims: [3, 4], fill: "away0" }, { name: "b", dims: [4], fill: "away0" }],
        build: (bb, v) => bb.binary(op, v.a!, bb.mul(v.b!, bb.scalar(1.37, "float64"))),
      });
    }
  });

  it("Pow with constant exponents and a tensor exponent", async () => {
    for (const p of [2, 3, 0.5, -1.5]) {
      await check({ inputs: [{ name: "x", dims: [2, 3], fill: "positive" }], build: (bb, v) => bb.pow(v.x!, bb.scalar(p, "float64")) });
    }
    await check({ inputs: [{ name: "x", dims: [2, 3], fill: "positive" }, { name: "p", dims: [3] }], build: (bb, v) => bb.pow(v.x!, v.p!) });
  });

  it("Sum (variadic, broadcasting) and fan-out accumulation", async () => {
    await check({
      inputs: [{ name: "a", dims: [2, 3] }, { name: "b", dims: [3] }, { name: "c", dims: [2, 1] }],
      build: (bb, v) => bb.op("Sum", [v.a!, v.b!, v.c!], [{ dtype: "float64", shape: [2, 3] }])[0]!,
    });
    // x used three times: x·x + exp(x)
    await check({ inputs: [{ name: "x", dims: [3, 2] }], build: (bb, v) => bb.add(bb.mul(v.x!, v.x!), bb.exp(v.x!)) });
  });

  it("unary ops: Neg Exp Log Sqrt Reciprocal Tanh Sigmoid Relu Abs Identity", async () => {
    const cases: [string, Fill][] = [
      ["Neg", "normal"],
      ["Exp", "normal"],
      ["Log", "positive"],
      ["Sqrt", "positive"],
      ["Reciprocal", "positive"],
      ["Tanh", "normal"],
      ["Sigmoid", "normal"],
      ["Relu", "away0"],
      ["Abs", "away0"],
      ["Identity", "normal"],
    ];
    for (const [op, fill] of cases) {
      await check({ inputs: [{ name: "x", dims: [3, 4], fill }], build: (bb, v) => bb.unary(op, v.x!) });
    }
  });

  it("MatMul with batch broadcasting", async () => {
    const pairs: [number[], number[]][] = [
      [[3, 4], [4, 5]],
      [[2, 3, 4], [4, 5]],
      [[3, 4], [2, 4, 5]],
      [[2, 1, 3, 4], [3, 4, 2]],
      [[2, 3, 3, 4], [2, 3, 4, 2]],
    ];
    for (const [sa, sb] of pairs) {
      await check({ inputs: [{ name: "a", dims: sa }, { name: "b", dims: sb }], build: (bb, v) => bb.matMul(v.a!, v.b!) });
    }
  });

  it("Gemm with transposes, alpha, beta and a broadcast bias", async () => {
    await check({
      inputs: [{ name: "a", dims: [4, 3] }, { name: "b", dims: [5, 4] }, { name: "c", dims: [5] }],
      build: (bb, v) =>
        bb.op("Gemm", [v.a!, v.b!, v.c!], [{ dtype: "float64", shape: [3, 5] }], {
          attrs: { transA: attr.int(1), transB: attr.int(1), alpha: attr.float(0.7), beta: attr.float(1.3) },
        })[0]!,
    });
  });

  it("Gather (embedding, repeated indices; axis 1) and GatherElements", async () => {
    await check({
      inputs: [{ name: "e", dims: [5, 3] }, { name: "ids", dims: [2, 4], fill: { ints: 5 } }],
      build: (bb, v) => bb.gather(v.e!, v.ids!, 0),
    });
    await check({
      inputs: [{ name: "e", dims: [2, 5, 3] }, { name: "ids", dims: [4], fill: { ints: 5 } }],
      build: (bb, v) => bb.gather(v.e!, v.ids!, 1),
    });
    await check({
      inputs: [{ name: "e", dims: [3, 5] }, { name: "ids", dims: [3, 2], fill: { ints: 5 } }],
      build: (bb, v) => bb.op("GatherElements", [v.e!, v.ids!], [{ dtype: "float64", shape: [3, 2] }], { attrs: { axis: attr.int(1) } })[0]!,
    });
  });

  it("Gather's gradient sums thousands of repeated indices exactly, the same on every run, with 2 threads", async () => {
    // ORT's ScatterND with reduction "add" loses additions to repeated indices when its updates are
    // split across threads (off by up to 20 here); the rule must not depend on it.
    const R = 3072;
    const D = 128;
    for (const [V, dtype] of [
      [16, "float32"],
      [300, "float32"],
      [16, "float64"],
    ] as const) {
      const rng = createRng(`gather-${V}-${dtype}`);
      const ids = BigInt64Array.from({ length: R }, () => BigInt(rng.int(V)));
      const weights = Array.from({ length: R * D }, () => rng.normal());
      const b = createGraphBuilder("gather");
      const e = b.input("e", dtype, [V, D]);
      const idsIn = b.input("ids", "int64", [R]);
      const r = b.constant(dtype, [R, D], dtype === "float64" ? Float64Array.from(weights) : Float32Array.from(weights));
      b.output(b.reduceSum(b.mul(b.gather(e, idsIn, 0), r), [0, 1], false, "loss"));
      const { model, gradients } = buildGradientModel(b.buildModel(), { wrt: ["e"], loss: "loss" });
      expect(model.graph.nodes.some((n) => n.op === "ScatterND")).toBe(false);
      const want = new Float64Array(V * D);
      for (let i = 0; i < R; i++) for (let d = 0; d < D; d++) want[Number(ids[i]!) * D + d]! += weights[i * D + d]!;
      const s = await createSession(serialize(model), { intraOpThreads: 2 });
      const table = dtype === "float64" ? new Float64Array(V * D) : new Float32Array(V * D);
      for (let run = 0; run < 5; run++) {
        const out = await s.run({ e: { dtype, dims: [V, D], data: table }, ids: { dtype: "int64", dims: [R], data: ids } } as TensorMap);
        const got = out[gradients.get("e")!]!.data as Float32Array | Float64Array;
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        expect(worst, `vocabulary ${V}, ${dtype}, run ${run}`).toBeLessThan(dtype === "float64" ? 1e-9 : 1e-3);
      }
      await s.release();
    }
  });

  it("Softmax and LogSoftmax over the last and a middle axis", async () => {
    for (const axis of [-1, 1]) {
      await check({ inputs: [{ name: "x", dims: [2, 3, 4] }], build: (bb, v) => bb.softmax(v.x!, axis) });
      await check({ inputs: [{ name: "x", dims: [2, 3, 4] }], build: (bb, v) => bb.logSoftmax(v.x!, axis) });
    }
  });

  it("ReduceMean / ReduceSum / ReduceSumSquare, keepdims on and off, all axes", async () => {
    for (const keep of [true, false]) {
      await check({ inputs: [{ name: "x", dims: [2, 3, 4] }], build: (bb, v) => bb.reduceMean(v.x!, [-1], keep) });
      await check({ inputs: [{ name: "x", dims: [2, 3, 4] }], build: (bb, v) => bb.reduceMean(v.x!, [0, 2], keep) });
      await check({ inputs: [{ name: "x", dims: [2, 3, 4] }], build: (bb, v) => bb.reduceSum(v.x!, [1], keep) });
      await check({
        inputs: [{ name: "x", dims: [2, 3] }],
        build: (bb, v) =>
          bb.op("ReduceSumSquare", [v.x!], [{ dtype: "float64", shape: keep ? [2, 1] : [2] }], {
            attrs: { axes: attr.ints([1]), keepdims: attr.int(keep ? 1 : 0) },
          })[0]!,
      });
    }
    await check({
      inputs: [{ name: "x", dims: [2, 3] }],
      build: (bb, v) => bb.op("ReduceSum", [v.x!], [{ dtype: "float64", shape: [] }], { attrs: { keepdims: attr.int(0) } })[0]!,
    });
  });

  it("shape ops: Reshape Transpose Unsqueeze Squeeze Expand Flatten", async () => {
    await check({ inputs: [{ name: "x", dims: [2, 6] }], build: (bb, v) => bb.reshape(v.x!, [3, 2, 2]) });
    await check({ inputs: [{ name: "x", dims: [2, 3, 4] }], build: (bb, v) => bb.transpose(v.x!, [2, 0, 1]) });
    await check({ inputs: [{ name: "x", dims: [2, 3] }], build: (bb, v) => bb.unsqueeze(v.x!, [1]) });
    await check({ inputs: [{ name: "x", dims: [2, 1, 3] }], build: (bb, v) => bb.squeeze(v.x!, [1]) });
    await check({ inputs: [{ name: "x", dims: [3, 1] }], build: (bb, v) => bb.expand(v.x!, [2, 3, 4]) });
    await check({
      inputs: [{ name: "x", dims: [2, 3, 2] }],
      build: (bb, v) => bb.op("Flatten", [v.x!], [{ dtype: "float64", shape: [2, 6] }], { attrs: { axis: attr.int(1) } })[0]!,
    });
  });

  it("Concat, Split, Slice (negative and clamped bounds)", async () => {
    await check({
      inputs: [{ name: "a", dims: [2, 3] }, { name: "b", dims: [2, 1] }, { name: "c", dims: [2, 2] }],
      build: (bb, v) => bb.concat([v.a!, v.b!, v.c!], 1),
    });
    await check({
      inputs: [{ name: "x", dims: [2, 5] }],
      build: (bb, v) => {
        const [p, q] = bb.op("Split", [v.x!, bb.ints([2, 3])], [{ dtype: "float64", shape: [2, 2] }, { dtype: "float64", shape: [2, 3] }], {
          attrs: { axis: attr.int(1) },
        });
        // Only q reaches the loss through a product; p through a sum: both gradients meet in Split.
        return bb.concat([bb.mul(p!, p!), q!], 1);
      },
    });
    await check({
      inputs: [{ name: "x", dims: [2, 5] }],
      build: (bb, v) => {
        const [, q] = bb.op("Split", [v.x!, bb.ints([2, 3])], [{ dtype: "float64", shape: [2, 2] }, { dtype: "float64", shape: [2, 3] }], {
          attrs: { axis: attr.int(1) },
        });
        return q!; // the unused piece gets zeros
      },
    });
    await check({ inputs: [{ name: "x", dims: [4, 6] }], build: (bb, v) => bb.slice(v.x!, [1, -4], [3, 100], [0, 1]) });
    await check({ inputs: [{ name: "x", dims: [3, 5] }], build: (bb, v) => bb.slice(v.x!, [0], [-1], [-1]) });
    // Bounds known only at run time (from another input's shape), negative start.
    await check({
      inputs: [{ name: "x", dims: [6, 3] }, { name: "n", dims: [4], fill: { ints: 2 } }],
      build: (bb, v) => {
        const end = bb.shapeOf(v.n!);
        return bb.sliceDynamic(v.x!, bb.ints([-5]), end, bb.ints([0]), [3, 3]);
      },
    });
  });

  it("Where with a broadcast condition and broadcast branches", async () => {
    await check({
      inputs: [{ name: "c", dims: [3, 1], fill: "bool" }, { name: "a", dims: [3, 4] }, { name: "b", dims: [4] }],
      build: (bb, v) => bb.where(v.c!, v.a!, v.b!),
    });
  });

  it("Trilu keeps the gradient of the kept triangle only", async () => {
    await check({
      inputs: [{ name: "x", dims: [2, 4, 4] }],
      build: (bb, v) => bb.op("Trilu", [v.x!], [{ dtype: "float64", shape: [2, 4, 4] }], { attrs: { upper: attr.int(0) } })[0]!,
    });
  });

  it("Cast through float32 and back", async () => {
    await check({
      inputs: [{ name: "x", dims: [2, 3] }],
      build: (bb, v) => bb.cast(bb.mul(bb.cast(v.x!, "float32"), bb.scalar(3, "float32")), "float64"),
      eps: 1e-2,
      tol: 1e-4,
    });
  });

  it("LayerNormalization (recomputed statistics) and RMSNorm", async () => {
    await check({
      inputs: [{ name: "x", dims: [2, 3, 5] }, { name: "s", dims: [5] }, { name: "bias", dims: [5] }],
      build: (bb, v) => bb.layerNorm(v.x!, v.s!, v.bias!, 1e-5),
    });
    await check({
      inputs: [{ name: "x", dims: [3, 6] }, { name: "s", dims: [6] }],
      build: (bb, v) =>
        bb.op("SimplifiedLayerNormalization", [v.x!, v.s!], [{ dtype: "float64", shape: [3, 6] }], {
          attrs: { axis: attr.int(-1), epsilon: attr.float(1e-5) },
        })[0]!,
    });
  });

  it("a composite: attention-like block Softmax(QKᵀ/√d + mask)·V", async () => {
    await check({
      inputs: [{ name: "q", dims: [2, 3, 4] }, { name: "k", dims: [2, 3, 4] }, { name: "v", dims: [2, 3, 4] }],
      build: (bb, v) => {
        const scores = bb.mul(bb.matMul(v.q!, bb.transpose(v.k!, [0, 2, 1])), bb.scalar(0.5, "float64"));
        const mask = bb.constant("bool", [3, 3], Uint8Array.from([1, 0, 0, 1, 1, 0, 1, 1, 1]));
        const masked = bb.where(mask, scores, bb.scalar(-1e9, "float64"));
        return bb.matMul(bb.softmax(masked, -1), v.v!);
      },
    });
  });
});

describe("gradient rules in float32 (ops without float64 kernels, contrib backward)", () => {
  it("Erf and com.microsoft Gelu", async () => {
    await check({ dtype: "float32", inputs: [{ name: "x", dims: [3, 4] }], build: (bb, v) => bb.erf(v.x!) });
    await check({ dtype: "float32", inputs: [{ name: "x", dims: [3, 4] }], build: (bb, v) => bb.msGelu(v.x!) });
  });

  it("MatMul backward through FusedMatMul, and FusedMatMul forward", async () => {
    await check({
      dtype: "float32",
      contrib: true,
      inputs: [{ name: "a", dims: [2, 3, 4] }, { name: "b", dims: [4, 5] }],
      build: (bb, v) => bb.matMul(v.a!, v.b!),
    });
    await check({
      dtype: "float32",
      contrib: true,
      inputs: [{ name: "a", dims: [2, 1, 3, 4] }, { name: "b", dims: [3, 4, 2] }],
      build: (bb, v) => bb.matMul(v.a!, v.b!),
    });
    for (const [ta, tb] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
      const sa = ta ? [2, 4, 3] : [2, 3, 4];
      const sb = tb ? [5, 4] : [4, 5];
      await check({
        dtype: "float32",
        contrib: true,
        inputs: [{ name: "a", dims: sa }, { name: "b", dims: sb }],
        build: (bb, v) =>
          bb.op("FusedMatMul", [v.a!, v.b!], [{ dtype: "float32", shape: [2, 3, 5] }], {
            domain: MS_DOMAIN,
            attrs: { transA: attr.int(ta), transB: attr.int(tb), alpha: attr.float(0.5) },
          })[0]!,
      });
    }
  });

  it("LayerNormalization using the forward pass's stashed Mean/InvStdDev", async () => {
    await check({
      dtype: "float32",
      inputs: [{ name: "x", dims: [2, 3, 8] }, { name: "s", dims: [8] }, { name: "bias", dims: [8] }],
      build: (bb, v) => bb.layerNorm(v.x!, v.s!, v.bias!, 1e-5),
    });
  });
});

describe("Dropout (random masks: checked by identity, not finite differences)", () => {
  it("gradient is R·mask/(1−p), i.e. grad_x·x = y·R elementwise within one run", async () => {
    const b = createGraphBuilder("dropout");
    const x = b.input("x", "float32", [4, 8]);
    const r = b.input("r", "float32", [4, 8]);
    const ratio = b.scalar(0.25, "float32");
    const training = b.constant("bool", [], Uint8Array.of(1));
    const y = b.op("Dropout", [x, ratio, training], [{ dtype: "float32", shape: [4, 8] }], { attrs: { seed: attr.int(5) }, names: ["y"] })[0]!;
    b.output(b.reduceSum(b.mul(y, r), [0, 1], false, "loss"));
    const { model, gradients } = buildGradientModel(b.buildModel(), { wrt: ["x"], loss: "loss", keep: ["y"] });
    const s = await createSession(serialize(model));
    const rng = createRng("dropout");
    const xs = Float32Array.from({ length: 32 }, () => 0.5 + rng.next());
    const rs = Float32Array.from({ length: 32 }, () => rng.normal());
    const out = await s.run({ x: { dtype: "float32", dims: [4, 8], data: xs }, r: { dtype: "float32", dims: [4, 8], data: rs } });
    await s.release();
    const ys = out["y"]!.data as Float32Array;
    const gx = out[gradients.get("x")!]!.data as Float32Array;
    let dropped = 0;
    for (let i = 0; i < 32; i++) {
      if (ys[i] === 0) dropped++;
      expect(gx[i]! * xs[i]!).toBeCloseTo(ys[i]! * rs[i]!, 5);
      expect(gx[i] === 0 || Math.abs(gx[i]! - rs[i]! / 0.75) < 1e-5).toBe(true);
    }
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(32);
  });
});

describe("graph construction", () => {
  it("prunes branches that do not reach the loss and gives unused parameters zero gradients", async () => {
    const b = createGraphBuilder("prune");
    const x = b.input("x", "float64", [2, 3]);
    const w = b.input("w", "float64", [2, 3]);
    const unused = b.input("unused", "float64", [4]);
    const side = b.exp(b.tanh(w), "side_branch"); // forward-only output, not in the loss
    const loss = b.reduceSum(b.mul(x, w), [0, 1], false, "loss");
    b.output(loss);
    b.output(side);
    const { graph, gradients } = buildGradientGraph(b.build(), { wrt: ["w", "unused"], loss: "loss" });
    expect(graph.nodes.some((n) => n.op === "Tanh" || n.op === "Exp")).toBe(false);
    expect(graph.outputs.map((o) => o.name)).toEqual(["loss", gradients.get("w"), gradients.get("unused")]);
    const res = await checkGradients(b.buildModel(), {
      wrt: ["w", "unused"],
      loss: "loss",
      feeds: {
        x: { dtype: "float64", dims: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) },
        w: { dtype: "float64", dims: [2, 3], data: new Float64Array(6).fill(0.5) },
        unused: { dtype: "float64", dims: [4], data: new Float64Array(4).fill(1) },
      },
    });
    // dL/dw = x exactly; dL/dunused = 0.
    expect(Array.from(res.analytic.get("w")!)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(res.analytic.get("unused")!)).toEqual([0, 0, 0, 0]);
  });

  it("rejects unknown ops, non-scalar losses and unknown parameters with clear codes", () => {
    const b = createGraphBuilder("bad");
    const x = b.input("x", "float32", [2, 2]);
    const y = b.op("Det", [x], [{ dtype: "float32", shape: [] }])[0]!;
    b.output(y);
    const g = b.build();
    expect(() => buildGradientGraph(g, { wrt: ["x"], loss: y.name })).toThrow(/no gradient rule for op Det/);
    expect(() => buildGradientGraph(g, { wrt: ["nope"], loss: y.name })).toThrow(/not a graph input/);
    expect(() => buildGradientGraph(g, { wrt: ["x"], loss: "x" })).toThrow(/must be a scalar/);
  });
});
