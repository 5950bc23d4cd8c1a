import { readFile } from "node:fs/promises";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { DType } from "../graph/ir.js";
import { arrayFor, bytesPer, type HostTensor } from "../runtime/tensor.js";

/**
 * safetensors, written and read by our own code: an 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}` padded with
 * spaces to 8 bytes, then the raw little-endian tensor bytes. It is the format Hugging Face and
 * PEFT use for weights, so checkpoints and adapters load in the Python ecosystem unchanged.
 */

const TO_ST: Record<DType, string> = { float32: "F32", float64: "F64", int32: "I32", int64: "I64", bool: "BOOL" };
const FROM_ST: Record<string, DType> = { F32: "float32", F64: "float64", I32: "int32", I64: "int64", BOOL: "bool" };

/** Largest header we accept (100 MB, as the reference implementation does). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Decoded content of a safetensors file. */
export interface SafetensorsContent {
  readonly tensors: Record<string, HostTensor>;
  readonly metadata: Record<string, string>;
}

/** Encodes named tensors (sorted by name for byte-stable output) and string metadata. */
export function encodeSafetensors(tensors: Readonly<Record<string, HostTensor>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors[name] as HostTensor;
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new AutodidactError(`tensor ${name}: ${t.data.length} elements for shape [${t.dims.join(",")}]`, Code.InvalidArgument);
    const bytes = n * bytesPer(t.dtype);
    header[name] = { dtype: TO_ST[t.dtype], shape: [...t.dims], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += " ".repeat(pad);
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors[name] as HostTensor;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Decodes a safetensors buffer, checking every length and offset. `source` (a file name) is put
 * in every error message. Corruption → DataLoss; unsupported dtypes → Unimplemented.
 */
export function decodeSafetensors(bytes: Uint8Array, source = "safetensors"): SafetensorsContent {
  const fail = (msg: string, code = Code.DataLoss): AutodidactError => new AutodidactError(`${source}: ${msg}`, code, { details: { file: source } });
  if (bytes.length < 8) throw fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) throw fail(`header length ${n} goes beyond the end of the file (${bytes.length} bytes)`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw fail(`header length ${n} exceeds ${MAX_HEADER_BYTES}`);
  const headerLen = Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString("utf8")) as Record<string, unknown>;
  } catch (cause) {
    throw new AutodidactError(`${source}: header is not valid JSON`, Code.DataLoss, { cause, details: { file: source } });
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) throw fail("header is not a JSON object");
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, HostTensor> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (entry && typeof entry === "object") for (const [k, v] of Object.entries(entry)) metadata[k] = String(v);
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e.dtype !== "string" || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
      throw fail(`tensor "${name}" has a malformed header entry`);
    }
    const half = e.dtype === "F16" || e.dtype === "BF16";
    const dtype = half ? "float32" : FROM_ST[e.dtype];
    if (!dtype) throw fail(`tensor "${name}" has unsupported dtype ${e.dtype}`, Code.Unimplemented);
    const shape = e.shape as unknown[];
    if (!shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) throw fail(`tensor "${name}" has an invalid shape`);
    const [begin, end] = e.data_offsets as [unknown, unknown];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || (begin as number) < 0 || (end as number) < (begin as number)) {
      throw fail(`tensor "${name}" has invalid data_offsets`);
    }
    const b0 = begin as number;
    const e0 = end as number;
    if (e0 > dataLen) throw fail(`tensor "${name}" data [${b0}, ${e0}) goes beyond the end of the file (${dataLen} data bytes): truncated?`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const width = half ? 2 : bytesPer(dtype);
    if (count * width !== e0 - b0) throw fail(`tensor "${name}" shape [${shape.join(",")}] ${e.dtype} needs ${count * width} bytes, offsets give ${e0 - b0}`);
    ranges.push([b0, e0, name]);
    if (half) {
      tensors[name] = { dtype: "float32", dims: shape as number[], data: widenHalf(bytes.subarray(dataStart + b0, dataStart + e0), e.dtype as "F16" | "BF16") };
      continue;
    }
    // Copy into an aligned buffer (offsets in the file need not be aligned for the element size).
    const copy = bytes.slice(dataStart + b0, dataStart + e0);
    tensors[name] = { dtype, dims: shape as number[], data: arrayFor(dtype, copy.buffer, 0, count) } as HostTensor;
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1] as [number, number, string];
    const cur = ranges[i] as [number, number, string];
    if (cur[0] < prev[1]) throw fail(`tensors "${prev[2]}" and "${cur[2]}" overlap`);
  }
  return { tensors, metadata };
}

/**
 * float16 / bfloat16 little-endian bytes → float32 values: checkpoints published in half
 * precision load into the engine, which computes in float32.
 */
export function widenHalf(bytes: Uint8Array, kind: "F16" | "BF16"): Float32Array {
  const n = bytes.length >> 1;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (kind === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
    return out;
  }
  for (let i = 0; i < n; i++) {
    const h = view.getUint16(2 * i, true);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac === 0 ? sign * Infinity : NaN;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Reads and decodes a safetensors file; errors name the path. */
export async function readSafetensors(path: string): Promise<SafetensorsContent> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new AutodidactError(`cannot read ${path}`, Code.NotFound, { cause, details: { file: path } });
  }
  return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}
