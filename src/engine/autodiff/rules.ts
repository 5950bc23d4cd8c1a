// Longer than the project's ~500-line guide on purpose: this is the table of gradient rules, one short
// entry per ONNX op (as in tinygrad's gradient.py), so all of autodiff's math reads in one place; the
// helpers the rules share sit above the table, optimisations live in separate rewrite passes.
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { AD_DOMAIN, attr, MS_DOMAIN, shapeSize, type Attr, type Dim, type DType, type Node, type Shape, type ValueInfo } from "../graph/ir.js";
import type { GraphEmitter } from "./emitter.js";
import { broadcastShapes, inversePerm, normAxis, sameDim } from "./shapes.js";

/**
 * What a gradient rule may ask while it writes the backward of one forward node. It exists so
 * rules stay small and declarative: shapes, constants, un-broadcasting and matmul variants are
 * shared here instead of re-derived in every rule.
 */
export interface RuleContext {
  /** Where backward nodes go. */
  readonly e: GraphEmitter;
  /** The forward node being differentiated. */
  readonly node: Node;
  /** Whether the rule may emit contrib (com.microsoft) ops such as FusedMatMul. */
  readonly contrib: boolean;
  /** True if input `i` of the node needs a gradient (rules skip the others). */
  needs(i: number): boolean;
  /** Type/shape of a value; throws a clear error if the forward graph did not declare it. */
  info(name: string): ValueInfo;
  /** An int64 [rank] tensor holding the run-time shape of `name` (a constant when static). */
  shapeOf(name: string): string;
  /** Sums `g` (of shape `gShape`) down to the shape of `target`, undoing numpy broadcasting. */
  unbroadcast(g: string, gShape: Shape, target: string): string;
  /**
   * Name of optional output `index` of the forward node, asking the forward node to produce it
   * when it did not (LayerNormalization's Mean/InvStdDev, Dropout's mask).
   */
  forwardOutput(index: number): string;
  /** Attribute of the node. */
  attr(name: string): Attr | undefined;
  /** Int attribute of the node with a default. */
  int(name: string, fallback: number): number;
  /** Float attribute of the node with a default. */
  float(name: string, fallback: number): number;
  /** Ints attribute of the node, or null when absent. */
  ints(name: string): readonly number[] | null;
}

/**
 * A gradient rule: given the gradients of the node's outputs (null where an output does not
 * reach the loss), returns the gradients of its inputs (null where not needed or not defined).
 */
export type GradientRule = (c: RuleContext, gradOutputs: readonly (string | null)[]) => (string | null)[];

/** Ops whose outputs carry no gradient (integer/bool results, shape queries, constants). */
export const NON_DIFFERENTIABLE: ReadonlySet<string> = new Set([
  "Shape",
  "Size",
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "ArgMax",
  "ArgMin",
  "ConstantOfShape",
  "Range",
  "NonZero",
  "Constant",
  "OneHot",
  "RandomUniform",
  "RandomUniformLike",
  "RandomNormal",
  "RandomNormalLike",
  "IsNaN",
  "IsInf",
  "Sign",
  "Floor",
  "Ceil",
  "Round",
  "EyeLike",
]);

const mul = (c: RuleContext, a: string, b: string): string => c.e.op("Mul", [a, b]);
const add = (c: RuleContext, a: string, b: string): string => c.e.op("Add", [a, b]);
const sub = (c: RuleContext, a: string, b: string): string => c.e.op("Sub", [a, b]);
const div = (c: RuleContext, a: string, b: string): string => c.e.op("Div", [a, b]);
const neg = (c: RuleContext, a: string): string => c.e.op("Neg", [a]);
const scalar = (c: RuleContext, v: number, dtype: DType): string => c.e.float(v, dtype);

