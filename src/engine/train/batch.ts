import { AutodidactError, Code } from "../../platform/errors/index.js";

/** One supervised example: the loss covers only the completion tokens. */
export interface Example {
  readonly prompt: readonly number[];
  readonly completion: readonly number[];
}

/** A padded batch as the training graph takes it (next-token targets, float mask). */
export interface Batch {
  readonly batchSize: number;
  readonly seqLen: number;
  /** [batchSize, seqLen] row-major. */
  readonly inputIds: BigInt64Array;
  /** [batchSize, seqLen]: the token each position must predict. */
  readonly targets: BigInt64Array;
  /** [batchSize, seqLen]: 1 where the target is a completion token, 0 for prompt and padding. */
  readonly mask: Float32Array;
}

/** Options of {@link makeBatch}. */
export interface BatchOptions {
  /** Token used for padding (never trained on). */
  readonly padId: number;
  /** Fixed length (graphs with a static sequence dim); default: longest example − 1. */
  readonly seqLen?: number;
}

/**
 * Packs examples into a right-padded next-token batch: position t reads token t and predicts
 * token t+1; only positions whose target lies in the completion count in the loss. It exists so
 * every trainer masks prompts and padding the same way.
 */
export function makeBatch(examples: readonly Example[], options: BatchOptions): Batch {
  if (examples.length === 0) throw new AutodidactError("cannot make a batch of zero examples", Code.InvalidArgument);
  const lengths = examples.map((e) => e.prompt.length + e.completion.length - 1);
  const longest = Math.max(...lengths);
  const seqLen = options.seqLen ?? longest;
  if (longest > seqLen) {
    throw new AutodidactError(`example of ${longest + 1} tokens does not fit sequence length ${seqLen} (+1 target)`, Code.InvalidArgument);
  }
  const B = examples.length;
  const inputIds = new BigInt64Array(B * seqLen).fill(BigInt(options.padId));
  const targets = new BigInt64Array(B * seqLen).fill(BigInt(options.padId));
  const mask = new Float32Array(B * seqLen);
  examples.forEach((e, row) => {
    if (e.completion.length === 0) throw new AutodidactError(`example ${row} has an empty completion`, Code.InvalidArgument);
    if (e.prompt.length === 0) throw new AutodidactError(`example ${row} has an empty prompt (nothing to condition the first token on)`, Code.InvalidArgument);
    const seq = [...e.prompt, ...e.completion];
    for (let t = 0; t + 1 < seq.length; t++) {
      inputIds[row * seqLen + t] = BigInt(seq[t]!);
      targets[row * seqLen + t] = BigInt(seq[t + 1]!);
      if (t + 1 >= e.prompt.length) mask[row * seqLen + t] = 1;
    }
  });
  return { batchSize: B, seqLen, inputIds, targets, mask };
}
