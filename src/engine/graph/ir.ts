/**
 * The engine's graph IR: a small, plain-data mirror of the ONNX graph model.
 *
 * It exists so that every part of the engine (the transformer builders, reverse-mode autodiff,
 * the training-graph emitter) can construct, inspect and rewrite graphs as ordinary TypeScript
 * values, and hand them to ONE serializer (`toModelProto` / `serialize`) that knows protobuf.
 * Nothing in here imports onnxruntime or protobuf.
 */

/** Element types the engine emits. Names match onnxruntime-node tensor type strings. */
export type DType = "float32" | "float64" | "int32" | "int64" | "bool";

/**
 * One dimension: a fixed size, or a symbolic name (`"batch"`, `"seq"`) that ONNX keeps as a
 * `dim_param`, or `null` when the size is unknown and unnamed.
 */
export type Dim = number | string | null;

/** A tensor shape (rank = length). */
export type Shape = readonly Dim[];

/** A named, typed value flowing through the graph (graph input, output, or node output). */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

/** The JS array type that holds the elements of each {@link DType}; bool is stored as 0/1 bytes. */
export interface DTypeArrayMap {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  int64: BigInt64Array;
  bool: Uint8Array;
}

/** Any element array the IR can hold. */
export type TensorArray = DTypeArrayMap[DType];

/** A constant tensor: a graph initializer or the payload of a tensor attribute. */
export interface TensorData<D extends DType = DType> {
  readonly name: string;
  readonly dtype: D;
  /** Fixed dimensions; the product must equal `data.length`. */
  readonly dims: readonly number[];
  readonly data: DTypeArrayMap[D];
}

/**
 * A node attribute, tagged with its ONNX kind, because a bare JS number cannot say whether it is
 * an INT or a FLOAT attribute (and ONNX kernels reject the wrong one).
 */
export type Attr =
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "ints"; readonly value: readonly number[] }
  | { readonly kind: "floats"; readonly value: readonly number[] }
  | { readonly kind: "strings"; readonly value: readonly string[] }
  | { readonly kind: "tensor"; readonly value: TensorData }
  /** A subgraph (Loop's `body`, If's branches); it may read values of the enclosing graphs by name. */
  | { readonly kind: "graph"; readonly value: Graph };

/** Attribute map of a node, keyed by ONNX attribute name. */
export type Attrs = Readonly<Record<string, Attr>>;

/** Constructors for {@link Attr}, so call sites read `attr.int(1)` instead of object literals. */
export const attr = {
  int: (value: number): Attr => ({ kind: "int", value }),
  float: (value: number): Attr => ({ kind: "float", value }),
  string: (value: string): Attr => ({ kind: "string", value }),
  ints: (value: readonly number[]): Attr => ({ kind: "ints", value }),
  floats: (value: readonly number[]): Attr => ({ kind: "floats", value }),
  strings: (value: readonly string[]): Attr => ({ kind: "strings", value }),
  tensor: (value: TensorData): Attr => ({ kind: "tensor", value }),
  graph: (value: Graph): Attr => ({ kind: "graph", value }),
} as const;

/** The ONNX default domain (`ai.onnx`), spelled as the empty string as in the protobuf. */
export const ONNX_DOMAIN = "";
/** Microsoft contrib-op domain (Gelu, FusedMatMul, MultiHeadAttention, ...), present in ORT CPU builds. */
export const MS_DOMAIN = "com.microsoft";
/**
 * Our own op domain, for nodes that exist only between autodiff and a rewrite into standard ops
 * (never in a model handed to ORT): `Gelu` with outputs [y, x/√2, Φ(x)], whose gradient rule
 * reuses the two forward intermediates instead of recomputing them.
 */
export const AD_DOMAIN = "ai.autodidact";

/**
 * One operation. Inputs and outputs are value names; an empty string marks an omitted optional
 * input or output, exactly as in ONNX.
 */
export interface Node {
  readonly op: string;
  /** `""` (default ONNX domain) when absent. */
  readonly domain?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: Attrs;
  /** Optional unique node name (diagnostics only). */
  readonly name?: string;
}

/**
 * A computation graph. `nodes` must be in topological order (ONNX requires it).
 * `valueInfo` carries the inferred type and shape of intermediate values, which autodiff needs
 * (e.g. to undo broadcasting) and which the serializer writes as `value_info`.
 */
export interface Graph {
  readonly name: string;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly nodes: readonly Node[];
  readonly initializers: readonly TensorData[];
  readonly valueInfo: readonly ValueInfo[];
}

/** An operator-set import: which version of a domain's operators the graph uses. */
export interface OpsetImport {
  readonly domain: string;
  readonly version: number;
}

/** A whole model: the graph plus the opsets it imports and producer metadata. */
export interface Model {
  readonly graph: Graph;
  readonly opsets: readonly OpsetImport[];
  readonly producerName?: string;
  readonly producerVersion?: string;
  /** Free-form key/value metadata (ONNX `metadata_props`). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Default opset of the ONNX domain the engine targets. */
export const DEFAULT_OPSET = 17;
/** Opset version of the com.microsoft domain when contrib ops are used. */
export const MS_OPSET = 1;

/** Number of elements of a fully static shape; throws-free: returns `null` if any dim is not a number. */
export function shapeSize(shape: Shape): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") return null;
    n *= d;
  }
  return n;
}
