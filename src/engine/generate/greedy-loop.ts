import { AutodidactError, Code } from "../../platform/errors/index.js";
import { GREEDY_OUTPUTS } from "../model/transformer.js";
import type { ModelSession } from "../runtime/session.js";
import type { TensorMap } from "../runtime/tensor.js";
import { leftPad } from "./left-pad.js";

/** One left-padded greedy request, already validated and capped by `decodeBatch`. */
export interface GreedyLoopRequest {
  readonly prompts: readonly (readonly number[])[];
  /** ≥ 1 (after the context cap). */
  readonly maxNew: number;
  readonly stopTokens: ReadonlySet<number>;
  readonly padId: number;
}

/** A generated row, as `decodeBatch` returns it. */
export interface GreedyLoopRow {
  tokens: number[];
  logprobs: number[];
  finishReason: "stop" | "length";
}

/**
 * Greedy decoding of a whole batch in ONE `run` of a graph from `buildGreedyDecodingGraph`: the
 * prompts are left-padded as `decodeBatch` pads them, the graph loops over the steps, and each
 * row keeps the tokens up to and including its first stop token ("stop"), or all of them
 * ("length"). Same tokens and log-probabilities as the step-by-step path, without a `run` (input
 * conversion, promise hops, per-run allocations) per token.
 */
export async function decodeGreedyLoop(session: ModelSession, req: GreedyLoopRequest): Promise<GreedyLoopRow[]> {
  const B = req.prompts.length;
  const L = Math.max(...req.prompts.map((p) => p.length));
  const { ids, mask, pos } = leftPad(req.prompts, L, req.padId);
  // The graph matches ids against a non-empty list; -1 is never a token.
  const stops = req.stopTokens.size > 0 ? BigInt64Array.from([...req.stopTokens].map((t) => BigInt(t))) : BigInt64Array.of(-1n);
  const feeds: TensorMap = {
    input_ids: { dtype: "int64", dims: [B, L], data: ids },
    attention_mask: { dtype: "int64", dims: [B, L], data: mask },
    max_new_tokens: { dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(req.maxNew)) },
    stop_tokens: { dtype: "int64", dims: [stops.length], data: stops },
  };
  if (session.inputs.some((i) => i.name === "position_ids")) feeds.position_ids = { dtype: "int64", dims: [B, L], data: pos };
  const out = await session.run(feeds, [GREEDY_OUTPUTS.tokens, GREEDY_OUTPUTS.logprobs]);
  const tokens = out[GREEDY_OUTPUTS.tokens]?.data as BigInt64Array;
  const logprobs = out[GREEDY_OUTPUTS.logprobs]?.data as Float32Array;
  const steps = tokens.length / B;
  const rows: GreedyLoopRow[] = [];
  for (let b = 0; b < B; b++) {
    const row: GreedyLoopRow = { tokens: [], logprobs: [], finishReason: "length" };
    for (let t = 0; t < steps; t++) {
      const id = Number(tokens[t * B + b]);
      const lp = logprobs[t * B + b] as number;
      // The step-by-step sampler refuses non-finite logits; a NaN/Inf log-probability means the same.
      if (!Number.isFinite(lp)) throw new AutodidactError("model produced non-finite logits (NaN/Inf): corrupt or diverged weights", Code.DataLoss);
      row.tokens.push(id);
      row.logprobs.push(lp);
      if (req.stopTokens.has(id)) {
        row.finishReason = "stop";
        break;
      }
    }
    rows.push(row);
  }
  return rows;
}
