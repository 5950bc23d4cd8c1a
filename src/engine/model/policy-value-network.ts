import { AutodidactError, Code } from "../../platform/errors/index.js";
import { serialize } from "../graph/serialize.js";
import type { RemoteSession, SessionHost } from "../runtime/worker.js";
import type { Parameters } from "./params.js";
import { buildPolicyValueGraph, POLICY_VALUE_IO, type PolicyValueConfig } from "./policy-value.js";

/** Raw outputs for a batch of positions. */
export interface PolicyValueOutputs {
  /** [B, numMoves] move logits, row-major (mask and softmax over legal moves is the caller's). */
  readonly logits: Float32Array;
  /** [B] values in (−1, 1) for the player to move. */
  readonly values: Float32Array;
}

/** A policy/value network loaded into a worker (or pool): batched inference off the main thread. */
export interface PolicyValueNetwork {
  readonly config: PolicyValueConfig;
  readonly session: RemoteSession;
  /** Runs `batch` positions of `config.inputLength` tokens each (row-major). */
  evaluate(tokens: ArrayLike<number> | BigInt64Array, batch: number): Promise<PolicyValueOutputs>;
  release(): Promise<void>;
}

/** Options of {@link openPolicyValueNetwork}. */
export interface OpenPolicyValueOptions {
  /** ORT intra-op threads of the session. Default 1: batches of a few hundred positions gain nothing from more. */
  readonly threads?: number;
}

/**
 * Loads weights as an inference session (weights baked in as initializers, so a run ships only
 * the tokens) into `host`: a dedicated worker or a pool. Swapping models = opening another one.
 */
export async function openPolicyValueNetwork(host: SessionHost, config: PolicyValueConfig, params: Parameters, options: OpenPolicyValueOptions = {}): Promise<PolicyValueNetwork> {
  const model = buildPolicyValueGraph(config, { params });
  const session = await host.load(serialize(model), { intraOpThreads: options.threads ?? 1, interOpThreads: 1 });
  const io = POLICY_VALUE_IO;
  return {
    config,
    session,
    async evaluate(tokens, batch) {
      const L = config.inputLength;
      if (!Number.isInteger(batch) || batch < 1) throw new AutodidactError(`batch must be a positive integer, got ${batch}`, Code.InvalidArgument);
      if (tokens.length !== batch * L) throw new AutodidactError(`${tokens.length} tokens for ${batch} positions of ${L}`, Code.InvalidArgument);
      const data = new BigInt64Array(batch * L);
      if (tokens instanceof BigInt64Array) data.set(tokens);
      else for (let i = 0; i < data.length; i++) data[i] = BigInt(tokens[i] as number);
      const out = await session.run({ [io.tokens]: { dtype: "int64", dims: [batch, L], data } }, { outputNames: [io.logits, io.value], transfer: true });
      return { logits: out[io.logits]!.data as Float32Array, values: out[io.value]!.data as Float32Array };
    },
    release: () => session.release(),
  };
}
