import type { GraphBuilder } from "../graph/builder.js";
import type { ValueInfo } from "../graph/ir.js";

/** Names of the inputs/outputs {@link appendCrossEntropyLoss} adds. */
export const LOSS_NAMES = { targets: "targets", mask: "loss_mask", loss: "loss" } as const;

/**
 * Appends token-level cross-entropy to a graph that outputs `logits` [B,T,V]: new inputs
 * `targets` [B,T] int64 and `loss_mask` [B,T] (1 = this position's target is trained on,
 * 0 = prompt or padding), output `loss` = Σ mask·(−log p(target)) / max(Σ mask, 1).
 * It exists so training graphs share one numerically stable definition (LogSoftmax, never
 * log(softmax)) that autodiff can differentiate.
 */
export function appendCrossEntropyLoss(b: GraphBuilder, logits: ValueInfo): ValueInfo {
  const [B, T] = logits.shape;
  const dtype = logits.dtype;
  const targets = b.input(LOSS_NAMES.targets, "int64", [B ?? null, T ?? null]);
  const mask = b.input(LOSS_NAMES.mask, dtype, [B ?? null, T ?? null]);
  const logp = b.logSoftmax(logits, -1);
  const picked = b.op("GatherElements", [logp, b.unsqueeze(targets, [-1])], [{ dtype, shape: [B ?? null, T ?? null, 1] }], {
    attrs: { axis: { kind: "int", value: 2 } },
  })[0]!;
  const nll = b.mul(b.neg(b.squeeze(picked, [-1])), mask);
  const total = b.reduceSum(nll, [0, 1], false);
  const count = b.op("Max", [b.reduceSum(mask, [0, 1], false), b.scalar(1, dtype)], [{ dtype, shape: [] }])[0]!;
  return b.div(total, count, LOSS_NAMES.loss);
}
