// Longer than the project's ~500-line guide on purpose: GraphBuilder is the engine's ONNX vocabulary,
// one small method per op with its shape inference; kept in one class so an op is found where the
// others are, and the model files read as plain calls on it.
import { AutodidactError, Code } from "../../platform/errors/index.js";
import {
  attr,
  DEFAULT_OPSET,
  MS_DOMAIN,
  MS_OPSET,
  type Attrs,
  type Dim,
  type DType,
  type DTypeArrayMap,
  type Graph,
  type Model,
  type Node,
  type OpsetImport,
  type Shape,
  type TensorData,
  type ValueInfo,
} from "./ir.js";
import { broadcastShapes, matMulShape, normAxis, reshapeShape, unifyDim, fmt } from "./shape.js";

/** A value handle or its name; builder helpers accept either. */
export type ValueRef = ValueInfo | string;

/** Options of the generic {@link GraphBuilder.op}. */
export interface OpOptions {
  readonly domain?: string;
  readonly attrs?: Attrs;
  /** Output names (default: fresh names derived from the op). */
  readonly names?: readonly string[];
  /** Node name (diagnostics). */
  readonly nodeName?: string;
}

/** Output type of an op whose inference the builder does not know. */
export interface OutputType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/**
 * Builds an IR {@link Graph} op by op, inferring dtype and shape of every value as it goes, so
 * model code stays short and autodiff can later ask any value for its shape. Names are unique
 * per builder; the helpers only emit standard ONNX ops unless their name says otherwise.
 * `GraphBuilder.extend(graph)` continues an existing graph (e.g. forward → training graph).
 */
export class GraphBuilder {
  readonly name: string;
  private readonly inputsList: ValueInfo[] = [];
  private readonly outputsList: ValueInfo[] = [];
  private readonly nodesList: Node[] = [];
  private readonly inits: TensorData[] = [];
  private readonly values = new Map<string, ValueInfo>();
  /** Value names, counter and imported domains: one set per model, shared with subgraph builders. */
  private readonly shared: { readonly used: Set<string>; readonly domains: Map<string, number>; counter: number };
  private readonly parent: GraphBuilder | null;
  private readonly constCache = new Map<string, ValueInfo>();

  constructor(name = "graph", parent: GraphBuilder | null = null) {
    this.name = name;
    this.parent = parent;
    this.shared = parent ? parent.shared : { used: new Set(), domains: new Map(), counter: 0 };
  }