/** ReduceSum over constant axes (opset 13 form: axes as an input). */
export function reduceSum(c: RuleContext, x: string, axes: readonly number[], keepdims: boolean): string {
  return c.e.op("ReduceSum", [x, c.e.int64(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });
}

/** Transpose of the last two axes of a rank-`rank` tensor. */
function swapLast2(c: RuleContext, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return c.e.op("Transpose", [x], { perm: attr.ints(perm) });
}

/** x · yᵀ (last two axes), fused when contrib ops are allowed. */
function matMulNT(c: RuleContext, x: string, y: string, yRank: number): string {
  if (c.contrib) return c.e.op("FusedMatMul", [x, y], { transB: attr.int(1) }, { domain: MS_DOMAIN });
  return c.e.op("MatMul", [x, swapLast2(c, y, yRank)]);
}

/** xᵀ · y (last two axes), fused when contrib ops are allowed. */
function matMulTN(c: RuleContext, x: string, y: string, xRank: number): string {
  if (c.contrib) return c.e.op("FusedMatMul", [x, y], { transA: attr.int(1) }, { domain: MS_DOMAIN });
  return c.e.op("MatMul", [swapLast2(c, x, xRank), y]);
}

/**
 * (aᵀ·b)ᵀ as bᵀ·a when `g` is a 2-D FusedMatMul(a, b, transA) this rule emitted, the transposed
 * result (shaped like the Transpose node's input) has more rows than columns, and ORT's product
 * runs faster that way round: the weight gradient of `x·Wᵀ` for W [512,128] took 2.2 ms as
 * one [512,128] product vs 2.65 ms as [128,512] + Transpose here. Null when it does not apply.
 */
function transposedProduct(c: RuleContext, g: string): string | null {
  const shape = c.info(c.node.inputs[0]!).shape;
  const [rows, cols] = shape as [Dim, Dim];
  if (!c.contrib || typeof rows !== "number" || typeof cols !== "number" || rows <= cols) return null;
  let producer: Node | undefined;
  for (let i = c.e.nodes.length - 1; i >= 0 && producer === undefined; i--) if (c.e.nodes[i]!.outputs[0] === g) producer = c.e.nodes[i];
  if (producer === undefined || producer.op !== "FusedMatMul" || producer.domain !== MS_DOMAIN) return null;
  const a = producer.attrs ?? {};
  const intOf = (k: string): number => (a[k]?.kind === "int" ? (a[k] as { value: number }).value : 0);
  const alpha = a["alpha"]?.kind === "float" ? (a["alpha"] as { value: number }).value : 1;
  if (intOf("transA") !== 1 || intOf("transB") !== 0 || intOf("transBatchA") !== 0 || intOf("transBatchB") !== 0 || alpha !== 1) return null;
  const [x, y] = producer.inputs as [string, string];
  if (!is2d(c, x) || !is2d(c, y)) return null;
  return c.e.op("FusedMatMul", [y, x], { transA: attr.int(1) }, { domain: MS_DOMAIN });
}

/** True if `x` is declared 2-D or was emitted as a 2-D Reshape (flatten2d). */
function is2d(c: RuleContext, x: string): boolean {
  if (c.e.info(x)?.shape.length === 2) return true;
  const n = c.e.nodes.find((m) => m.outputs[0] === x);
  if (n === undefined || n.op !== "Reshape") return false;
  const target = c.e.intConstant(n.inputs[1] ?? "");
  return target !== null && target.length === 2;
}

/** Reshape `x` to 2-D [-1, last], with the last dim constant when known. */
function flatten2d(c: RuleContext, x: string, last: number | string | null, lastOf: string): string {
  if (typeof last === "number") return c.e.op("Reshape", [x, c.e.int64([-1, last])]);
  const lastDim = c.e.op("Slice", [c.shapeOf(lastOf), c.e.int64([-1]), c.e.int64([Number.MAX_SAFE_INTEGER])]);
  return c.e.op("Reshape", [x, c.e.op("Concat", [c.e.int64([-1]), lastDim], { axis: attr.int(0) })]);
}

/** Gradient shaped like the node's output, expanded from a reduced (keepdims) gradient. */
function expandTo(c: RuleContext, g: string, like: string): string {
  return c.e.op("Expand", [g, c.shapeOf(like)]);
}

/** Axes of a reduce node (attribute form or input form), normalized; null = all axes. */
function reduceAxes(c: RuleContext, rank: number): number[] | null {
  const fromAttr = c.ints("axes");
  let axes: readonly number[] | null = fromAttr;
  const axesInput = c.node.inputs[1];
  if (axes === null && axesInput !== undefined && axesInput !== "") {
    axes = c.e.intConstant(axesInput);
    if (axes === null) {
      throw new AutodidactError(`${c.node.op}: axes must be a constant to differentiate`, Code.Unimplemented);
    }
  }
  if (axes === null || axes.length === 0) {
    if (c.int("noop_with_empty_axes", 0) === 1) return [];
    return null;
  }
  return axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
}

/** Broadcast a reduce node's output gradient back to its input's shape. */
function reduceBackward(c: RuleContext, g: string, x: string, scale: string | null): string {
  const rank = c.info(x).shape.length;
  const axes = reduceAxes(c, rank) ?? Array.from({ length: rank }, (_, i) => i);
  if (axes.length === 0) return scale === null ? g : mul(c, g, scale);
  let gk = g;
  if (c.int("keepdims", 1) === 0) gk = c.e.op("Unsqueeze", [g, c.e.int64(axes)]);
  if (scale !== null) gk = mul(c, gk, scale);
  return expandTo(c, gk, x);
}

/** 1 / (number of elements each reduce output averages), constant when the reduced dims are static. */
function reduceCount(c: RuleContext, x: string, y: string): string {
  const xs = c.info(x);
  const rank = xs.shape.length;
  const axes = reduceAxes(c, rank) ?? Array.from({ length: rank }, (_, i) => i);
  let n = 1;
  let fixed = true;
  for (const a of axes) {
    const d = xs.shape[a];
    if (typeof d === "number") n *= d;
    else fixed = false;
  }
  if (fixed) return scalar(c, 1 / n, xs.dtype);
  const sx = c.e.op("Cast", [c.e.op("Size", [x])], { to: attr.int(dtypeCode(xs.dtype)) });
  const sy = c.e.op("Cast", [c.e.op("Size", [y])], { to: attr.int(dtypeCode(xs.dtype)) });
  return div(c, sy, sx);
}

function dtypeCode(dtype: DType): number {
  switch (dtype) {
    case "float32":
      return 1;
    case "float64":
      return 11;
    case "int32":
      return 6;
    case "int64":
      return 7;
    case "bool":
      return 9;
  }
}

/** The Pi-based constants of the erf/Gaussian derivatives. */
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Output shape of the node (declared, or broadcast of the inputs for elementwise ops). */
function outShape(c: RuleContext): Shape {
  const name = c.node.outputs[0]!;
  const known = c.e.info(name);
  if (known !== undefined) return known.shape;
  return broadcastShapes(...c.node.inputs.filter((i) => i !== "").map((i) => c.info(i).shape));
}

/** Mean over the normalized axes (keepdims), for the normalization rules. */
function meanOver(c: RuleContext, x: string, axes: readonly number[]): string {
  return c.e.op("ReduceMean", [x], { axes: attr.ints(axes), keepdims: attr.int(1) });
}

/** Largest table (rows) whose Gather gradient is a one-hot product rather than a scatter. */
const ONE_HOT_ROWS = 256;

/**
 * Gather's backward along axis 0: the slices of `g` (shaped indices.shape + like.shape[1:]) summed
 * into a zero tensor shaped like `like` at their indices. Not ScatterND with reduction "add": ORT's
 * CPU kernel splits the updates across intra-op threads and loses additions to repeated indices
 * (onnxruntime#18048; here a [16,128] embedding gradient from 3,072 tokens was off by up to 20 with
 * 2 threads, different on every run). Small static float32 tables use a one-hot product (3,072
 * tokens, 16 rows: 0.27 ms); the rest ScatterElements, which ORT runs in one thread (1.2 ms there).
 */
function scatterAddRows(c: RuleContext, like: string, likeShape: Shape, dtype: DType, indices: string, g: string): string {
  const e = c.e;
  const rest = likeShape.slice(1);
  const flatIndices = e.op("Reshape", [indices, e.int64([-1])]);
  // [tokens, product of the other dims of `like`]
  const width = shapeSize(rest);
  const rowsShape =
    width !== null
      ? e.int64([-1, width])
      : e.op("Concat", [e.int64([-1]), e.op("ReduceProd", [e.op("Slice", [c.shapeOf(like), e.int64([1]), e.int64([rest.length + 1]), e.int64([0])])], { keepdims: attr.int(1) })], { axis: attr.int(0) });
  const g2 = e.op("Reshape", [g, rowsShape]);
  const rows = likeShape[0];
  let summed: string;
  if (dtype === "float32" && typeof rows === "number" && rows <= ONE_HOT_ROWS) {
    const oneHot = e.op("OneHot", [flatIndices, e.int64([rows], []), e.float([0, 1], dtype, [2])], { axis: attr.int(-1) });
    summed = matMulTN(c, oneHot, g2, 2);
  } else {
    const zeros = e.op("Reshape", [e.op("Expand", [scalar(c, 0, dtype), c.shapeOf(like)]), rowsShape]);
    const spread = e.op("Expand", [e.op("Unsqueeze", [flatIndices, e.int64([1])]), e.op("Shape", [g2])]);
    summed = e.op("ScatterElements", [zeros, spread, g2], { axis: attr.int(0), reduction: attr.string("add") });
  }
  return e.op("Reshape", [summed, c.shapeOf(like)]);
}

function layerNormAxes(c: RuleContext, rank: number): number[] {
  const axis = normAxis(c.int("axis", -1), rank);
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

/** The table of gradient rules, keyed by `domain:op` (`:MatMul` for the ONNX domain). */
export const RULES: ReadonlyMap<string, GradientRule> = new Map<string, GradientRule>([
  // ------------------------------------------------------------------ elementwise arithmetic
  [
    ":Add",
    (c, [g]) => {
      const [a, b] = c.node.inputs as [string, string];
      const s = outShape(c);
      return [c.needs(0) ? c.unbroadcast(g!, s, a) : null, c.needs(1) ? c.unbroadcast(g!, s, b) : null];
    },
  ],
  [
    ":Sub",
    (c, [g]) => {
      const [a, b] = c.node.inputs as [string, string];
      const s = outShape(c);
      return [c.needs(0) ? c.unbroadcast(g!, s, a) : null, c.needs(1) ? neg(c, c.unbroadcast(g!, s, b)) : null];
    },
  ],
  [
    ":Mul",
    (c, [g]) => {
      const [a, b] = c.node.inputs as [string, string];
      const s = outShape(c);
      return [
        c.needs(0) ? c.unbroadcast(mul(c, g!, b), s, a) : null,
        c.needs(1) ? c.unbroadcast(mul(c, g!, a), s, b) : null,
      ];
    },
  ],
  [
    ":Div",
    (c, [g]) => {
      const [a, b] = c.node.inputs as [string, string];
      const y = c.node.outputs[0]!;
      const s = outShape(c);
      const ga = c.needs(0) || c.needs(1) ? div(c, g!, b) : null;
      return [
        c.needs(0) ? c.unbroadcast(ga!, s, a) : null,
        // d(a/b)/db = -a/b² = -(g/b)·y
        c.needs(1) ? neg(c, c.unbroadcast(mul(c, ga!, y), s, b)) : null,
      ];
    },
  ],
  [
    ":Pow",
    (c, [g]) => {
      const [x, p] = c.node.inputs as [string, string];
      const y = c.node.outputs[0]!;
      const s = outShape(c);
      const dtype = c.info(x).dtype;
      let gx: string | null = null;
      if (c.needs(0)) {
        const pv = c.e.info(p) !== undefined ? constantFloat(c, p) : null;
        let local: string;
        if (pv === 2) local = mul(c, x, scalar(c, 2, dtype));
        else if (pv === 1) local = c.e.op("Expand", [scalar(c, 1, dtype), c.shapeOf(x)]);
        else if (pv !== null) local = mul(c, c.e.op("Pow", [x, scalar(c, pv - 1, dtype)]), scalar(c, pv, dtype));
        else {
          const pf = c.info(p).dtype === dtype ? p : c.e.op("Cast", [p], { to: attr.int(dtypeCode(dtype)) });
          local = mul(c, c.e.op("Pow", [x, sub(c, pf, scalar(c, 1, dtype))]), pf);
        }
        gx = c.unbroadcast(mul(c, g!, local), s, x);
      }
      const gp = c.needs(1) ? c.unbroadcast(mul(c, mul(c, g!, y), c.e.op("Log", [x])), s, p) : null;
      return [gx, gp];
    },
  ],
  [
    ":Sum",
    (c, [g]) => {
      const s = outShape(c);
      return c.node.inputs.map((x, i) => (c.needs(i) ? c.unbroadcast(g!, s, x) : null));
    },
  ],
  [":Max", (c, [g]) => minMax(c, g!, "GreaterOrEqual")],
  [":Min", (c, [g]) => minMax(c, g!, "LessOrEqual")],
  [":Neg", (_c, [g]) => [neg(_c, g!)]],
  [":Identity", (_c, [g]) => [g!]],
  [
    ":Exp",
    (c, [g]) => [mul(c, g!, c.node.outputs[0]!)],
  ],
  [":Log", (c, [g]) => [div(c, g!, c.node.inputs[0]!)]],
  [
    ":Sqrt",
    (c, [g]) => {
      const y = c.node.outputs[0]!;
      return [div(c, mul(c, g!, scalar(c, 0.5, c.info(y).dtype)), y)];
    },
  ],
  [
    ":Reciprocal",
    (c, [g]) => {
      const y = c.node.outputs[0]!;
      return [neg(c, mul(c, g!, mul(c, y, y)))];
    },
  ],
  [
    ":Tanh",
    (c, [g]) => {
      const y = c.node.outputs[0]!;
      const one = scalar(c, 1, c.info(y).dtype);
      return [mul(c, g!, sub(c, one, mul(c, y, y)))];
    },
  ],
  [
    ":Sigmoid",
    (c, [g]) => {
      const y = c.node.outputs[0]!;
      const one = scalar(c, 1, c.info(y).dtype);
      return [mul(c, g!, mul(c, y, sub(c, one, y)))];
    },
  ],
  [
    ":Relu",
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const dtype = c.info(x).dtype;
      const pos = c.e.op("Greater", [x, scalar(c, 0, dtype)]);
      return [c.e.op("Where", [pos, g!, scalar(c, 0, dtype)])];
    },
  ],
  [
    ":Abs",
    (c, [g]) => [mul(c, g!, c.e.op("Sign", [c.node.inputs[0]!]))],
  ],
  [
    ":Erf",
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const dtype = c.info(x).dtype;
      // d erf(x)/dx = 2/√π · exp(−x²) = exp(ln(2/√π) − x²): one full-size pass fewer.
      const e = c.e.op("Exp", [sub(c, scalar(c, Math.log(TWO_OVER_SQRT_PI), dtype), mul(c, x, x))]);
      return [mul(c, g!, e)];
    },
  ],
  [
    // gelu(x) = x·Φ(x) with its forward intermediates as outputs 1 (u = x/√2) and 2 (Φ(x)):
    // dy/dx = Φ(x) + x·φ(x), φ(x) = exp(ln(1/√(2π)) − u²). Six full-size passes; the backward
    // autodiff derives from the composed form takes nine.
    `${AD_DOMAIN}:Gelu`,
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const [, u, phi] = c.node.outputs as [string, string, string];
      const dtype = c.info(x).dtype;
      const pdf = c.e.op("Exp", [sub(c, scalar(c, Math.log(INV_SQRT_2PI), dtype), mul(c, u, u))]);
      return [mul(c, g!, c.e.op("Add", [phi, mul(c, x, pdf)]))];
    },
  ],
  [
    // y = u·F(u), F(u) = (1 + erf u)·√π/2 (the training graph's GELU at u = x/√2, see
    // ForwardGraphOptions.scaledGelu) with F as output 1: dy/du = F + u·(√π/2)·(2/√π)·exp(−u²)
    // = F + u/exp(u²). Five full-size passes (Mul, Exp, Div, Add, Mul); where exp(u²) overflows,
    // u/∞ = 0, the limit.
    `${AD_DOMAIN}:ScaledGelu`,
    (c, [g]) => {
      const u = c.node.inputs[0]!;
      const f = c.node.outputs[1];
      if (f === undefined) throw new AutodidactError("ScaledGelu needs its F(u) output for its backward", Code.Internal);
      return [mul(c, g!, add(c, f, div(c, u, c.e.op("Exp", [mul(c, u, u)]))))];
    },
  ],
  [
    `${MS_DOMAIN}:Gelu`,
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const dtype = c.info(x).dtype;
      // gelu(x) = x·Φ(x) → Φ(x) + x·φ(x) = ½ + ½·erf(x/√2) + x·exp(−x²/2)/√(2π)
      const u = mul(c, x, scalar(c, Math.SQRT1_2, dtype));
      const halfErf = mul(c, c.e.op("Erf", [u]), scalar(c, 0.5, dtype));
      const negHalfSq = mul(c, u, mul(c, x, scalar(c, -Math.SQRT1_2, dtype)));
      const xPdf = mul(c, mul(c, x, c.e.op("Exp", [negHalfSq])), scalar(c, INV_SQRT_2PI, dtype));
      return [mul(c, g!, c.e.op("Sum", [halfErf, xPdf, scalar(c, 0.5, dtype)]))];
    },
  ],
  [
    ":Cast",
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const dtype = c.info(x).dtype;
      if (dtype !== "float32" && dtype !== "float64") return [null];
      return [c.e.op("Cast", [g!], { to: attr.int(dtypeCode(dtype)) })];
    },
  ],
  [
    ":Where",
    (c, [g]) => {
      const [cond, a, b] = c.node.inputs as [string, string, string];
      const s = outShape(c);
      const zero = scalar(c, 0, c.info(c.node.outputs[0]!).dtype);
      return [
        null,
        c.needs(1) ? c.unbroadcast(c.e.op("Where", [cond, g!, zero]), s, a) : null,
        c.needs(2) ? c.unbroadcast(c.e.op("Where", [cond, zero, g!]), s, b) : null,
      ];
    },
  ],
  [
    ":Dropout",
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const training = c.node.inputs[2];
      if (training === undefined || training === "") return [g!]; // inference mode: identity
      const ratioName = c.node.inputs[1];
      const ratio = ratioName !== undefined && ratioName !== "" ? constantFloat(c, ratioName) : 0.5;
      if (ratio === null) throw new AutodidactError("Dropout: ratio must be a constant to differentiate", Code.Unimplemented);
      const mask = c.forwardOutput(1);
      const dtype = c.info(x).dtype;
      const kept = c.e.op("Where", [mask, g!, scalar(c, 0, dtype)]);
      return [mul(c, kept, scalar(c, 1 / (1 - ratio), dtype))];
    },
  ],
  // ------------------------------------------------------------------ linear algebra
  [
    ":MatMul",
    (c, [g]) => {
      const [a, b] = c.node.inputs as [string, string];
      const sa = c.info(a).shape;
      const sb = c.info(b).shape;
      const ra = sa.length;
      const rb = sb.length;
      if (ra < 2 || rb < 2) throw new AutodidactError("MatMul gradient: 1-D operands are not supported", Code.Unimplemented);
      const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
      let ga: string | null = null;
      let gb: string | null = null;
      if (c.needs(0)) {
        const full = matMulNT(c, g!, b, rb);
        ga = rb === 2 ? full : c.unbroadcast(full, [...batch, sa[ra - 2]!, sa[ra - 1]!], a);
      }
      if (c.needs(1)) {
        if (rb === 2 && ra > 2) {
          // Weight of a batched linear layer: one [K, rows]·[rows, N] product instead of a batched
          // product followed by a reduction.
          const a2 = flatten2d(c, a, sa[ra - 1]!, a);
          const g2 = flatten2d(c, g!, sb[1]!, b);
          gb = matMulTN(c, a2, g2, 2);
        } else {
          const full = matMulTN(c, a, g!, ra);
          gb = c.unbroadcast(full, [...batch, sb[rb - 2]!, sb[rb - 1]!], b);
        }
      }
      return [ga, gb];
    },
  ],
  [
    `${MS_DOMAIN}:FusedMatMul`,
    (c, [g]) => {
      // y = alpha · op(a) · op(b) with op = optional transpose of the last two axes.
      const [a, b] = c.node.inputs as [string, string];
      const ta = c.int("transA", 0) === 1;
      const tb = c.int("transB", 0) === 1;
      const alpha = c.float("alpha", 1);
      if (c.int("transBatchA", 0) !== 0 || c.int("transBatchB", 0) !== 0) {
        throw new AutodidactError("FusedMatMul gradient: transBatch is not supported", Code.Unimplemented);
      }
      const sa = c.info(a).shape;
      const sb = c.info(b).shape;
      const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
      const fm = (x: string, y: string, tx: boolean, ty: boolean): string =>
        c.e.op("FusedMatMul", [x, y], { transA: attr.int(tx ? 1 : 0), transB: attr.int(ty ? 1 : 0), alpha: attr.float(alpha) }, { domain: MS_DOMAIN });
      let ga: string | null = null;
      let gb: string | null = null;
      const ra = sa.length;
      const rb = sb.length;
      if (c.needs(0)) {
        // op(a) = A': dA' = g·op(b)ᵀ; if transA, dA = (dA')ᵀ = op(b)·gᵀ
        const full = ta ? fm(b, g!, tb, true) : fm(g!, b, false, !tb);
        ga = c.unbroadcast(full, [...batch, sa[ra - 2]!, sa[ra - 1]!], a);
      }
      if (c.needs(1)) {
        // dB' = op(a)ᵀ·g; if transB, dB = gᵀ·op(a)
        const full = tb ? fm(g!, a, true, ta) : fm(a, g!, !ta, false);
        gb = c.unbroadcast(full, [...batch, sb[rb - 2]!, sb[rb - 1]!], b);
      }
      return [ga, gb];
    },
  ],
  [
    ":Gemm",
    (c, [g]) => {
      // y = alpha·op(A)·op(B) + beta·C, 2-D only.
      const [a, b, cc] = c.node.inputs as [string, string, string | undefined];
      const ta = c.int("transA", 0) === 1;
      const tb = c.int("transB", 0) === 1;
      const alpha = c.float("alpha", 1);
      const beta = c.float("beta", 1);
      const dtype = c.info(a).dtype;
      const gemm = (x: string, y: string, tx: boolean, ty: boolean): string =>
        c.e.op("Gemm", [x, y], { transA: attr.int(tx ? 1 : 0), transB: attr.int(ty ? 1 : 0), alpha: attr.float(alpha) });
      const ga = c.needs(0) ? (ta ? gemm(b, g!, tb, true) : gemm(g!, b, false, !tb)) : null;
      const gb = c.needs(1) ? (tb ? gemm(g!, a, true, ta) : gemm(a, g!, !ta, false)) : null;
      let gc: string | null = null;
      if (cc !== undefined && cc !== "" && c.needs(2)) {
        const scaled = beta === 1 ? g! : mul(c, g!, scalar(c, beta, dtype));
        gc = c.unbroadcast(scaled, outShape(c), cc);
      }
      return [ga, gb, gc];
    },
  ],
  // ------------------------------------------------------------------ reductions & normalizers
  [
    ":ReduceSum",
    (c, [g]) => [reduceBackward(c, g!, c.node.inputs[0]!, null), null],
  ],
  [
    ":ReduceMean",
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      return [reduceBackward(c, g!, x, reduceCount(c, x, c.node.outputs[0]!)), null];
    },
  ],
  [
    ":ReduceSumSquare",
    (c, [g]) => {
      const x = c.node.inputs[0]!;
      const gx = reduceBackward(c, g!, x, null);
      return [mul(c, gx, mul(c, x, scalar(c, 2, c.info(x).dtype))), null];
    },
  ],
  [
    ":Softmax",
    (c, [g]) => {
      const y = c.node.outputs[0]!;
      const axis = normAxis(c.int("axis", -1), c.info(y).shape.length);
      const gy = mul(c, g!, y);
      return [sub(c, gy, mul(c, y, reduceSum(c, gy, [axis], true)))];
    },
  ],
  [
    ":LogSoftmax",
    (c, [g]) => {
      const y = c.node.outputs[0]!;
      const axis = normAxis(c.int("axis", -1), c.info(y).shape.length);
      return [sub(c, g!, mul(c, c.e.op("Exp", [y]), reduceSum(c, g!, [axis], true)))];
    },
  ],
  [
    ":LayerNormalization",
    (c, [g]) => {
      if (g === null || g === undefined) return [null, null, null];
      const [x, scale, bias] = c.node.inputs as [string, string, string | undefined];
      const xs = c.info(x);
      const dtype = xs.dtype;
      const axes = layerNormAxes(c, xs.shape.length);
      let mean: string;
      let rstd: string;
      if (dtype === "float32") {
        mean = c.forwardOutput(1);
        rstd = c.forwardOutput(2);
      } else {
        // The stash outputs are float32 whatever the input type; recompute in full precision.
        mean = meanOver(c, x, axes);
        const d = sub(c, x, mean);
        const variance = meanOver(c, mul(c, d, d), axes);
        rstd = c.e.op("Reciprocal", [c.e.op("Sqrt", [add(c, variance, scalar(c, c.float("epsilon", 1e-5), dtype))])]);
      }
      const xhat = mul(c, sub(c, x, mean), rstd);
      const out = outShape(c);
      const gs = c.needs(1) ? c.unbroadcast(mul(c, g, xhat), out, scale) : null;
      const gbias = bias !== undefined && bias !== "" && c.needs(2) ? c.unbroadcast(g, out, bias) : null;
      let gx: string | null = null;
      if (c.needs(0)) {
        const gxhat = mul(c, g, scale);
        const m1 = meanOver(c, gxhat, axes);
        const m2 = meanOver(c, mul(c, gxhat, xhat), axes);
        gx = mul(c, rstd, sub(c, sub(c, gxhat, m1), mul(c, xhat, m2)));
      }
      return [gx, gs, gbias];
    },
  ],
  [
    ":SimplifiedLayerNormalization",
    (c, [g]) => {
      if (g === null || g === undefined) return [null, null];
      // RMSNorm: y = x·r·scale, r = 1/√(mean(x²)+ε)
      const [x, scale] = c.node.inputs as [string, string];
      const xs = c.info(x);
      const dtype = xs.dtype;
      const axes = layerNormAxes(c, xs.shape.length);
      const ms = meanOver(c, mul(c, x, x), axes);
      const r = c.e.op("Reciprocal", [c.e.op("Sqrt", [add(c, ms, scalar(c, c.float("epsilon", 1e-5), dtype))])]);
      const xhat = mul(c, x, r);
      const gs = c.needs(1) ? c.unbroadcast(mul(c, g, xhat), outShape(c), scale) : null;
      let gx: string | null = null;
      if (c.needs(0)) {
        const gxhat = mul(c, g, scale);
        const m2 = meanOver(c, mul(c, gxhat, xhat), axes);
        gx = mul(c, r, sub(c, gxhat, mul(c, xhat, m2)));
      }
      return [gx, gs];
    },
  ],
  // ------------------------------------------------------------------ shape & data movement
  [":Reshape", (c, [g]) => [c.e.op("Reshape", [g!, c.shapeOf(c.node.inputs[0]!)]), null]],
  [":Flatten", (c, [g]) => [c.e.op("Reshape", [g!, c.shapeOf(c.node.inputs[0]!)])]],
  [":Squeeze", (c, [g]) => [c.e.op("Reshape", [g!, c.shapeOf(c.node.inputs[0]!)]), null]],
  [":Unsqueeze", (c, [g]) => [c.e.op("Reshape", [g!, c.shapeOf(c.node.inputs[0]!)]), null]],
  [
    ":Expand",
    (c, [g]) => [c.unbroadcast(g!, outShape(c), c.node.inputs[0]!), null],
  ],
  [
    ":Transpose",
    (c, [g]) => {
      const rank = c.info(c.node.inputs[0]!).shape.length;
      const perm = c.ints("perm") ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      if (rank === 2 && perm[0] === 1) {
        const swapped = transposedProduct(c, g!);
        if (swapped !== null) return [swapped];
      }
      return [c.e.op("Transpose", [g!], { perm: attr.ints(inversePerm(perm)) })];
    },
  ],
  [
    ":Concat",
    (c, [g]) => {
      const xs = c.node.inputs;
      const rank = c.info(xs[0]!).shape.length;
      const axis = normAxis(c.int("axis", 0), rank);
      const dims = xs.map((x) => c.info(x).shape[axis]);
      let sizes: string;
      if (dims.every((d): d is number => typeof d === "number")) sizes = c.e.int64(dims);
      else {
        const parts = xs.map((x) => c.e.op("Slice", [c.shapeOf(x), c.e.int64([axis]), c.e.int64([axis + 1])]));
        sizes = c.e.op("Concat", parts, { axis: attr.int(0) });
      }
      const pieces = c.e.opN("Split", [g!, sizes], xs.length, { axis: attr.int(axis) });
      return xs.map((_, i) => (c.needs(i) ? pieces[i]! : null));
    },
  ],
  [
    ":Split",
    (c, gs) => {
      const x = c.node.inputs[0]!;
      const xs = c.info(x);
      const axis = normAxis(c.int("axis", 0), xs.shape.length);
      const parts = c.node.outputs.map((o, i) => {
        const gi = gs[i];
        if (gi !== null && gi !== undefined) return gi;
        const info = c.info(o);
        return c.e.op("Expand", [scalar(c, 0, info.dtype), c.shapeOf(o)]);
      });
      return [c.e.op("Concat", parts, { axis: attr.int(axis) }), null];
    },
  ],
  [
    ":Slice",
    (c, [g]) => {
      const [x, startsN, endsN, axesN, stepsN] = c.node.inputs as [string, string, string, string?, string?];
      const xs = c.info(x);
      const rank = xs.shape.length;
      const starts = c.e.intConstant(startsN);
      const ends = c.e.intConstant(endsN);
      const hasAxes = axesN !== undefined && axesN !== "";
      const axesConst = hasAxes ? c.e.intConstant(axesN) : null;
      if (hasAxes && axesConst === null) throw new AutodidactError("Slice gradient: axes must be a constant", Code.Unimplemented);
      const steps = stepsN !== undefined && stepsN !== "" ? c.e.intConstant(stepsN) : null;
      if (stepsN !== undefined && stepsN !== "" && (steps === null || steps.some((st) => st !== 1))) {
        throw new AutodidactError("Slice gradient: only constant unit steps are supported", Code.Unimplemented);
      }
      const zero = scalar(c, 0, xs.dtype);
      const nAxes = axesConst?.length ?? starts?.length ?? c.info(startsN).shape[0];
      if (typeof nAxes !== "number") throw new AutodidactError("Slice gradient: unknown number of sliced axes", Code.Unimplemented);
      const axes = (axesConst ?? Array.from({ length: nAxes }, (_, i) => i)).map((a) => normAxis(a, rank));
      // Fast path: constant bounds on static dims → constant pads.
      if (starts !== null && ends !== null && axes.every((a) => typeof xs.shape[a] === "number")) {
        const pads = new Array<number>(2 * rank).fill(0);
        axes.forEach((ax, k) => {
          const d = xs.shape[ax] as number;
          const st = Math.min(Math.max(starts[k]! < 0 ? starts[k]! + d : starts[k]!, 0), d);
          const en = Math.min(Math.max(ends[k]! < 0 ? ends[k]! + d : ends[k]!, 0), d);
          pads[ax] = st;
          pads[rank + ax] = d - Math.max(en, st);
        });
        return [c.e.op("Pad", [g!, c.e.int64(pads), zero], { mode: attr.string("constant") }), null, null, null, null];
      }
      // Run-time pads: begin = clamp(normalized start, 0, dim); end pad = dim − size(g) − begin.
      const shapeX = c.shapeOf(x);
      const axesT = c.e.int64(axes);
      const dims = c.e.op("Gather", [shapeX, axesT], { axis: attr.int(0) });
      const zeroI = c.e.int64([0], []);
      const st = c.e.op("Cast", [startsN], { to: attr.int(7) });
      const norm = c.e.op("Where", [c.e.op("Less", [st, zeroI]), c.e.op("Add", [st, dims]), st]);
      const begin = c.e.op("Max", [c.e.op("Min", [norm, dims]), zeroI]);
      const beginFull = c.e.op("ScatterElements", [c.e.int64(new Array<number>(rank).fill(0)), axesT, begin], { axis: attr.int(0) });
      const endPad = c.e.op("Sub", [c.e.op("Sub", [shapeX, c.e.op("Shape", [g!])]), beginFull]);
      const pads = c.e.op("Concat", [beginFull, endPad], { axis: attr.int(0) });
      return [c.e.op("Pad", [g!, pads, zero], { mode: attr.string("constant") }), null, null, null, null];
    },
  ],
  [
    ":Gather",
    (c, [g]) => {
      const [data, indices] = c.node.inputs as [string, string];
      const ds = c.info(data);
      const is = c.info(indices);
      const rank = ds.shape.length;
      const axis = normAxis(c.int("axis", 0), rank);
      if (axis === 0) return [scatterAddRows(c, data, ds.shape, ds.dtype, indices, g!), null];
      // Move `axis` to the front, scatter there, and move it back.
      const toFront = [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)];
      const dt = c.e.op("Transpose", [data], { perm: attr.ints(toFront) });
      const dtShape = toFront.map((p) => ds.shape[p]!);
      c.e.declare(dt, ds.dtype, dtShape);
      const ri = is.shape.length;
      const gRank = rank - 1 + ri;
      const gPerm = [
        ...Array.from({ length: ri }, (_, i) => axis + i),
        ...Array.from({ length: axis }, (_, i) => i),
        ...Array.from({ length: gRank - axis - ri }, (_, i) => axis + ri + i),
      ];
      const gt = c.e.op("Transpose", [g!], { perm: attr.ints(gPerm) });
      const scattered = scatterAddRows(c, dt, dtShape, ds.dtype, indices, gt);
      return [c.e.op("Transpose", [scattered], { perm: attr.ints(inversePerm(toFront)) }), null];
    },
  ],
  [
    ":GatherElements",
    (c, [g]) => {
      const [data, indices] = c.node.inputs as [string, string];
      const ds = c.info(data);
      const axis = normAxis(c.int("axis", 0), ds.shape.length);
      const zeros = c.e.op("Expand", [scalar(c, 0, ds.dtype), c.shapeOf(data)]);
      return [c.e.op("ScatterElements", [zeros, indices, g!], { axis: attr.int(axis), reduction: attr.string("add") }), null];
    },
  ],
  [
    ":Trilu",
    (c, [g]) => {
      const k = c.node.inputs[1];
      const ins = k !== undefined && k !== "" ? [g!, k] : [g!];
      return [c.e.op("Trilu", ins, c.node.attrs), null];
    },
  ],
]);

