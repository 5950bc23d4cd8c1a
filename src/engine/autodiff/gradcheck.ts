import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Model } from "../graph/ir.js";
import { serialize } from "../graph/serialize.js";
import { createSession } from "../runtime/session.js";
import type { HostTensor, TensorMap } from "../runtime/tensor.js";
import { buildGradientModel } from "./gradient.js";

/** Options of {@link checkGradients}. */
export interface GradCheckOptions {
  /** Inputs to differentiate; each must be a float graph input present in `feeds`. */
  readonly wrt: readonly string[];
  /** Scalar loss output of the model. */
  readonly loss: string;
  /** Values for every graph input. */
  readonly feeds: TensorMap;
  /** Finite-difference step. Default 1e-6 for float64, 1e-2 for float32. */
  readonly eps?: number;
  /** Check at most this many elements per input (evenly spread). Default 64. */
  readonly maxElements?: number;
  /** Let the backward use com.microsoft ops. Default false. */
  readonly contrib?: boolean;
  /**
   * ORT graph optimization level for both sessions. Default "basic": level "all" fuses subgraphs
   * into kernels that compute in float32 internally, which would blur float64 checks.
   */
  readonly graphOptimization?: "disabled" | "basic" | "extended" | "all";
}

/** Outcome of one comparison of analytic and numeric gradients. */
export interface GradCheckResult {
  /** Largest |analytic − numeric| over the checked elements. */
  readonly maxAbsError: number;
  /** Largest |analytic − numeric| / max(|numeric|, |analytic|, 1e-3 scale floor). */
  readonly maxRelError: number;
  /** Where the largest relative error happened. */
  readonly worst: { readonly input: string; readonly index: number; readonly analytic: number; readonly numeric: number };
  /** Number of elements compared. */
  readonly checked: number;
  /** Analytic gradients (whole tensors), keyed by input name. */
  readonly analytic: ReadonlyMap<string, Float64Array>;
}

/**
 * Compares the gradients of the training graph built by autodiff with central finite differences
 * of the forward graph, both executed by onnxruntime. It exists so every gradient rule (and whole
 * models) can be verified end to end, in the precision ORT actually runs.
 */
export async function checkGradients(model: Model, options: GradCheckOptions): Promise<GradCheckResult> {
  const { model: trainModel, gradients } = buildGradientModel(model, {
    wrt: options.wrt,
    loss: options.loss,
    ...(options.contrib !== undefined ? { contrib: options.contrib } : {}),
  });
  const fwdModel: Model = {
    ...model,
    graph: { ...model.graph, outputs: model.graph.outputs.filter((o) => o.name === options.loss) },
  };
  const level = options.graphOptimization ?? "basic";
  const train = await createSession(serialize(trainModel), { intraOpThreads: 1, graphOptimization: level });
  const fwd = await createSession(serialize(fwdModel), { intraOpThreads: 1, graphOptimization: level });
  try {
    const gradNames = options.wrt.map((p) => gradients.get(p)!);
    const out = await train.run(options.feeds, gradNames);
    const analytic = new Map<string, Float64Array>();
    options.wrt.forEach((p, i) => analytic.set(p, Float64Array.from(out[gradNames[i]!]!.data as ArrayLike<number>)));

    const lossAt = async (feeds: TensorMap): Promise<number> => {
      const r = await fwd.run(feeds, [options.loss]);
      return Number(r[options.loss]!.data[0]);
    };
    let maxAbs = 0;
    let maxRel = 0;
    let checked = 0;
    let worst = { input: "", index: -1, analytic: 0, numeric: 0 };
    for (const p of options.wrt) {
      const base = options.feeds[p];
      if (base === undefined) throw new AutodidactError(`gradcheck: no feed for "${p}"`, Code.InvalidArgument);
      if (base.dtype !== "float32" && base.dtype !== "float64") throw new AutodidactError(`gradcheck: "${p}" is ${base.dtype}`, Code.InvalidArgument);
      const eps = options.eps ?? (base.dtype === "float64" ? 1e-6 : 1e-2);
      const n = base.data.length;
      const limit = Math.min(n, options.maxElements ?? 64);
      const stride = n / limit;
      const data = (base.data as Float32Array | Float64Array).slice();
      const perturbed: HostTensor = { dtype: base.dtype, dims: base.dims, data } as HostTensor;
      const feeds = { ...options.feeds, [p]: perturbed };
      const grad = analytic.get(p)!;
      for (let k = 0; k < limit; k++) {
        const i = Math.floor(k * stride);
        const x0 = data[i]!;
        data[i] = x0 + eps;
        const plus = await lossAt(feeds);
        data[i] = x0 - eps;
        const minus = await lossAt(feeds);
        data[i] = x0;
        // The step actually taken after rounding to the tensor's precision.
        const h = base.dtype === "float32" ? Math.fround(x0 + eps) - Math.fround(x0 - eps) : 2 * eps;
        const numeric = (plus - minus) / h;
        const a = grad[i]!;
        const abs = Math.abs(a - numeric);
        const rel = abs / Math.max(Math.abs(numeric), Math.abs(a), 1e-3);
        checked++;
        if (abs > maxAbs) maxAbs = abs;
        if (rel > maxRel) {
          maxRel = rel;
          worst = { input: p, index: i, analytic: a, numeric };
        }
      }
    }
    return { maxAbsError: maxAbs, maxRelError: maxRel, worst, checked, analytic };
  } finally {
    await train.release();
    await fwd.release();
  }
}
