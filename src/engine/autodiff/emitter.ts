import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Attrs, DType, Graph, Node, Shape, TensorData, ValueInfo } from "../graph/ir.js";

/**
 * Appends nodes and constants to a graph under construction with collision-free names.
 *
 * It exists so gradient rules can say `e.op("Mul", [a, b])` and get back a fresh value name,
 * without each rule inventing names, tracking initializers or de-duplicating constants.
 */
export class GraphEmitter {
  /** Nodes emitted so far, in emission (= topological) order. */
  readonly nodes: Node[] = [];
  /** Constants emitted so far (initializers of the final graph). */
  readonly initializers: TensorData[] = [];
  /** Type/shape of every value known to the emitter: the source graph's plus what rules declared. */
  readonly infos = new Map<string, ValueInfo>();
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private readonly constValues = new Map<string, readonly number[]>();
  private readonly floatValues = new Map<string, number>();
  private counter = 0;

  constructor(
    source: Graph,
    private readonly prefix: string,
  ) {
    for (const v of source.inputs) this.addInfo(v);
    for (const v of source.valueInfo) this.addInfo(v);
    for (const v of source.outputs) this.addInfo(v);
    for (const t of source.initializers) {
      this.used.add(t.name);
      this.addInfo({ name: t.name, dtype: t.dtype, shape: t.dims });
      if (t.dtype === "int64" || t.dtype === "int32") {
        this.constValues.set(t.name, Array.from(t.data as ArrayLike<number | bigint>, Number));
      } else if ((t.dtype === "float32" || t.dtype === "float64") && t.data.length === 1) {
        this.floatValues.set(t.name, Number(t.data[0]));
      }
    }
    for (const n of source.nodes) {
      for (const o of n.outputs) if (o !== "") this.used.add(o);
      if (n.op === "Constant" && (n.domain ?? "") === "" && n.outputs[0] !== undefined) {
        const value = n.attrs?.["value"];
        if (value?.kind === "tensor" && (value.value.dtype === "int64" || value.value.dtype === "int32")) {
          this.constValues.set(n.outputs[0], Array.from(value.value.data as ArrayLike<number | bigint>, Number));
          this.addInfo({ name: n.outputs[0], dtype: value.value.dtype, shape: value.value.dims });
        }
        if (value?.kind === "tensor" && (value.value.dtype === "float32" || value.value.dtype === "float64") && value.value.data.length === 1) {
          this.floatValues.set(n.outputs[0], Number(value.value.data[0]));
        }
        const fl = n.attrs?.["value_float"];
        if (fl?.kind === "float") this.floatValues.set(n.outputs[0], fl.value);
        const ints = n.attrs?.["value_ints"];
        if (ints?.kind === "ints") this.constValues.set(n.outputs[0], ints.value);
        const int = n.attrs?.["value_int"];
        if (int?.kind === "int") this.constValues.set(n.outputs[0], [int.value]);
      }
    }
  }

  private addInfo(v: ValueInfo): void {
    this.used.add(v.name);
    this.infos.set(v.name, v);
  }

  /** A name no value of the graph uses yet, readable in dumps (`grad/Mul_12`). */
  fresh(hint: string): string {
    let name: string;
    do {
      name = `${this.prefix}${hint}_${this.counter++}`;
    } while (this.used.has(name));
    this.used.add(name);
    return name;
  }

  /** Reserves a caller-chosen name; throws if some value already has it. */
  reserve(name: string): string {
    if (this.used.has(name)) {
      throw new AutodidactError(`value name "${name}" is already used in the graph`, Code.InvalidArgument);
    }
    this.used.add(name);
    return name;
  }

  /** Emits a single-output node and returns the output's name. */
  op(op: string, inputs: readonly string[], attrs?: Attrs, options: EmitOptions = {}): string {
    return this.opN(op, inputs, 1, attrs, options)[0]!;
  }

  /** Emits a node with `outputs` outputs and returns their names. */
  opN(op: string, inputs: readonly string[], outputs: number, attrs?: Attrs, options: EmitOptions = {}): string[] {
    const names = options.outputNames ?? Array.from({ length: outputs }, () => this.fresh(op));
    const node: Node = {
      op,
      inputs: [...inputs],
      outputs: names,
      ...(options.domain !== undefined && options.domain !== "" ? { domain: options.domain } : {}),
      ...(attrs !== undefined ? { attrs } : {}),
      name: this.fresh(`node_${op}`),
    };
    this.nodes.push(node);
    if (options.dtype !== undefined && options.shape !== undefined && names[0] !== undefined) {
      this.infos.set(names[0], { name: names[0], dtype: options.dtype, shape: options.shape });
    }
    return names;
  }

  /** An int64 constant (shapes, axes, pads); identical constants share one initializer. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i64:${dims.join(",")}:${values.join(",")}`;
    const hit = this.constCache.get(key);
    if (hit !== undefined) return hit;
    const name = this.fresh("const_i64");
    this.initializers.push({ name, dtype: "int64", dims: [...dims], data: BigInt64Array.from(values, (v) => BigInt(v)) });
    this.infos.set(name, { name, dtype: "int64", shape: [...dims] });
    this.constValues.set(name, values);
    this.constCache.set(key, name);
    return name;
  }

  /** A floating constant of the given dtype and dims (a scalar by default). */
  float(value: number | readonly number[], dtype: DType, dims: readonly number[] = []): string {
    const values = typeof value === "number" ? [value] : value;
    const key = `${dtype}:${dims.join(",")}:${values.join(",")}`;
    const hit = this.constCache.get(key);
    if (hit !== undefined) return hit;
    const name = this.fresh("const_f");
    let data: Float32Array | Float64Array;
    if (dtype === "float32") data = Float32Array.from(values);
    else if (dtype === "float64") data = Float64Array.from(values);
    else throw new AutodidactError(`float constant of non-float dtype ${dtype}`, Code.Internal);
    this.initializers.push({ name, dtype, dims: [...dims], data });
    this.infos.set(name, { name, dtype, shape: [...dims] });
    this.constCache.set(key, name);
    if (values.length === 1) this.floatValues.set(name, values[0]!);
    return name;
  }

  /** The constant integer contents of a value (initializer or Constant node), or null if not constant. */
  intConstant(name: string): readonly number[] | null {
    return this.constValues.get(name) ?? null;
  }

  /** The value of a constant float scalar (initializer or Constant node), or null. */
  floatConstant(name: string): number | null {
    return this.floatValues.get(name) ?? null;
  }

  /** Type/shape of a value, or undefined if nothing declared it. */
  info(name: string): ValueInfo | undefined {
    return this.infos.get(name);
  }

  /** Records the type/shape of a value a rule emitted, so later rules can rely on it. */
  declare(name: string, dtype: DType, shape: Shape): void {
    this.infos.set(name, { name, dtype, shape });
  }
}

/** Options of {@link GraphEmitter.op}. */
export interface EmitOptions {
  /** Operator domain; `""` (ONNX) by default. */
  readonly domain?: string;
  /** Use these output names instead of fresh ones. */
  readonly outputNames?: string[];
  /** Declared dtype of the (first) output. */
  readonly dtype?: DType;
  /** Declared shape of the (first) output. */
  readonly shape?: Shape;
}
