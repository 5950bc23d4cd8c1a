import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Dim, DType, DTypeArrayMap, TensorArray } from "../graph/ir.js";

/**
 * A tensor on the JS heap: dtype, dims and a typed array. This is what crosses the runtime API
 * (and worker boundaries), so no caller ever touches onnxruntime's own Tensor class.
 */
export interface HostTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: DTypeArrayMap[D];
}

/** Named tensors: session feeds and results. */
export type TensorMap = Record<string, HostTensor>;

/** Type and shape of a session input or output as the model declares it. */
export interface ValueMeta {
  readonly name: string;
  /** Engine dtype, or the raw ORT type string when the engine does not handle it (e.g. "float16"). */
  readonly dtype: DType | string;
  /** Declared shape; symbolic dims as names, unknown as null. Empty for non-tensor values. */
  readonly shape: readonly Dim[];
}

/** Allocates a zero tensor of a dtype and static shape. */
export function zeros<D extends DType>(dtype: D, dims: readonly number[]): HostTensor<D> {
  const n = dims.reduce((a, b) => a * b, 1);
  return { dtype, dims: [...dims], data: allocate(dtype, n) };
}

/** Wraps a typed array as a tensor, checking that its length matches the dims. */
export function tensor<D extends DType>(dtype: D, dims: readonly number[], data: DTypeArrayMap[D]): HostTensor<D> {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new AutodidactError(`tensor of dims [${dims.join(",")}] needs ${n} elements, got ${data.length}`, Code.InvalidArgument);
  }
  return { dtype, dims: [...dims], data };
}

/** A new typed array of the dtype's array class. */
export function allocate<D extends DType>(dtype: D, n: number): DTypeArrayMap[D] {
  return arrayFor(dtype, new ArrayBuffer(n * bytesPer(dtype)), 0, n) as DTypeArrayMap[D];
}

/** Bytes per element of a dtype. */
export function bytesPer(dtype: DType): number {
  switch (dtype) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "bool":
      return 1;
  }
}

/** A typed-array view of the dtype over a buffer (used when rebuilding tensors after transfer). */
export function arrayFor(dtype: DType, buffer: ArrayBufferLike, byteOffset: number, length: number): TensorArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(buffer, byteOffset, length);
    case "float64":
      return new Float64Array(buffer, byteOffset, length);
    case "int32":
      return new Int32Array(buffer, byteOffset, length);
    case "int64":
      return new BigInt64Array(buffer, byteOffset, length);
    case "bool":
      return new Uint8Array(buffer, byteOffset, length);
  }
}