  /**
   * A builder for a subgraph (a Loop body): it reads this graph's values by name (ONNX outer
   * scope) and shares its name space, so no subgraph value shadows an outer one. Build it with
   * `build()` and pass the result as a GRAPH attribute (see {@link GraphBuilder.loop}).
   */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this);
  }

  /** Starts a builder that appends to a copy of `graph` (its values, names and outputs kept). */
  static extend(graph: Graph, opsets: readonly OpsetImport[] = []): GraphBuilder {
    const b = new GraphBuilder(graph.name);
    for (const v of graph.inputs) b.register(v, b.inputsList);
    for (const t of graph.initializers) {
      b.inits.push(t);
      b.register({ name: t.name, dtype: t.dtype, shape: t.dims });
    }
    for (const v of graph.valueInfo) b.register(v);
    for (const n of graph.nodes) {
      b.nodesList.push(n);
      for (const o of n.outputs) if (o !== "") b.shared.used.add(o);
      if (n.domain && n.domain !== "") b.useDomain(n.domain);
    }
    for (const v of graph.outputs) {
      b.outputsList.push(v);
      if (!b.values.has(v.name)) b.values.set(v.name, v);
    }
    for (const o of opsets) if (o.domain !== "") b.useDomain(o.domain, o.version);
    return b;
  }

  // ---------------------------------------------------------------- values

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: Shape): ValueInfo {
    return this.register({ name, dtype, shape: [...shape] }, this.inputsList);
  }

  /** Adds a named constant tensor (initializer) and returns its value. */
  initializer<D extends DType>(name: string, dtype: D, dims: readonly number[], data: DTypeArrayMap[D]): ValueInfo {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) {
      throw new AutodidactError(`initializer ${name}: ${data.length} elements for dims [${dims.join(",")}]`, Code.InvalidArgument);
    }
    this.inits.push({ name, dtype, dims: [...dims], data } as TensorData);
    return this.register({ name, dtype, shape: [...dims] });
  }

  /** An anonymous constant (deduplicated per builder); small shape/axes tensors mostly. */
  constant<D extends DType>(dtype: D, dims: readonly number[], data: DTypeArrayMap[D]): ValueInfo {
    const key = data.length <= 16 ? `${dtype}|${dims.join(",")}|${Array.from(data as ArrayLike<number | bigint>, String).join(",")}` : null;
    const hit = key === null ? undefined : this.constCache.get(key);
    if (hit) return hit;
    const v = this.initializer(this.fresh("const"), dtype, dims, data);
    if (key !== null) this.constCache.set(key, v);
    return v;
  }

  /** int64 1-D constant, the form Reshape/Slice/Unsqueeze/Expand take their parameters in. */
  ints(values: readonly number[]): ValueInfo {
    return this.constant("int64", [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Scalar constant of a given float/int dtype. */
  scalar(value: number, dtype: DType = "float32"): ValueInfo {
    switch (dtype) {
      case "float32":
        return this.constant("float32", [], Float32Array.of(value));
      case "float64":
        return this.constant("float64", [], Float64Array.of(value));
      case "int32":
        return this.constant("int32", [], Int32Array.of(value));
      case "int64":
        return this.constant("int64", [], BigInt64Array.of(BigInt(value)));
      case "bool":
        return this.constant("bool", [], Uint8Array.of(value ? 1 : 0));
    }
  }

  /** Marks a value as a graph output, optionally renaming it through an Identity node. */
  output(ref: ValueRef, name?: string): ValueInfo {
    let v = this.get(typeof ref === "string" ? ref : ref.name);
    if (name !== undefined && name !== v.name) v = this.unary("Identity", v, name);
    this.outputsList.push(v);
    return v;
  }

  /**
   * Replaces the inferred shape of a node output with a more precise one the caller knows (e.g.
   * naming a symbolic `past + new` length); call before the value is used as a graph output.
   */
  refine(ref: ValueRef, shape: Shape): ValueInfo {
    const v = this.get(ref);
    const refined: ValueInfo = { name: v.name, dtype: v.dtype, shape: [...shape] };
    this.values.set(v.name, refined);
    return refined;
  }

  /** Looks a value up by name (or returns the handle); throws on unknown names. */
  get(ref: ValueRef): ValueInfo {
    if (typeof ref !== "string") return ref;
    const v = this.values.get(ref);
    if (v) return v;
    if (this.parent?.has(ref)) return this.parent.get(ref);
    throw new AutodidactError(`unknown value "${ref}"`, Code.InvalidArgument);
  }

  /** True if a value of that name exists in the graph (or, for a subgraph, an enclosing one). */
  has(name: string): boolean {
    return this.values.has(name) || (this.parent?.has(name) ?? false);
  }

  /** A new unique value name with a readable prefix. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.shared.counter++}`;
    while (this.shared.used.has(name));
    return name;
  }

  /** Records that the graph uses a non-default domain (so the serializer imports its opset). */
  useDomain(domain: string, version = domain === MS_DOMAIN ? MS_OPSET : 1): void {
    if (domain !== "" && !this.shared.domains.has(domain)) this.shared.domains.set(domain, version);
  }

  // ---------------------------------------------------------------- generic op

  /** Emits any op; the caller states output types (use the typed helpers where they exist). */
  op(op: string, inputs: readonly (ValueRef | null)[], outputs: readonly OutputType[], options: OpOptions = {}): ValueInfo[] {
    const ins = inputs.map((i) => (i === null ? "" : this.get(i).name));
    const outs = outputs.map((t, k) => {
      const name = options.names?.[k] ?? this.fresh(op.toLowerCase());
      return this.register({ name, dtype: t.dtype, shape: [...t.shape] });
    });
    if (options.domain) this.useDomain(options.domain);
    const node: Node = {
      op,
      inputs: ins,
      outputs: outs.map((o) => o.name),
      ...(options.domain ? { domain: options.domain } : {}),
      ...(options.attrs && Object.keys(options.attrs).length > 0 ? { attrs: options.attrs } : {}),
      ...(options.nodeName ? { name: options.nodeName } : {}),
    };
    this.nodesList.push(node);
    return outs;
  }

  private one(op: string, inputs: readonly (ValueRef | null)[], out: OutputType, name?: string, attrs?: Attrs, domain?: string): ValueInfo {
    const [v] = this.op(op, inputs, [out], {
      ...(name ? { names: [name] } : {}),
      ...(attrs ? { attrs } : {}),
      ...(domain ? { domain } : {}),
    });
    return v as ValueInfo;
  }

  // ---------------------------------------------------------------- elementwise

  /** Same-shape unary op (Identity, Neg, Exp, Log, Sqrt, Tanh, Erf, Sigmoid, Relu, Reciprocal, Abs...). */
  unary(op: string, x: ValueRef, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one(op, [v], { dtype: v.dtype, shape: v.shape }, name);
  }

  /** Broadcasting binary op (Add, Sub, Mul, Div, Pow, Max, Min) — output has `a`'s dtype. */
  binary(op: string, a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    const va = this.get(a);
    const vb = this.get(b);
    if (op !== "Pow" && va.dtype !== vb.dtype) {
      throw new AutodidactError(`${op}: dtype ${va.dtype} vs ${vb.dtype} (${va.name}, ${vb.name})`, Code.InvalidArgument);
    }
    return this.one(op, [va, vb], { dtype: va.dtype, shape: broadcastShapes([va.shape, vb.shape], op) }, name);
  }

  /** Broadcasting comparison (Equal, Less, Greater, LessOrEqual, GreaterOrEqual) → bool. */
  compare(op: string, a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    const va = this.get(a);
    const vb = this.get(b);
    return this.one(op, [va, vb], { dtype: "bool", shape: broadcastShapes([va.shape, vb.shape], op) }, name);
  }

  add(a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    return this.binary("Add", a, b, name);
  }
  sub(a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    return this.binary("Sub", a, b, name);
  }
  mul(a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    return this.binary("Mul", a, b, name);
  }
  div(a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    return this.binary("Div", a, b, name);
  }
  pow(a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    return this.binary("Pow", a, b, name);
  }
  neg(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Neg", x, name);
  }
  exp(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Exp", x, name);
  }
  log(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Log", x, name);
  }
  sqrt(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Sqrt", x, name);
  }
  tanh(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Tanh", x, name);
  }
  erf(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Erf", x, name);
  }
  identity(x: ValueRef, name?: string): ValueInfo {
    return this.unary("Identity", x, name);
  }

  /** Where(cond, a, b) with three-way broadcasting. */
  where(cond: ValueRef, a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    const [c, va, vb] = [this.get(cond), this.get(a), this.get(b)];
    if (va.dtype !== vb.dtype) throw new AutodidactError(`Where: dtype ${va.dtype} vs ${vb.dtype}`, Code.InvalidArgument);
    return this.one("Where", [c, va, vb], { dtype: va.dtype, shape: broadcastShapes([c.shape, va.shape, vb.shape], "Where") }, name);
  }

  /** Cast to another dtype. */
  cast(x: ValueRef, to: DType, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Cast", [v], { dtype: to, shape: v.shape }, name, { to: attr.int(onnxTypeCode(to)) });
  }

  // ---------------------------------------------------------------- linear algebra

  /** MatMul with numpy broadcasting of batch dims. */
  matMul(a: ValueRef, b: ValueRef, name?: string): ValueInfo {
    const [va, vb] = [this.get(a), this.get(b)];
    if (va.dtype !== vb.dtype) throw new AutodidactError(`MatMul: dtype ${va.dtype} vs ${vb.dtype}`, Code.InvalidArgument);
    return this.one("MatMul", [va, vb], { dtype: va.dtype, shape: matMulShape(va.shape, vb.shape) }, name);
  }

  /** Gemm-free linear layer: x·W (+ b), W stored [in, out] as ONNX MatMul expects. */
  linear(x: ValueRef, w: ValueRef, b?: ValueRef, name?: string): ValueInfo {
    const y = this.matMul(x, w, b === undefined ? name : undefined);
    return b === undefined ? y : this.add(y, b, name);
  }

  // ---------------------------------------------------------------- shape ops

  /** Reshape to a constant target shape (0 copies a dim, -1 infers one). */
  reshape(x: ValueRef, target: readonly number[], name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Reshape", [v, this.ints(target)], { dtype: v.dtype, shape: reshapeShape(v.shape, target) }, name);
  }

  /** Reshape to a shape computed at run time (e.g. from Shape/Concat); output shape given by caller. */
  reshapeDynamic(x: ValueRef, shape: ValueRef, outShape: Shape, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Reshape", [v, shape], { dtype: v.dtype, shape: outShape }, name);
  }

  /** Transpose with an explicit permutation. */
  transpose(x: ValueRef, perm: readonly number[], name?: string): ValueInfo {
    const v = this.get(x);
    if (perm.length !== v.shape.length) {
      throw new AutodidactError(`Transpose: perm [${perm.join(",")}] for rank ${v.shape.length}`, Code.InvalidArgument);
    }
    return this.one("Transpose", [v], { dtype: v.dtype, shape: perm.map((p) => v.shape[p] as Dim) }, name, { perm: attr.ints(perm) });
  }

  /** Concat along an axis. */
  concat(xs: readonly ValueRef[], axis: number, name?: string): ValueInfo {
    const vs = xs.map((x) => this.get(x));
    const first = vs[0];
    if (!first) throw new AutodidactError("Concat of nothing", Code.InvalidArgument);
    const rank = first.shape.length;
    const ax = normAxis(axis, rank, "Concat");
    const shape: Dim[] = [...first.shape];
    let total: Dim = 0;
    for (const v of vs) {
      if (v.shape.length !== rank) throw new AutodidactError(`Concat: rank mismatch ${fmt(first.shape)} vs ${fmt(v.shape)}`, Code.InvalidArgument);
      for (let i = 0; i < rank; i++) if (i !== ax) shape[i] = unifyDim(shape[i] as Dim, v.shape[i] as Dim, "Concat");
      const d = v.shape[ax] as Dim;
      total = typeof total === "number" && typeof d === "number" ? total + d : null;
    }
    shape[ax] = total;
    return this.one("Concat", vs, { dtype: first.dtype, shape }, name, { axis: attr.int(ax) });
  }

  /** Slice with constant starts/ends/axes/steps (ONNX clamping semantics). */
  slice(x: ValueRef, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[], name?: string): ValueInfo {
    const v = this.get(x);
    const shape: Dim[] = [...v.shape];
    axes.forEach((a, k) => {
      const ax = normAxis(a, v.shape.length, "Slice");
      const d = v.shape[ax] as Dim;
      const step = steps?.[k] ?? 1;
      if (typeof d !== "number") {
        shape[ax] = null;
        return;
      }
      const clamp = (s: number, lo: number, hi: number): number => Math.min(Math.max(s < 0 ? s + d : s, lo), hi);
      const s = step > 0 ? clamp(starts[k] as number, 0, d) : clamp(starts[k] as number, -1, d - 1);
      const e = step > 0 ? clamp(ends[k] as number, 0, d) : clamp(ends[k] as number, -1, d - 1);
      shape[ax] = Math.max(0, Math.ceil((e - s) / step));
    });
    const ins: ValueRef[] = [v, this.ints(starts), this.ints(ends), this.ints(axes)];
    if (steps) ins.push(this.ints(steps));
    return this.one("Slice", ins, { dtype: v.dtype, shape }, name);
  }

  /** Slice with run-time bounds (the output shape is given by the caller). */
  sliceDynamic(x: ValueRef, starts: ValueRef, ends: ValueRef, axes: ValueRef, outShape: Shape, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Slice", [v, starts, ends, axes], { dtype: v.dtype, shape: outShape }, name);
  }

  /** Unsqueeze (axes as an input, opset 13+). */
  unsqueeze(x: ValueRef, axes: readonly number[], name?: string): ValueInfo {
    const v = this.get(x);
    const rank = v.shape.length + axes.length;
    const norm = axes.map((a) => normAxis(a, rank, "Unsqueeze")).sort((p, q) => p - q);
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : (v.shape[j++] as Dim));
    return this.one("Unsqueeze", [v, this.ints(axes)], { dtype: v.dtype, shape }, name);
  }

  /** Squeeze the given axes (opset 13+). */
  squeeze(x: ValueRef, axes: readonly number[], name?: string): ValueInfo {
    const v = this.get(x);
    const norm = axes.map((a) => normAxis(a, v.shape.length, "Squeeze"));
    return this.one("Squeeze", [v, this.ints(axes)], { dtype: v.dtype, shape: v.shape.filter((_, i) => !norm.includes(i)) }, name);
  }

  /** Gather along an axis (embedding lookup with axis 0). */
  gather(data: ValueRef, indices: ValueRef, axis = 0, name?: string): ValueInfo {
    const [d, i] = [this.get(data), this.get(indices)];
    const ax = normAxis(axis, d.shape.length, "Gather");
    const shape = [...d.shape.slice(0, ax), ...i.shape, ...d.shape.slice(ax + 1)];
    return this.one("Gather", [d, i], { dtype: d.dtype, shape }, name, { axis: attr.int(ax) });
  }

  /** Expand to a constant target shape (numpy broadcasting). */
  expand(x: ValueRef, target: readonly number[], name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Expand", [v, this.ints(target)], { dtype: v.dtype, shape: broadcastShapes([v.shape, target], "Expand") }, name);
  }

  /** Shape(x) → int64 [rank]. */
  shapeOf(x: ValueRef, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Shape", [v], { dtype: "int64", shape: [v.shape.length] }, name);
  }

  // ---------------------------------------------------------------- reductions & nn

  /** ReduceMean over axes (attribute form, opset ≤ 17). */
  reduceMean(x: ValueRef, axes: readonly number[], keepdims = true, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("ReduceMean", [v], { dtype: v.dtype, shape: reducedShape(v.shape, axes, keepdims) }, name, {
      axes: attr.ints(axes),
      keepdims: attr.int(keepdims ? 1 : 0),
    });
  }

  /** ReduceMax over axes (attribute form, opset ≤ 17). */
  reduceMax(x: ValueRef, axes: readonly number[], keepdims = true, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("ReduceMax", [v], { dtype: v.dtype, shape: reducedShape(v.shape, axes, keepdims) }, name, {
      axes: attr.ints(axes),
      keepdims: attr.int(keepdims ? 1 : 0),
    });
  }

  /** ReduceSum over axes (axes as an input since opset 13). */
  reduceSum(x: ValueRef, axes: readonly number[], keepdims = true, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("ReduceSum", [v, this.ints(axes)], { dtype: v.dtype, shape: reducedShape(v.shape, axes, keepdims) }, name, {
      keepdims: attr.int(keepdims ? 1 : 0),
    });
  }

  /** Softmax along an axis (opset 13+ semantics: a single axis). */
  softmax(x: ValueRef, axis = -1, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Softmax", [v], { dtype: v.dtype, shape: v.shape }, name, { axis: attr.int(axis) });
  }

  /** LogSoftmax along an axis. */
  logSoftmax(x: ValueRef, axis = -1, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("LogSoftmax", [v], { dtype: v.dtype, shape: v.shape }, name, { axis: attr.int(axis) });
  }

  /** ONNX LayerNormalization (opset 17) over the last axis; a fused op for serving graphs. */
  layerNorm(x: ValueRef, scale: ValueRef, bias: ValueRef | null, epsilon: number, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("LayerNormalization", [v, scale, bias], { dtype: v.dtype, shape: v.shape }, name, {
      axis: attr.int(-1),
      epsilon: attr.float(epsilon),
    });
  }

  /** com.microsoft Gelu (erf form), a contrib op for serving graphs. */
  msGelu(x: ValueRef, name?: string): ValueInfo {
    const v = this.get(x);
    return this.one("Gelu", [v], { dtype: v.dtype, shape: v.shape }, name, undefined, MS_DOMAIN);
  }

  // ---------------------------------------------------------------- control flow

  /**
   * ONNX Loop: runs `body` (built with {@link GraphBuilder.subgraph}; inputs: iteration int64 [],
   * cond bool [], then one per carried value; outputs: cond bool [], the carried values, then any
   * scan outputs) while the trip count `maxTrips` is not reached and cond holds. Returns the final
   * carried values, then each scan output stacked along a new first axis. Exists so a whole
   * decoding loop can run inside one session run.
   */
  loop(maxTrips: ValueRef | null, cond: ValueRef | null, carried: readonly ValueRef[], body: Graph, name?: string): ValueInfo[] {
    const n = carried.length;
    if (body.inputs.length !== n + 2 || body.outputs.length < n + 1) {
      throw new AutodidactError(`Loop body "${body.name}": ${body.inputs.length} inputs / ${body.outputs.length} outputs for ${n} carried values`, Code.InvalidArgument);
    }
    const outs: OutputType[] = [
      ...body.outputs.slice(1, n + 1).map((v, i) => ({ dtype: v.dtype, shape: this.get(carried[i] as ValueRef).shape.map((d, k) => (d === v.shape[k] ? d : null)) })),
      ...body.outputs.slice(n + 1).map((v) => ({ dtype: v.dtype, shape: [null, ...v.shape] })),
    ];
    return this.op("Loop", [maxTrips, cond, ...carried], outs, { attrs: { body: attr.graph(body) }, ...(name ? { nodeName: name } : {}) });
  }

  // ---------------------------------------------------------------- finish

  /** The graph built so far (a snapshot; the builder may continue). */
  build(): Graph {
    const declared = new Set([...this.inputsList.map((v) => v.name), ...this.inits.map((t) => t.name), ...this.outputsList.map((v) => v.name)]);
    const valueInfo: ValueInfo[] = [];
    for (const n of this.nodesList) {
      for (const o of n.outputs) {
        const v = this.values.get(o);
        if (v && !declared.has(o)) valueInfo.push(v);
      }
    }
    return {
      name: this.name,
      inputs: [...this.inputsList],
      outputs: [...this.outputsList],
      nodes: [...this.nodesList],
      initializers: [...this.inits],
      valueInfo,
    };
  }

  /** The graph wrapped into a model with the opsets it needs (ONNX opset 17 + used domains). */
  buildModel(options: { opset?: number; producerName?: string; metadata?: Record<string, string> } = {}): Model {
    const opsets: OpsetImport[] = [{ domain: "", version: options.opset ?? DEFAULT_OPSET }];
    for (const [domain, version] of this.shared.domains) opsets.push({ domain, version });
    return {
      graph: this.build(),
      opsets,
      producerName: options.producerName ?? "autodidact",
      ...(options.metadata ? { metadata: options.metadata } : {}),
    };
  }

  private register(v: ValueInfo, list?: ValueInfo[]): ValueInfo {
    if (this.shared.used.has(v.name)) throw new AutodidactError(`duplicate value name "${v.name}"`, Code.InvalidArgument);
    this.shared.used.add(v.name);
    this.values.set(v.name, v);
    list?.push(v);
    return v;
  }
}

function reducedShape(shape: Shape, axes: readonly number[], keepdims: boolean): Dim[] {
  const norm = axes.map((a) => normAxis(a, shape.length, "Reduce"));
  const out: Dim[] = [];
  shape.forEach((d, i) => {
    if (!norm.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** ONNX TensorProto.DataType code of a dtype (Cast's `to`, TensorProto.data_type). */
export function onnxTypeCode(dtype: DType): number {
  switch (dtype) {
    case "float32":
      return 1;
    case "int32":
      return 6;
    case "int64":
      return 7;
    case "bool":
      return 9;
    case "float64":
      return 11;
  }
}

/** Inverse of {@link onnxTypeCode}; null for types the engine does not handle. */
export function dtypeFromOnnx(code: number): DType | null {
  switch (code) {
    case 1:
      return "float32";
    case 6:
      return "int32";
    case 7:
      return "int64";
    case 9:
      return "bool";
    case 11:
      return "float64";
    default:
      return null;
  }
}

/** Creates an empty {@link GraphBuilder}. */
export function createGraphBuilder(name = "graph"): GraphBuilder {
  return new GraphBuilder(name);
}
