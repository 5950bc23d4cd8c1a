import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Dim, DType } from "../graph/ir.js";
import { arrayFor, type HostTensor, type TensorMap, type ValueMeta } from "./tensor.js";

/** Which hardware runs the model. `auto` picks CUDA when this build and machine have it. */
export type ExecutionProvider = "cpu" | "cuda" | "auto";

/** Options of {@link createSession}. */
export interface SessionOptions {
  readonly executionProvider?: ExecutionProvider;
  /** Threads inside one op (ORT intra-op pool); default: ORT's choice. */
  readonly intraOpThreads?: number;
  readonly interOpThreads?: number;
  readonly graphOptimization?: "disabled" | "basic" | "extended" | "all";
  /**
   * Folder holding the external weights file(s) a model loaded from bytes refers to
   * (`model.onnx_data` of optimum exports above 2 GB); ORT refuses such models without it.
   */
  readonly externalDataDir?: string;
}

/**
 * A loaded model. `run` executes synchronously on the calling thread inside ORT, so call it only
 * inside a worker (see `createModelWorker`) — the main thread uses the worker API instead.
 */
export interface ModelSession {
  readonly inputs: readonly ValueMeta[];
  readonly outputs: readonly ValueMeta[];
  /** The provider actually running the model ("cpu" or "cuda"). */
  readonly executionProvider: "cpu" | "cuda";
  /**
   * Runs the model. `outputNames` defaults to all outputs; `preallocated` outputs are written in
   * place by ORT (no copy) and returned as given.
   */
  run(feeds: TensorMap, outputNames?: readonly string[], preallocated?: TensorMap): Promise<TensorMap>;
  release(): Promise<void>;
}

const SUPPORTED: ReadonlySet<string> = new Set(["float32", "float64", "int32", "int64", "bool"]);

let cudaCache: boolean | undefined;

/**
 * True if this onnxruntime-node install can use CUDA: the backend is known to the binding AND its
 * provider libraries were installed (they are skipped unless `ONNXRUNTIME_NODE_INSTALL=cuda12`).
 */
export function cudaAvailable(): boolean {
  if (cudaCache !== undefined) return cudaCache;
  let ok = ort.listSupportedBackends().some((b) => b.name === "cuda");
  if (ok) {
    try {
      const entry = createRequire(import.meta.url).resolve("onnxruntime-node");
      const dir = join(dirname(entry), "..", "bin", "napi-v6", process.platform, process.arch);
      ok = existsSync(join(dir, "libonnxruntime_providers_cuda.so")) || existsSync(join(dir, "onnxruntime_providers_cuda.dll"));
    } catch {
      ok = false;
    }
  }
  cudaCache = ok;
  return ok;
}

/**
 * The provider used when a caller names none: `AUTODIDACT_EXECUTION_PROVIDER` (cpu, cuda or auto;
 * default cpu), so a deployment (the GPU image and overlay set `auto`) moves every model to the GPU
 * without each caller passing an option.
 */
export function defaultExecutionProvider(): ExecutionProvider {
  const v = process.env["AUTODIDACT_EXECUTION_PROVIDER"];
  if (v === undefined || v === "") return "cpu";
  if (v === "cpu" || v === "cuda" || v === "auto") return v;
  throw new AutodidactError(`AUTODIDACT_EXECUTION_PROVIDER must be cpu, cuda or auto, not "${v}"`, Code.InvalidArgument);
}

/**
 * The provider sessions created with the default will run on ("cpu" or "cuda"), for services to
 * report in GetInfo. `auto` falls back to CPU if CUDA fails to start a session, which this cannot see.
 */
export function selectedExecutionProvider(): "cpu" | "cuda" {
  return defaultExecutionProvider() !== "cpu" && cudaAvailable() ? "cuda" : "cpu";
}

/** Creates a session from ONNX bytes; the only place that constructs onnxruntime sessions. */
export async function createSession(model: Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
  const want = options.executionProvider ?? defaultExecutionProvider();
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: options.graphOptimization ?? "all",
    logSeverityLevel: 3,
    ...(options.intraOpThreads !== undefined ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.interOpThreads !== undefined ? { interOpNumThreads: options.interOpThreads } : {}),
    ...(options.externalDataDir !== undefined ? { extra: { session: { model_external_initializers_file_folder_path: options.externalDataDir } } } : {}),
  };
  let session: ort.InferenceSession | undefined;
  let ep: "cpu" | "cuda" = "cpu";
  if (want !== "cpu" && cudaAvailable()) {
    try {
      session = await ort.InferenceSession.create(model, { ...base, executionProviders: ["cuda"] });
      ep = "cuda";
    } catch (cause) {
      if (want === "cuda") throw new AutodidactError("CUDA execution provider failed to start", Code.FailedPrecondition, { cause });
    }
  } else if (want === "cuda") {
    throw new AutodidactError("CUDA execution provider is not available in this onnxruntime-node build", Code.FailedPrecondition);
  }
  if (!session) {
    try {
      session = await ort.InferenceSession.create(model, { ...base, executionProviders: ["cpu"] });
    } catch (cause) {
      throw new AutodidactError(`cannot load ONNX model: ${(cause as Error).message ?? cause}`, Code.InvalidArgument, { cause });
    }
  }
  const s = session;
  const meta = (m: readonly ort.InferenceSession.ValueMetadata[]): ValueMeta[] =>
    m.map((v) =>
      v.isTensor
        ? { name: v.name, dtype: v.type, shape: v.shape.map((d): Dim => (typeof d === "number" ? (d < 0 ? null : d) : d)) }
        : { name: v.name, dtype: "non-tensor", shape: [] },
    );
  const inputs = meta(s.inputMetadata);
  const outputs = meta(s.outputMetadata);
  const outputNamesAll = outputs.map((o) => o.name);
  return {
    inputs,
    outputs,
    executionProvider: ep,
    async run(feeds, outputNames = outputNamesAll, preallocated) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t, name);
      const fetches: Record<string, ort.Tensor | null> = {};
      for (const name of outputNames) {
        const pre = preallocated?.[name];
        fetches[name] = pre ? toOrt(pre, name) : null;
      }
      let result: ort.InferenceSession.ReturnType;
      try {
        result = await s.run(ortFeeds, fetches as ort.InferenceSession.FetchesType);
      } catch (cause) {
        throw new AutodidactError(`model run failed: ${(cause as Error).message ?? cause}`, Code.InvalidArgument, { cause });
      }
      const out: TensorMap = {};
      for (const name of outputNames) {
        const pre = preallocated?.[name];
        const r = result[name];
        if (pre) out[name] = pre;
        else if (r) out[name] = fromOrt(r, name);
      }
      return out;
    },
    async release() {
      await s.release();
    },
  };
}

function toOrt(t: HostTensor, name: string): ort.Tensor {
  if (!SUPPORTED.has(t.dtype)) throw new AutodidactError(`feed "${name}": unsupported dtype ${t.dtype}`, Code.InvalidArgument);
  try {
    return new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.dims);
  } catch (cause) {
    throw new AutodidactError(`feed "${name}": ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
}

function fromOrt(t: ort.Tensor, name: string): HostTensor {
  if (!SUPPORTED.has(t.type)) throw new AutodidactError(`output "${name}": unsupported dtype ${t.type}`, Code.Unimplemented);
  const dtype = t.type as DType;
  const src = t.data as ArrayBufferView & { length: number };
  const data = arrayFor(dtype, src.buffer, src.byteOffset, src.length);
  return { dtype, dims: [...t.dims], data } as HostTensor;
}
