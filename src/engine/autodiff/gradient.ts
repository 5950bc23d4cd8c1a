import { AutodidactError, Code } from "../../platform/errors/index.js";
import { attr, MS_DOMAIN, MS_OPSET, shapeSize, type Graph, type Model, type Node, type Shape, type TensorData, type ValueInfo } from "../graph/ir.js";
import { GraphEmitter } from "./emitter.js";
import { NON_DIFFERENTIABLE, reduceSum, RULES, type RuleContext } from "./rules.js";
import { isStatic } from "./shapes.js";

/** Options of {@link buildGradientGraph}. */
export interface GradientOptions {
  /** Values to differentiate with respect to (graph inputs or initializers), e.g. the parameters. */
  readonly wrt: readonly string[];
  /** The scalar value to differentiate (the loss). */
  readonly loss: string;
  /** Other forward values to keep as outputs of the training graph (e.g. logits). Default none. */
  readonly keep?: readonly string[];
  /** Allow com.microsoft ops (FusedMatMul) in the backward; float32 only in ORT. Default false. */
  readonly contrib?: boolean;
  /** Name of the gradient output of a parameter. Default `grad.<param>`. */
  readonly gradName?: (param: string) => string;
}

/** A forward graph extended with its backward pass. */
export interface GradientGraph {
  /** Outputs: the loss, then `keep`, then one gradient per `wrt` entry, in that order. */
  readonly graph: Graph;
  /** Parameter name → name of its gradient output. */
  readonly gradients: ReadonlyMap<string, string>;
  /** True if the backward uses com.microsoft ops (the model must import that opset). */
  readonly usesContrib: boolean;
}

/**
 * Reverse-mode differentiation of an IR graph. It exists because onnxruntime-node has no training
 * API: we append the backward pass as ordinary ONNX nodes, so ORT computes forward, loss and all
 * gradients in ONE `run`. Only nodes on a path from a `wrt` value to the loss are differentiated;
 * fan-out gradients are summed; nodes no output needs are pruned.
 */
