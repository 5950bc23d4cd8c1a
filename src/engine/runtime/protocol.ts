import { AutodidactError, Code, toCode } from "../../platform/errors/index.js";
import type { DType } from "../graph/ir.js";
import type { SessionOptions } from "./session.js";
import { arrayFor, type HostTensor, type TensorMap, type ValueMeta } from "./tensor.js";

/**
 * Messages between the main thread and model workers. Tensors travel as (dtype, dims, buffer,
 * offset, length) so their ArrayBuffers can go in transfer lists instead of being copied.
 */

/** A tensor on the wire. */
export interface WireTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  readonly length: number;
}

/** Requests a worker handles. */
export type WorkerRequest =
  | { readonly kind: "load"; readonly id: number; readonly sessionId: string; readonly model: Uint8Array; readonly options: SessionOptions }
  | {
      readonly kind: "run";
      readonly id: number;
      readonly sessionId: string;
      readonly feeds: Record<string, WireTensor>;
      readonly outputNames?: readonly string[];
    }
  | { readonly kind: "release"; readonly id: number; readonly sessionId: string }
  | { readonly kind: "call"; readonly id: number; readonly module: string; readonly fn: string; readonly args: unknown };

/** Replies, matched to requests by id. */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly message: string; readonly code: number } };

/** What `load` answers. */
export interface LoadedInfo {
  readonly inputs: readonly ValueMeta[];
  readonly outputs: readonly ValueMeta[];
  readonly executionProvider: "cpu" | "cuda";
}

/** Encodes tensors for posting; adds their buffers to `transfer` when asked (zero copy). */
export function toWire(map: TensorMap, transfer: ArrayBuffer[] | null): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {};
  const seen = new Set<ArrayBufferLike>();
  for (const [name, t] of Object.entries(map)) {
    let data = t.data;
    if (transfer && !(data.buffer instanceof ArrayBuffer)) data = data.slice() as typeof data;
    out[name] = { dtype: t.dtype, dims: t.dims, buffer: data.buffer, byteOffset: data.byteOffset, length: data.length };
    if (transfer && !seen.has(data.buffer)) {
      seen.add(data.buffer);
      transfer.push(data.buffer as ArrayBuffer);
    }
  }
  return out;
}

/** Decodes posted tensors back into typed arrays (views over the received buffers). */
export function fromWire(map: Record<string, WireTensor>): TensorMap {
  const out: TensorMap = {};
  for (const [name, w] of Object.entries(map)) {
    out[name] = { dtype: w.dtype, dims: w.dims, data: arrayFor(w.dtype, w.buffer, w.byteOffset, w.length) } as HostTensor;
  }
  return out;
}

/** Serializable form of an error for a reply. */
export function errorToWire(e: unknown): { message: string; code: number } {
  const err = AutodidactError.from(e, Code.Internal);
  return { message: err.rawMessage, code: err.code };
}

/** Rebuilds an AutodidactError on the main thread from a reply. */
export function errorFromWire(e: { message: string; code: number }): AutodidactError {
  return new AutodidactError(e.message, toCode(e.code));
}
