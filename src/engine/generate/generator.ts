import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { RemoteSession, SessionHost } from "../runtime/worker.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { DecodedRow, DecodeRequest } from "./decode.js";
import type { GenerateInWorkerArgs, ScoreInWorkerArgs } from "./generate-worker.js";
import type { ScoredRow } from "./score.js";
import { checkSampling, isGreedy, type SamplingOptions } from "./sampling.js";
import { decoderSignature } from "./signature.js";

const WORKER_MODULE = new URL("./generate-worker.ts", import.meta.url);

/** Options of one {@link TextGenerator.generate} call. */
export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  /** Default: the tokenizer's eos (if any). */
  readonly stopTokens?: readonly number[];
  readonly seed?: number | string;
  /** Prepend the tokenizer's bos to text prompts. Default false. */
  readonly addBos?: boolean;
}

/** One generated continuation. */
export interface Generation {
  /** Prompt token ids as fed to the model. */
  readonly promptIds: readonly number[];
  /** Generated ids (ending with the stop token when `finishReason` is "stop"). */
  readonly tokens: readonly number[];
  /** Decoded text of the generated ids, special tokens removed. */
  readonly text: string;
  /** Per generated token log-probability under the unmodified softmax. */
  readonly logprobs: readonly number[];
  readonly finishReason: "stop" | "length";
}

/** Samples continuations from a decoder session hosted in a worker (or pool). */
export interface TextGenerator {
  readonly session: RemoteSession;
  readonly tokenizer: Tokenizer;
  generate(prompts: readonly (string | readonly number[])[], options: GenerateOptions): Promise<Generation[]>;
  /**
   * Teacher-forced log-probabilities of each continuation given its prompt (text is encoded with
   * the tokenizer, without bos/eos unless `addBos`/`addEos`).
   */
  score(
    prompts: readonly (string | readonly number[])[],
    continuations: readonly (string | readonly number[])[],
    options?: { readonly addBos?: boolean; readonly addEos?: boolean },
  ): Promise<ScoredRow[]>;
}

/** Options of {@link createTextGenerator}. */
export interface TextGeneratorOptions {
  readonly host: SessionHost;
  /** A decoder with the HF ONNX signature already loaded in `host`. */
  readonly session: RemoteSession;
  /**
   * Resolves the same model's greedy decoding graph (`buildGreedyDecodingGraph`) loaded in `host`;
   * called on each greedy request, so a generator that only samples never loads it. Greedy requests
   * then decode in one run through it instead of one run per token; undefined keeps them on the
   * per-token path (same results).
   */
  readonly greedySession?: () => Promise<RemoteSession | undefined>;
  readonly tokenizer: Tokenizer;
  /** Context length of the model (prompt + new tokens); default unlimited. */
  readonly maxLength?: number;
}

/**
 * Binds a loaded decoder session, its host and a tokenizer into a generator. The decoding loop
 * (prefill + KV-cached steps + sampling) runs inside the worker; only prompts and results cross.
 */
export function createTextGenerator(options: TextGeneratorOptions): TextGenerator {
  const { host, session, tokenizer } = options;
  decoderSignature(session.inputs, session.outputs); // fail early on a non-decoder model
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  return {
    session,
    tokenizer,
    async generate(prompts, o) {
      checkSampling(o);
      const promptIds = prompts.map((p) => (typeof p === "string" ? tokenizer.encode(p, { addBos: o.addBos ?? false }) : [...p]));
      checkIds(promptIds, tokenizer.vocabSize);
      const stopTokens = o.stopTokens ?? (tokenizer.eosId !== null ? [tokenizer.eosId] : []);
      const request: DecodeRequest = {
        prompts: promptIds,
        maxNewTokens: o.maxNewTokens,
        stopTokens,
        padId,
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}),
        ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
        ...(o.greedy !== undefined ? { greedy: o.greedy } : {}),
        ...(o.topK !== undefined ? { topK: o.topK } : {}),
        ...(o.topP !== undefined ? { topP: o.topP } : {}),
      };
      const greedy = options.greedySession && isGreedy(o) ? await options.greedySession() : undefined;
      const rows = await host.call<DecodedRow[]>(WORKER_MODULE, "generateInWorker", {
        sessionId: session.id,
        ...(greedy ? { greedySessionId: greedy.id } : {}),
        request,
      } satisfies GenerateInWorkerArgs);
      return rows.map((r, i) => ({
        promptIds: promptIds[i] as number[],
        tokens: r.tokens,
        logprobs: r.logprobs,
        finishReason: r.finishReason,
        text: tokenizer.decode(r.tokens, { skipSpecial: true }),
      }));
    },
    async score(prompts, continuations, o = {}) {
      const p = prompts.map((x) => (typeof x === "string" ? tokenizer.encode(x, { addBos: o.addBos ?? false }) : [...x]));
      const c = continuations.map((x) => (typeof x === "string" ? tokenizer.encode(x, { addEos: o.addEos ?? false }) : [...x]));
      checkIds(p, tokenizer.vocabSize);
      checkIds(c, tokenizer.vocabSize);
      const args: ScoreInWorkerArgs = {
        sessionId: session.id,
        request: { prompts: p, continuations: c, padId, ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}) },
      };
      return host.call<ScoredRow[]>(WORKER_MODULE, "scoreInWorker", args);
    },
  };
}

function checkIds(rows: readonly (readonly number[])[], vocabSize: number): void {
  for (const row of rows) {
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new AutodidactError(`token id ${id} is outside the vocabulary (size ${vocabSize})`, Code.InvalidArgument);
      }
    }
  }
}