export function buildGradientGraph(graph: Graph, options: GradientOptions): GradientGraph {
  const e = new GraphEmitter(graph, "grad/");
  const contrib = options.contrib ?? false;
  const gradName = options.gradName ?? ((p: string) => `grad.${p}`);
  const lossInfo = e.info(options.loss);
  if (lossInfo === undefined) throw new AutodidactError(`loss "${options.loss}" is not a value of the graph`, Code.InvalidArgument);
  if (lossInfo.dtype !== "float32" && lossInfo.dtype !== "float64") {
    throw new AutodidactError(`loss "${options.loss}" must be floating point, got ${lossInfo.dtype}`, Code.InvalidArgument);
  }
  const lossSize = lossInfo.shape.reduce<number | null>((n, d) => (n !== null && typeof d === "number" ? n * d : null), 1);
  if (lossSize !== 1) throw new AutodidactError(`loss "${options.loss}" must be a scalar, shape [${lossInfo.shape.join(",")}]`, Code.InvalidArgument);

  const declared = new Set([...graph.inputs.map((v) => v.name), ...graph.initializers.map((t) => t.name)]);
  for (const p of options.wrt) {
    if (!declared.has(p)) throw new AutodidactError(`cannot differentiate w.r.t. "${p}": not a graph input or initializer`, Code.InvalidArgument);
    const info = e.info(p);
    if (info !== undefined && info.dtype !== "float32" && info.dtype !== "float64") {
      throw new AutodidactError(`cannot differentiate w.r.t. "${p}": dtype ${info.dtype}`, Code.InvalidArgument);
    }
  }

  // Which values depend on a parameter (forward), and which the loss depends on (backward).
  const requiresGrad = new Set(options.wrt);
  for (const n of graph.nodes) {
    if (NON_DIFFERENTIABLE.has(n.op) && (n.domain ?? "") === "") continue;
    if (!n.inputs.some((i) => requiresGrad.has(i))) continue;
    for (const o of n.outputs) {
      if (o === "") continue;
      const dt = e.info(o)?.dtype;
      if (dt === undefined || dt === "float32" || dt === "float64") requiresGrad.add(o);
    }
  }
  const producer = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => o !== "" && producer.set(o, i)));
  if (!producer.has(options.loss) && !declared.has(options.loss)) {
    throw new AutodidactError(`loss "${options.loss}" is not produced by any node`, Code.InvalidArgument);
  }
  const reachesLoss = new Set<string>([options.loss]);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (n.outputs.some((o) => reachesLoss.has(o))) for (const x of n.inputs) if (x !== "") reachesLoss.add(x);
  }

  const contributions = new Map<string, string[]>();
  const push = (name: string, g: string): void => {
    const list = contributions.get(name);
    if (list) list.push(g);
    else contributions.set(name, [g]);
  };
  const total = (name: string): string | null => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return null;
    if (list.length === 1) return list[0]!;
    const s = e.op("Sum", list);
    contributions.set(name, [s]);
    return s;
  };

  push(options.loss, e.float(1, lossInfo.dtype, lossInfo.shape as number[]));

  const patchedOutputs = new Map<number, string[]>();
  const shapeCache = new Map<string, string>();
  let usesContrib = false;

  for (let idx = graph.nodes.length - 1; idx >= 0; idx--) {
    const node = graph.nodes[idx]!;
    if (!node.outputs.some((o) => requiresGrad.has(o) && reachesLoss.has(o))) continue;
    const gOut = node.outputs.map((o) => (o === "" ? null : total(o)));
    if (gOut.every((g) => g === null)) continue;
    const key = `${node.domain ?? ""}:${node.op}`;
    const rule = RULES.get(key);
    if (rule === undefined) {
      throw new AutodidactError(`no gradient rule for op ${node.domain ? `${node.domain}.` : ""}${node.op} (node ${node.name ?? idx})`, Code.Unimplemented);
    }
    const ctx = makeContext(e, node, idx, contrib, requiresGrad, reachesLoss, shapeCache, patchedOutputs);
    const gIn = rule(ctx, gOut);
    node.inputs.forEach((x, i) => {
      const g = gIn[i];
      if (x !== "" && g !== null && g !== undefined && requiresGrad.has(x)) push(x, g);
    });
  }

  // Gradient outputs, one per parameter, under stable names.
  const gradients = new Map<string, string>();
  const gradOutputs: ValueInfo[] = [];
  const totals = options.wrt.map((p) => total(p));
  options.wrt.forEach((p, i) => {
    const info = e.info(p)!;
    const name = e.reserve(gradName(p));
    const g = totals[i] ?? null;
    const shared = totals.filter((t) => t === g).length > 1;
    if (g === null) e.op("Expand", [e.float(0, info.dtype), shapeOf(e, p, shapeCache)], undefined, { outputNames: [name] });
    else if (shared || !renameOutput(e, g, name)) e.op("Identity", [g], undefined, { outputNames: [name] });
    gradients.set(p, name);
    gradOutputs.push({ name, dtype: info.dtype, shape: info.shape });
  });

  const forwardNodes: Node[] = graph.nodes.map((n, i) => {
    const outs = patchedOutputs.get(i);
    return outs === undefined ? n : { ...n, outputs: outs };
  });
  const keepInfos = (options.keep ?? []).map((k) => {
    const info = e.info(k);
    if (info === undefined) throw new AutodidactError(`keep: "${k}" is not a value of the graph`, Code.InvalidArgument);
    return info;
  });
  const outputs = [lossInfo, ...keepInfos, ...gradOutputs];
  const allNodes = [...forwardNodes, ...e.nodes];
  usesContrib = e.nodes.some((n) => n.domain === MS_DOMAIN);

  // Dead-code elimination from the outputs.
  const needed = new Set(outputs.map((o) => o.name));
  const kept: Node[] = [];
  for (let i = allNodes.length - 1; i >= 0; i--) {
    const n = allNodes[i]!;
    if (!n.outputs.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const x of n.inputs) if (x !== "") needed.add(x);
  }
  kept.reverse();
  const initializers: TensorData[] = [...graph.initializers, ...e.initializers].filter((t) => needed.has(t.name));
  const outNames = new Set(outputs.map((o) => o.name));
  const producedKept = new Set(kept.flatMap((n) => n.outputs));
  const valueInfo = graph.valueInfo.filter((v) => producedKept.has(v.name) && !outNames.has(v.name));

  return {
    graph: { name: `${graph.name}_train`, inputs: graph.inputs, outputs, nodes: kept, initializers, valueInfo },
    gradients,
    usesContrib,
  };
}

