import { AutodidactError, Code } from "../../platform/errors/index.js";
import { buildGradientModel } from "../autodiff/gradient.js";
import { GraphBuilder } from "../graph/builder.js";
import { AD_DOMAIN, attr, MS_DOMAIN, type Graph, type Model, type Node, type TensorData } from "../graph/ir.js";
import type { TransformerConfig } from "../model/config.js";
import { buildForwardGraph, SCALED_GELU, type FloatDType, type LoraInput } from "../model/transformer.js";
import { appendCrossEntropyLoss, LOSS_NAMES } from "./loss.js";

/** Full fine-tuning (every parameter trained) or LoRA (base frozen, adapters trained). */
export type TrainMode = "full" | "lora";

/** LoRA hyper-parameters. */
export interface LoraOptions {
  readonly rank: number;
  readonly alpha: number;
  /** Module names to adapt: any of q_proj, k_proj, v_proj, o_proj, up_proj, down_proj, lm_head. */
  readonly targetModules: readonly string[];
  /** Dropout probability on the adapter path's input (0 = off, the default). */
  readonly dropout?: number;
  /** Seed of the dropout masks (ORT Dropout `seed`). */
  readonly dropoutSeed?: number;
}

/** Default LoRA settings: rank 8, alpha 16, attention q and v projections (the PEFT default targets). */
export const DEFAULT_LORA: LoraOptions = { rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"], dropout: 0 };

/** Options of {@link buildTrainingGraph}. */
export interface TrainingGraphOptions {
  readonly mode: TrainMode;
  readonly lora?: LoraOptions;
  readonly dtype?: FloatDType;
  /** Fixed batch size or symbolic name. Default "batch". */
  readonly batch?: number | string;
  /** Fixed sequence length or symbolic name. Default "seq". */
  readonly seq?: number | string;
  /** Use com.microsoft FusedMatMul in the backward (float32 only). Default true for float32. */
  readonly contrib?: boolean;
  /** Also output the logits. Default false. */
  readonly keepLogits?: boolean;
  /**
   * Forward with fused kernels (LayerNormalization whose stashed mean/inverse-std the backward
   * reuses, com.microsoft Gelu). Default true for float32 (ORT's fused ops are float32-only or
   * stash in float32), false for float64.
   */
  readonly fused?: boolean;
}

/** A training graph: inputs, trainable/frozen split, and where each gradient comes out. */
export interface TrainingGraph {
  readonly model: Model;
  /** Inputs that receive gradients, in order (parameters in full mode, adapters in LoRA mode). */
  readonly trainable: readonly string[];
  /** Parameter inputs fed but not trained (the frozen base in LoRA mode; empty in full mode). */
  readonly frozen: readonly string[];
  /** Trainable input → gradient output name. */
  readonly gradients: ReadonlyMap<string, string>;
  /** The adapter inputs (LoRA mode). */
  readonly loraInputs: readonly LoraInput[];
  /** Data inputs: token ids, targets, loss mask. */
  readonly dataInputs: { readonly ids: string; readonly targets: string; readonly mask: string };
  readonly loss: string;
}

/**
 * Builds the ONE graph a training step runs: the transformer's forward pass, token-level masked
 * cross-entropy, and the gradient of the loss w.r.t. every trainable input. Frozen base weights in
 * LoRA mode get no backward nodes at all (autodiff prunes them), and adapters are plain inputs, so
 * one session serves any adapter.
 */
export function buildTrainingGraph(c: TransformerConfig, options: TrainingGraphOptions): TrainingGraph {
  // GELU goes through autodiff as one node that exposes its forward intermediates (F(u) of the
  // scaled form in float32 erf-GELU models, else x/√2 and Φ(x)), so its backward reuses them; it
  // becomes standard ops afterwards (those of buildLossGraph, the affine step as one BatchNormalization).
  const lossGraph = lossGraphWith(c, options, true);
  const contrib = options.contrib ?? (options.dtype ?? "float32") === "float32";
  const { model, gradients } = buildGradientModel(lossGraph.model, {
    wrt: lossGraph.trainable,
    loss: LOSS_NAMES.loss,
    keep: options.keepLogits ? ["logits"] : [],
    contrib,
  });
  return { ...lossGraph, model: { ...model, graph: composeGelu(model.graph, "batchnorm") }, gradients };
}

/** The forward + loss graph of a training setup, before differentiation (for checks and evaluation). */
export type LossGraph = Omit<TrainingGraph, "gradients">;

/**
 * The forward pass plus masked cross-entropy (outputs `logits` and `loss`), with the same inputs
 * and trainable/frozen split as {@link buildTrainingGraph}. Exists so gradient checks and loss-only
 * evaluation use exactly the graph training differentiates.
 */
export function buildLossGraph(c: TransformerConfig, options: TrainingGraphOptions): LossGraph {
  return lossGraphWith(c, options, false);
}

/** {@link buildLossGraph}; `markGelu` leaves GELUs as {@link AD_DOMAIN} nodes for autodiff. */
function lossGraphWith(c: TransformerConfig, options: TrainingGraphOptions, markGelu: boolean): LossGraph {
  const dtype = options.dtype ?? "float32";
  if (options.mode !== "full" && options.mode !== "lora") {
    throw new AutodidactError(`training mode must be "full" or "lora", got "${String(options.mode)}"`, Code.InvalidArgument);
  }
  const lora = options.mode === "lora" ? (options.lora ?? DEFAULT_LORA) : undefined;
  if (lora !== undefined) validateLora(lora);
  const fused = options.fused ?? dtype === "float32";
  const fwd = buildForwardGraph(c, {
    dtype,
    batch: options.batch ?? "batch",
    seq: options.seq ?? "seq",
    fused,
    scaledGelu: fused && dtype === "float32" && c.activation === "gelu" && c.mlp !== "gated",
    ...(lora !== undefined ? { lora: { rank: lora.rank, alpha: lora.alpha, targetModules: lora.targetModules } } : {}),
  });
  let graph = fwd.model.graph;
  if (lora !== undefined && (lora.dropout ?? 0) > 0) {
    graph = insertLoraDropout(graph, new Set(fwd.loraInputs.filter((l) => l.which === "A").map((l) => l.name)), lora.dropout!, lora.dropoutSeed ?? 0);
  }
  graph = markGelu ? markGelus(graph) : composeGelu(graph, "ops");
  if (lora !== undefined) graph = scaleLoraOnRank(graph, new Set(fwd.loraInputs.filter((l) => l.which === "B").map((l) => l.name)));
  const b = GraphBuilder.extend(graph, fwd.model.opsets);
  appendCrossEntropyLoss(b, b.get("logits"));
  b.output(LOSS_NAMES.loss);
  const model = b.buildModel({ metadata: { ...(fwd.model.metadata ?? {}), "autodidact.graph": "training" } });
  return {
    model,
    trainable: lora !== undefined ? fwd.loraInputs.map((l) => l.name) : [...fwd.paramInputs],
    frozen: lora !== undefined ? [...fwd.paramInputs] : [],
    loraInputs: fwd.loraInputs,
    dataInputs: { ids: "input_ids", targets: LOSS_NAMES.targets, mask: LOSS_NAMES.mask },
    loss: LOSS_NAMES.loss,
  };
}

/** Checks LoRA hyper-parameters; throws InvalidArgument naming the bad one. */
export function validateLora(lora: LoraOptions): void {
  if (!Number.isInteger(lora.rank) || lora.rank <= 0) throw new AutodidactError(`LoRA rank must be a positive integer, got ${lora.rank}`, Code.InvalidArgument);
  if (!(lora.alpha > 0)) throw new AutodidactError(`LoRA alpha must be positive, got ${lora.alpha}`, Code.InvalidArgument);
  const d = lora.dropout ?? 0;
  if (!(d >= 0 && d < 1)) throw new AutodidactError(`LoRA dropout must be in [0, 1), got ${d}`, Code.InvalidArgument);
  if (lora.targetModules.length === 0) throw new AutodidactError("LoRA needs at least one target module", Code.InvalidArgument);
}

/**
 * Rewrites com.microsoft Gelu nodes as x·Φ(x), Φ(x) = (1 + erf(x/√2))·½ (five passes). Measured on
 * ORT 1.30 CPU: the contrib Gelu kernel costs ~10× an Erf kernel per element, so the composition
 * is faster in training graphs. {@link AD_DOMAIN} Gelu nodes (see {@link markGelus}) get the same
 * ops, their outputs 1 and 2 naming x/√2 and Φ(x), which their backward reads.
 *
 * {@link SCALED_GELU} nodes (training graphs, see `ForwardGraphOptions.scaledGelu`) become
 * y = u·F(u): Erf, then F = (erf + 1)·√π/2, then Mul; their output 1, when marked, names F. With
 * `affine: "batchnorm"` the affine step is ONE pass, an inference-mode BatchNormalization of one
 * channel over a [1, 1, n] view (mean −1, variance 1, scale √π/2, no epsilon): on ORT's CPU
 * kernels it costs about one Mul where Add + Mul cost two (a [rows, width] view, one channel per
 * column, ran 15× slower). Autodiff has no rule for
 * BatchNormalization, so graphs that are still to be differentiated (the loss graph) use `"ops"`.
 */
function composeGelu(graph: Graph, affine: "ops" | "batchnorm"): Graph {
  const isGelu = (n: Node): boolean => n.op === "Gelu" && (n.domain === MS_DOMAIN || n.domain === AD_DOMAIN);
  const isScaled = (n: Node): boolean => n.op === SCALED_GELU && n.domain === AD_DOMAIN;
  if (!graph.nodes.some((n) => isGelu(n) || isScaled(n))) return graph;
  const infos = new Map([...graph.inputs, ...graph.valueInfo].map((v) => [v.name, v]));
  const nodes: Node[] = [];
  const valueInfo = [...graph.valueInfo];
  const initializers = [...graph.initializers];
  const constants = new Map<string, string>();
  /** A shared initializer: a scalar for a number, a 1-D tensor for an array. */
  const constant = (value: number | readonly number[], dtype: "float32" | "float64" | "int64"): string => {
    const values = typeof value === "number" ? [value] : value;
    const dims = typeof value === "number" ? [] : [values.length];
    const key = `${dtype}:${dims.join(",")}:${values.join(",")}`;
    let name = constants.get(key);
    if (name === undefined) {
      name = `gelu.const_${constants.size}`;
      initializers.push(
        dtype === "int64"
          ? { name, dtype, dims, data: BigInt64Array.from(values.map((v) => BigInt(v))) }
          : dtype === "float64"
            ? { name, dtype, dims, data: Float64Array.from(values) }
            : { name, dtype, dims, data: Float32Array.from(values) },
      );
      constants.set(key, name);
    }
    return name;
  };
  let k = 0;
  for (const n of graph.nodes) {
    if (!isGelu(n) && !isScaled(n)) {
      nodes.push(n);
      continue;
    }
    const x = n.inputs[0]!;
    const info = infos.get(x);
    if (info === undefined || (info.dtype !== "float32" && info.dtype !== "float64")) {
      throw new AutodidactError(`cannot rewrite ${n.op}: no float type for "${x}"`, Code.Internal);
    }
    const dtype = info.dtype;
    const t = (suffix: string, given?: string): string => {
      if (given !== undefined && given !== "") {
        if (!infos.has(given)) valueInfo.push({ name: given, dtype, shape: info.shape });
        return given;
      }
      const name = `gelu_${k}.${suffix}`;
      valueInfo.push({ name, dtype, shape: info.shape });
      return name;
    };
    if (isScaled(n)) {
      const e = t("erf");
      const f = t("affine", n.outputs[1]);
      nodes.push({ op: "Erf", inputs: [x], outputs: [e] });
      const halfRootPi = Math.sqrt(Math.PI) / 2;
      if (affine === "batchnorm" && dtype === "float32") {
        const flat = `gelu_${k}.flat`;
        const fflat = `gelu_${k}.affine_flat`;
        const shape = `gelu_${k}.shape`;
        valueInfo.push({ name: flat, dtype, shape: [1, 1, "n"] }, { name: fflat, dtype, shape: [1, 1, "n"] }, { name: shape, dtype: "int64", shape: [info.shape.length] });
        nodes.push(
          { op: "Reshape", inputs: [e, constant([1, 1, -1], "int64")], outputs: [flat] },
          {
            op: "BatchNormalization",
            inputs: [flat, constant([halfRootPi], dtype), constant([0], dtype), constant([-1], dtype), constant([1], dtype)],
            outputs: [fflat],
            attrs: { epsilon: attr.float(0) },
          },
          { op: "Shape", inputs: [x], outputs: [shape] },
          { op: "Reshape", inputs: [fflat, shape], outputs: [f] },
        );
      } else {
        const e1 = t("erf_plus_1");
        nodes.push({ op: "Add", inputs: [e, constant(1, dtype)], outputs: [e1] }, { op: "Mul", inputs: [e1, constant(halfRootPi, dtype)], outputs: [f] });
      }
      nodes.push({ op: "Mul", inputs: [x, f], outputs: [n.outputs[0]!] });
      k++;
      continue;
    }
    const [u, e, e1, phi] = [t("scaled", n.outputs[1]), t("erf"), t("erf_plus_1"), t("cdf", n.outputs[2])];
    nodes.push(
      { op: "Mul", inputs: [x, constant(Math.SQRT1_2, dtype)], outputs: [u] },
      { op: "Erf", inputs: [u], outputs: [e] },
      { op: "Add", inputs: [e, constant(1, dtype)], outputs: [e1] },
      { op: "Mul", inputs: [e1, constant(0.5, dtype)], outputs: [phi] },
      { op: "Mul", inputs: [x, phi], outputs: [n.outputs[0]!] },
    );
    k++;
  }
  return { ...graph, nodes, initializers, valueInfo };
}

/**
 * Turns com.microsoft Gelu nodes into {@link AD_DOMAIN} Gelu nodes with outputs [y, x/√2, Φ(x)],
 * and gives {@link SCALED_GELU} nodes their second output F(u), which their backward reads.
 */
function markGelus(graph: Graph): Graph {
  const infos = new Map([...graph.inputs, ...graph.valueInfo].map((v) => [v.name, v]));
  const valueInfo = [...graph.valueInfo];
  let k = 0;
  const nodes = graph.nodes.map((n): Node => {
    const scaled = n.op === SCALED_GELU && n.domain === AD_DOMAIN;
    if (!(n.op === "Gelu" && n.domain === MS_DOMAIN) && !scaled) return n;
    const info = infos.get(n.inputs[0]!);
    if (info === undefined) throw new AutodidactError(`cannot mark ${n.op}: no type for "${n.inputs[0]}"`, Code.Internal);
    if (scaled) {
      const f = `gelu_mark_${k++}.affine`;
      valueInfo.push({ ...info, name: f });
      return { ...n, outputs: [n.outputs[0]!, f] };
    }
    const u = `gelu_mark_${k}.scaled`;
    const phi = `gelu_mark_${k}.cdf`;
    k++;
    valueInfo.push({ ...info, name: u }, { ...info, name: phi });
    return { ...n, domain: AD_DOMAIN, outputs: [n.outputs[0]!, u, phi] };
  });
  return { ...graph, nodes, valueInfo };
}

/**
 * Moves the LoRA scale alpha/r from the adapter's output [B,T,out] onto its rank-r intermediate
 * [B,T,r]: Mul(MatMul(d, Bᵀ), s) → MatMul(Mul(d, s), Bᵀ). Exact, and it removes one full-width
 * elementwise pass forward and one backward per adapted linear.
 */
function scaleLoraOnRank(graph: Graph, bInputs: ReadonlySet<string>): Graph {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const scalars = new Set(graph.initializers.filter((t) => t.dims.length === 0 && (t.dtype === "float32" || t.dtype === "float64")).map((t) => t.name));
  const infos = new Map(graph.valueInfo.map((v) => [v.name, v]));
  // MatMul(d, Transpose(B)) nodes whose only consumer is a Mul by a scalar constant.
  const rewrites = new Map<Node, { mul: Node; scale: string }>();
  for (const n of graph.nodes) {
    if (n.op !== "Mul") continue;
    const [x, k] = n.inputs as [string, string];
    const mm = producer.get(x);
    if (!mm || mm.op !== "MatMul" || !scalars.has(k) || consumers.get(x) !== 1) continue;
    const tb = producer.get(mm.inputs[1] ?? "");
    if (!tb || tb.op !== "Transpose" || !bInputs.has(tb.inputs[0] ?? "")) continue;
    rewrites.set(mm, { mul: n, scale: k });
  }
  if (rewrites.size === 0) return graph;
  const dropped = new Set([...rewrites.values()].map((r) => r.mul));
  const nodes: Node[] = [];
  const valueInfo = [...graph.valueInfo];
  let k = 0;
  for (const n of graph.nodes) {
    if (dropped.has(n)) continue;
    const r = rewrites.get(n);
    if (r === undefined) {
      nodes.push(n);
      continue;
    }
    const d = n.inputs[0]!;
    const scaled = `lora_scaled_${k++}`;
    const info = infos.get(d);
    if (info) valueInfo.push({ ...info, name: scaled });
    nodes.push({ op: "Mul", inputs: [d, r.scale], outputs: [scaled] });
    // The MatMul now produces the Mul's output directly.
    nodes.push({ ...n, inputs: [scaled, n.inputs[1]!], outputs: [r.mul.outputs[0]!] });
  }
  const removed = new Set([...rewrites.keys()].map((n) => n.outputs[0]!));
  return { ...graph, nodes, valueInfo: valueInfo.filter((v) => !removed.has(v.name)) };
}

/**
 * Puts a seeded Dropout (training mode) on the input of every LoRA down-projection, i.e. the
 * `MatMul(x, Transpose(A))` node of each adapter, leaving the frozen path untouched (as PEFT does).
 */
function insertLoraDropout(graph: Graph, aInputs: ReadonlySet<string>, ratio: number, seed: number): Graph {
  const transposedA = new Set<string>();
  for (const n of graph.nodes) if (n.op === "Transpose" && aInputs.has(n.inputs[0] ?? "")) transposedA.add(n.outputs[0]!);
  const ratioName = "lora_dropout.ratio";
  const trainingName = "lora_dropout.training";
  const inits: TensorData[] = [
    { name: ratioName, dtype: graph.inputs.find((i) => aInputs.has(i.name))?.dtype === "float64" ? "float64" : "float32", dims: [], data: Float32Array.of(ratio) },
    { name: trainingName, dtype: "bool", dims: [], data: Uint8Array.of(1) },
  ];
  if (inits[0]!.dtype === "float64") inits[0] = { ...inits[0]!, data: Float64Array.of(ratio) } as TensorData;
  const nodes: Node[] = [];
  const valueInfo = [...graph.valueInfo];
  let k = 0;
  for (const n of graph.nodes) {
    if (n.op === "MatMul" && transposedA.has(n.inputs[1] ?? "")) {
      const x = n.inputs[0]!;
      const dropped = `lora_dropout.out_${k}`;
      nodes.push({
        op: "Dropout",
        inputs: [x, ratioName, trainingName],
        outputs: [dropped],
        attrs: { seed: attr.int(seed + k) },
        name: `lora_dropout_${k}`,
      });
      const info = graph.valueInfo.find((v) => v.name === x) ?? graph.inputs.find((v) => v.name === x);
      if (info) valueInfo.push({ ...info, name: dropped });
      k++;
      nodes.push({ ...n, inputs: [dropped, n.inputs[1]!] });
    } else nodes.push(n);
  }
  return { ...graph, nodes, initializers: [...graph.initializers, ...inits], valueInfo };
}
