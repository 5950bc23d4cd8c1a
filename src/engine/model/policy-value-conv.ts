import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { GraphBuilder } from "../graph/builder.js";
import type { ValueInfo } from "../graph/ir.js";
import type { PolicyValueConfig, PolicyValueParamSpec } from "./policy-value.js";
import type { FloatDType } from "./transformer.js";

/**
 * The convolutional trunk of a policy/value network (`arch: "conv"`): the first rows×cols tokens
 * are a board, each cell embedded (token embedding + cell embedding, plus the embedding of the
 * tokens after the board, broadcast to every cell), then a k×k convolution stem and residual
 * blocks of two convolutions, then AlphaZero's heads (1×1 convolutions to two planes, flattened,
 * then linear). Convolutions are built from ops with gradient rules: a Gather of every cell's k×k
 * neighbourhood along the cell axis (constant indices; cells off the board read cell 0 and are
 * zeroed by a constant mask) and one MatMul with the [k²·C, C] kernel. Weights are shared across
 * the board, which is why it learns board patterns from far fewer games than the MLP.
 */

/** Parameter names of the conv trunk and heads. */
export const convNames = {
  tokenEmbed: "embed.tokens",
  cellEmbed: "embed.cells",
  extraEmbed: "embed.extra",
  stemWeight: "stem.weight",
  stemBias: "stem.bias",
  block: (i: number, part: "norm.weight" | "norm.bias" | "conv1.weight" | "conv1.bias" | "conv2.weight" | "conv2.bias"): string => `blocks.${i}.${part}`,
  trunkNormWeight: "trunk_norm.weight",
  trunkNormBias: "trunk_norm.bias",
  policyPlanes: "policy.planes.weight",
  policyPlanesBias: "policy.planes.bias",
  policyWeight: "policy.weight",
  policyBias: "policy.bias",
  valuePlanes: "value.planes.weight",
  valuePlanesBias: "value.planes.bias",
  valueWeight: "value.fc.weight",
  valueBias: "value.fc.bias",
  valueOutWeight: "value.out.weight",
  valueOutBias: "value.out.bias",
} as const;

/** Planes the heads reduce the trunk to before flattening. */
const HEAD_PLANES = 2;

/** Board geometry of a conv config; InvalidArgument when absent or inconsistent. */
export function convGeometry(c: PolicyValueConfig): { rows: number; cols: number; cells: number; extra: number; kernel: number } {
  const board = c.board;
  if (board === undefined) throw new AutodidactError("policy-value config: arch conv needs board {rows, cols}", Code.InvalidArgument);
  const { rows, cols } = board;
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(cols) || cols < 1) throw new AutodidactError(`policy-value config: board ${rows}x${cols} is not a board`, Code.InvalidArgument);
  const cells = rows * cols;
  if (cells > c.inputLength) throw new AutodidactError(`policy-value config: a ${rows}x${cols} board needs ${cells} tokens, inputLength is ${c.inputLength}`, Code.InvalidArgument);
  const kernel = c.kernel ?? 3;
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) throw new AutodidactError(`policy-value config: kernel must be an odd positive integer, got ${kernel}`, Code.InvalidArgument);
  return { rows, cols, cells, extra: c.inputLength - cells, kernel };
}

/** Parameters of the conv network, in a stable order, with He init scales (residual branches scaled down). */
export function convParamSpecs(c: PolicyValueConfig): PolicyValueParamSpec[] {
  const n = convNames;
  const { cells, extra, kernel } = convGeometry(c);
  const C = c.hidden;
  const fan = kernel * kernel * C;
  const specs: PolicyValueParamSpec[] = [
    { name: n.tokenEmbed, shape: [c.vocabSize, C], kind: "embedding", initStd: 1 },
    { name: n.cellEmbed, shape: [cells, C], kind: "embedding", initStd: 0.1 },
  ];
  if (extra > 0) specs.push({ name: n.extraEmbed, shape: [extra * c.vocabSize, C], kind: "embedding", initStd: 1 / Math.sqrt(extra) });
  specs.push({ name: n.stemWeight, shape: [fan, C], kind: "linear", initStd: Math.sqrt(2 / fan) }, { name: n.stemBias, shape: [C], kind: "bias" });
  for (let i = 0; i < c.blocks; i++) {
    specs.push(
      { name: n.block(i, "norm.weight"), shape: [C], kind: "norm_weight" },
      { name: n.block(i, "norm.bias"), shape: [C], kind: "norm_bias" },
      { name: n.block(i, "conv1.weight"), shape: [fan, C], kind: "linear", initStd: Math.sqrt(2 / fan) },
      { name: n.block(i, "conv1.bias"), shape: [C], kind: "bias" },
      { name: n.block(i, "conv2.weight"), shape: [fan, C], kind: "linear", initStd: Math.sqrt(2 / fan) / Math.sqrt(2 * c.blocks) },
      { name: n.block(i, "conv2.bias"), shape: [C], kind: "bias" },
    );
  }
  const flat = cells * HEAD_PLANES;
  specs.push(
    { name: n.trunkNormWeight, shape: [C], kind: "norm_weight" },
    { name: n.trunkNormBias, shape: [C], kind: "norm_bias" },
    { name: n.policyPlanes, shape: [C, HEAD_PLANES], kind: "linear", initStd: Math.sqrt(1 / C) },
    { name: n.policyPlanesBias, shape: [HEAD_PLANES], kind: "bias" },
    { name: n.policyWeight, shape: [flat, c.numMoves], kind: "linear", initStd: 0.01 },
    { name: n.policyBias, shape: [c.numMoves], kind: "bias" },
    { name: n.valuePlanes, shape: [C, HEAD_PLANES], kind: "linear", initStd: Math.sqrt(1 / C) },
    { name: n.valuePlanesBias, shape: [HEAD_PLANES], kind: "bias" },
    { name: n.valueWeight, shape: [flat, c.valueHidden], kind: "linear", initStd: Math.sqrt(2 / flat) },
    { name: n.valueBias, shape: [c.valueHidden], kind: "bias" },
    { name: n.valueOutWeight, shape: [c.valueHidden, 1], kind: "linear", initStd: 0.01 },
    { name: n.valueOutBias, shape: [1], kind: "bias" },
  );
  return specs;
}