/** Like {@link buildGradientGraph}, at the model level: keeps opsets and adds com.microsoft if needed. */
export function buildGradientModel(model: Model, options: GradientOptions): { model: Model; gradients: ReadonlyMap<string, string> } {
  const { graph, gradients, usesContrib } = buildGradientGraph(model.graph, options);
  const opsets = [...model.opsets];
  if ((usesContrib || graph.nodes.some((n) => n.domain === MS_DOMAIN)) && !opsets.some((o) => o.domain === MS_DOMAIN)) {
    opsets.push({ domain: MS_DOMAIN, version: MS_OPSET });
  }
  return { model: { ...model, graph, opsets }, gradients };
}

/**
 * Makes the backward node that computes `g` write `name` directly when nothing else reads `g`:
 * saves an Identity copy per gradient (3 MB per step for the reference model), and lets ORT write
 * the gradient straight into a caller's pre-allocated output. False when it does not apply.
 */
function renameOutput(e: GraphEmitter, g: string, name: string): boolean {
  let at = -1;
  for (let i = 0; i < e.nodes.length; i++) {
    const n = e.nodes[i]!;
    if (n.inputs.includes(g)) return false;
    if (n.outputs.includes(g)) at = i;
  }
  if (at < 0) return false;
  const producer = e.nodes[at]!;
  e.nodes[at] = { ...producer, outputs: producer.outputs.map((o) => (o === g ? name : o)) };
  const info = e.info(g);
  if (info !== undefined) e.declare(name, info.dtype, info.shape);
  return true;
}

function shapeOf(e: GraphEmitter, name: string, cache: Map<string, string>): string {
  const info = e.info(name);
  if (info !== undefined && isStatic(info.shape)) return e.int64(info.shape, [info.shape.length]);
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const s = e.op("Shape", [name]);
  cache.set(name, s);
  return s;
}

function makeContext(
  e: GraphEmitter,
  node: Node,
  idx: number,
  contrib: boolean,
  requiresGrad: ReadonlySet<string>,
  reachesLoss: ReadonlySet<string>,
  shapeCache: Map<string, string>,
  patched: Map<number, string[]>,
): RuleContext {
  const info = (name: string): ValueInfo => {
    const v = e.info(name);
    if (v === undefined) {
      throw new AutodidactError(`autodiff needs the type and shape of "${name}" (node ${node.op}); declare it in valueInfo`, Code.FailedPrecondition);
    }
    return v;
  };
  const ctx: RuleContext = {
    e,
    node,
    contrib,
    needs: (i) => {
      const x = node.inputs[i];
      return x !== undefined && x !== "" && requiresGrad.has(x) && reachesLoss.has(x);
    },
    info,
    shapeOf: (name) => shapeOf(e, name, shapeCache),
    unbroadcast: (g, gShape, target) => unbroadcast(ctx, g, gShape, info(target).shape, target),
    forwardOutput: (index) => {
      const outs = patched.get(idx) ?? [...node.outputs];
      while (outs.length <= index) outs.push("");
      if (outs[index] === "") {
        outs[index] = e.fresh(`${node.op}_out${index}`);
        patched.set(idx, outs);
      }
      return outs[index]!;
    },
    attr: (name) => node.attrs?.[name],
    int: (name, fallback) => {
      const a = node.attrs?.[name];
      return a?.kind === "int" ? a.value : fallback;
    },
    float: (name, fallback) => {
      const a = node.attrs?.[name];
      return a?.kind === "float" || a?.kind === "int" ? a.value : fallback;
    },
    ints: (name) => {
      const a = node.attrs?.[name];
      return a?.kind === "ints" ? a.value : null;
    },
  };
  return ctx;
}

