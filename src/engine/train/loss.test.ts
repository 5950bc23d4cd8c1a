import { describe, expect, it } from "vitest";
import { createGraphBuilder } from "../graph/builder.js";
import { serialize } from "../graph/serialize.js";
import { createRng } from "../random.js";
import { createSession } from "../runtime/session.js";
import { appendCrossEntropyLoss, LOSS_NAMES } from "./loss.js";

const [B, T, V] = [2, 3, 5];

async function lossOf(logits: Float32Array, targets: number[], mask: number[]): Promise<number> {
  const b = createGraphBuilder("loss");
  const x = b.input("x", "float32", [B, T, V]);
  appendCrossEntropyLoss(b, b.identity(x));
  b.output(LOSS_NAMES.loss);
  const s = await createSession(serialize(b.buildModel()));
  const out = await s.run({
    x: { dtype: "float32", dims: [B, T, V], data: logits },
    targets: { dtype: "int64", dims: [B, T], data: BigInt64Array.from(targets.map(BigInt)) },
    loss_mask: { dtype: "float32", dims: [B, T], data: Float32Array.from(mask) },
  });
  await s.release();
  return Number(out[LOSS_NAMES.loss]!.data[0]);
}

describe("masked token cross-entropy", () => {
  it("equals the mean negative log-likelihood over unmasked positions only", async () => {
    const rng = createRng("loss");
    const logits = Float32Array.from({ length: B * T * V }, () => 3 * rng.normal());
    const targets = [0, 4, 2, 1, 3, 3];
    const mask = [0, 1, 1, 1, 0, 1];
    let sum = 0;
    let n = 0;
    for (let p = 0; p < B * T; p++) {
      if (mask[p] === 0) continue;
      const row = Array.from(logits.slice(p * V, (p + 1) * V));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      sum += lse - row[targets[p]!]!;
      n++;
    }
    expect(await lossOf(logits, targets, mask)).toBeCloseTo(sum / n, 5);
    // Masked positions do not matter, whatever their logits say.
    const noisy = logits.slice();
    for (let v = 0; v < V; v++) noisy[v] = 50 * (v + 1);
    expect(await lossOf(noisy, targets, mask)).toBeCloseTo(sum / n, 5);
  });

  it("stays finite for huge logits and is 0 when nothing is unmasked", async () => {
    const huge = Float32Array.from({ length: B * T * V }, (_, i) => (i % V === 0 ? 1e4 : -1e4));
    const l = await lossOf(huge, [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]);
    expect(Number.isFinite(l)).toBe(true);
    expect(l).toBeCloseTo(2e4 / 6, 0); // five perfect predictions, one off by 2e4
    expect(await lossOf(huge, [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0])).toBe(0);
  });
});