/**
 * Constant neighbourhood indices [cells, k²] (row-major over the window, off-board → cell 0) and
 * the matching 0/1 mask: what the convolution's Gather reads for every cell.
 */
export function convNeighbourhoods(rows: number, cols: number, kernel: number): { index: BigInt64Array; mask: number[] } {
  const half = (kernel - 1) / 2;
  const index: bigint[] = [];
  const mask: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      for (let dr = -half; dr <= half; dr++) {
        for (let dc = -half; dc <= half; dc++) {
          const rr = r + dr;
          const cc = c + dc;
          const inside = rr >= 0 && rr < rows && cc >= 0 && cc < cols;
          index.push(BigInt(inside ? rr * cols + cc : 0));
          mask.push(inside ? 1 : 0);
        }
      }
    }
  }
  return { index: BigInt64Array.from(index), mask };
}

/** The conv network's body on `tokens` [B, L]: logits [B, M] and value [B]. */
export function convForward(b: GraphBuilder, c: PolicyValueConfig, dtype: FloatDType, w: (name: string) => ValueInfo, tokens: ValueInfo): { logits: ValueInfo; value: ValueInfo } {
  const n = convNames;
  const { rows, cols, cells, extra, kernel } = convGeometry(c);
  const C = c.hidden;
  const k2 = kernel * kernel;
  const { index, mask } = convNeighbourhoods(rows, cols, kernel);
  const idx = b.constant("int64", [cells, k2], index);
  const maskT = dtype === "float32" ? b.constant("float32", [cells, k2, 1], Float32Array.from(mask)) : b.constant("float64", [cells, k2, 1], Float64Array.from(mask));
  /** x [B, cells, C] → k×k convolution → [B, cells, C]. */
  const conv = (x: ValueInfo, weight: string, bias: string): ValueInfo => {
    const patches = b.mul(b.gather(x, idx, 1), maskT); // [B, cells, k², C]
    return b.linear(b.reshape(patches, [-1, cells, k2 * C]), w(weight), w(bias));
  };

  const boardTokens = extra > 0 ? b.slice(tokens, [0], [cells], [1]) : tokens;
  let h = b.add(b.gather(w(n.tokenEmbed), boardTokens), w(n.cellEmbed)); // [B, cells, C]
  if (extra > 0) {
    const offsets = b.constant("int64", [extra], BigInt64Array.from({ length: extra }, (_, i) => BigInt(i * c.vocabSize)));
    const extraIds = b.add(b.slice(tokens, [cells], [cells + extra], [1]), offsets); // [B, extra]
    h = b.add(h, b.reduceSum(b.gather(w(n.extraEmbed), extraIds), [1], true)); // + [B, 1, C]
  }
  h = b.unary("Relu", conv(h, n.stemWeight, n.stemBias));
  for (let i = 0; i < c.blocks; i++) {
    const a = b.layerNorm(h, w(n.block(i, "norm.weight")), w(n.block(i, "norm.bias")), c.normEps);
    const mid = b.unary("Relu", conv(a, n.block(i, "conv1.weight"), n.block(i, "conv1.bias")));
    h = b.add(h, conv(mid, n.block(i, "conv2.weight"), n.block(i, "conv2.bias")));
  }
  h = b.layerNorm(h, w(n.trunkNormWeight), w(n.trunkNormBias), c.normEps);
  const planes = (weight: string, bias: string): ValueInfo => b.reshape(b.unary("Relu", b.linear(h, w(weight), w(bias))), [-1, cells * HEAD_PLANES]);
  const logits = b.linear(planes(n.policyPlanes, n.policyPlanesBias), w(n.policyWeight), w(n.policyBias));
  const v = b.unary("Relu", b.linear(planes(n.valuePlanes, n.valuePlanesBias), w(n.valueWeight), w(n.valueBias)));
  const value = b.reshape(b.tanh(b.linear(v, w(n.valueOutWeight), w(n.valueOutBias))), [-1]);
  return { logits, value };
}