/**
 * Sums a gradient over the axes numpy broadcasting expanded, so it takes the target's shape.
 * Decided statically from declared shapes when possible; otherwise computed at run time.
 */
function unbroadcast(c: RuleContext, g: string, gShape: Shape, ts: Shape, target: string): string {
  const rg = gShape.length;
  const rt = ts.length;
  if (rt > rg) throw new AutodidactError(`unbroadcast: target rank ${rt} > gradient rank ${rg}`, Code.Internal);
  const lead = rg - rt;
  const axes = Array.from({ length: lead }, (_, i) => i);
  let inner = false;
  let dynamic = false;
  for (let i = 0; i < rt; i++) {
    const td = ts[i];
    const gd = gShape[lead + i];
    if (td === 1) {
      if (gd !== 1) {
        axes.push(lead + i);
        inner = true;
      }
    } else if (td === null) dynamic = true;
  }
  if (dynamic) return unbroadcastDynamic(c, g, rg, rt, target);
  if (axes.length === 0) return g;
  if (!inner) return sumLeading(c, g, gShape, lead, ts, target) ?? reduceSum(c, g, axes, false);
  return c.e.op("Reshape", [reduceSum(c, g, axes, true), c.shapeOf(target)]);
}

/** Below this many summed rows ReduceSum is kept (the ones vector would outweigh the gain). */
const SUM_ROWS_BY_MATMUL = 256;

/**
 * The sum over the `lead` leading axes of a static float tensor as ONE product ones[1,R]·g[R,T]
 * (null when it does not apply). Parameter gradients of norms and biases are such sums over every
 * token; in the reference training step ORT's ReduceSum took 0.10–0.15 ms per [64,48,128] → [128]
 * sum and the product about half that (18 sums: 1.79 → 0.8 ms in one profile).
 */
function sumLeading(c: RuleContext, g: string, gShape: Shape, lead: number, ts: Shape, target: string): string | null {
  // A gradient has the dtype of what it is the gradient of.
  const dtype = c.info(target).dtype;
  if (dtype !== "float32" && dtype !== "float64") return null;
  const rows = shapeSize(gShape.slice(0, lead));
  const cols = shapeSize(gShape.slice(lead));
  if (rows === null || cols === null || rows < SUM_ROWS_BY_MATMUL) return null;
  const ones = c.e.float(new Array<number>(rows).fill(1), dtype, [1, rows]);
  const product = c.e.op("MatMul", [ones, c.e.op("Reshape", [g, c.e.int64([rows, cols])])]);
  return c.e.op("Reshape", [product, c.e.int64(ts.map((d) => d as number))]);
}

function unbroadcastDynamic(c: RuleContext, g: string, rg: number, rt: number, target: string): string {
  const e = c.e;
  const padded = rg > rt ? e.op("Concat", [e.int64(new Array<number>(rg - rt).fill(1)), c.shapeOf(target)], { axis: attr.int(0) }) : c.shapeOf(target);
  const ones = e.op("Equal", [padded, e.int64([1], [])]);
  const axes = e.op("Reshape", [e.op("NonZero", [ones]), e.int64([-1])]);
  const summed = e.op("ReduceSum", [g, axes], { keepdims: attr.int(1), noop_with_empty_axes: attr.int(1) });
  return e.op("Reshape", [summed, c.shapeOf(target)]);
}