/**
 * Elementwise Max/Min of two inputs: the gradient goes to the selected operand; ties go to the
 * first one (a subgradient, as PyTorch's maximum splits nothing either).
 */
function minMax(c: RuleContext, g: string, firstWins: "GreaterOrEqual" | "LessOrEqual"): (string | null)[] {
  if (c.node.inputs.length !== 2) throw new AutodidactError(`${c.node.op} gradient: only two inputs are supported`, Code.Unimplemented);
  const [a, b] = c.node.inputs as [string, string];
  const s = outShape(c);
  const zero = scalar(c, 0, c.info(c.node.outputs[0]!).dtype);
  const pick = c.e.op(firstWins, [a, b]);
  return [
    c.needs(0) ? c.unbroadcast(c.e.op("Where", [pick, g, zero]), s, a) : null,
    c.needs(1) ? c.unbroadcast(c.e.op("Where", [pick, zero, g]), s, b) : null,
  ];
}

/** The scalar value of a constant float (or int) tensor, or null if it is not a known scalar. */
function constantFloat(c: RuleContext, name: string): number | null {
  const ints = c.e.intConstant(name);
  if (ints !== null) return ints.length === 1 ? ints[0]! : null;
  return c.e.floatConstant(name);
}

/** True when two shapes are known to be identical. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => sameDim(d, b[i]!));
}
