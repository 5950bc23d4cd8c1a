import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadPolicyValueModel, MODEL_FILES, openPolicyValueNetwork, sha256, type Parameters, type PolicyValueConfig, type PolicyValueNetwork, type SessionHost } from "../../engine/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { LoadedModel } from "./model-holder.js";

/** A policy/value checkpoint opened for serving: the network in a worker, its config and its weights. */
export interface PolicyValueModel {
  readonly network: PolicyValueNetwork;
  readonly config: PolicyValueConfig;
  /** The weights (the trainer starts from them; the monitor keeps them to play). */
  readonly params: Parameters;
  /** config.json's extra keys: `game` names the game it was made for. */
  readonly extra: Readonly<Record<string, unknown>>;
}

/**
 * Loads a policy/value checkpoint folder (verified against its manifest) into `host` for a model
 * holder. Exists so the generator and the monitor serve game models the way decoders are served:
 * named `version` (or `sha256:<digest of the weights>`), released once their last request finished.
 */
export async function loadPolicyValueServing(host: SessionHost, dir: string, version?: string): Promise<LoadedModel<PolicyValueModel>> {
  const loaded = await loadPolicyValueModel(dir);
  const network = await openPolicyValueNetwork(host, loaded.config, loaded.params);
  const name = version ?? `sha256:${sha256(new Uint8Array(await readFile(join(dir, MODEL_FILES.weights))))}`;
  return { version: name, model: { network, config: loaded.config, params: loaded.params, extra: loaded.extra }, release: () => network.release() };
}

/** The warm-up check of a policy/value model: one position of zeros must give finite logits and value. */
export async function validatePolicyValueModel(loaded: LoadedModel<PolicyValueModel>): Promise<void> {
  const { network, config } = loaded.model;
  const out = await network.evaluate(new Int32Array(config.inputLength), 1);
  if (!out.logits.every(Number.isFinite) || !out.values.every(Number.isFinite)) {
    throw new AutodidactError(`${loaded.version}: warm-up evaluation gave non-finite outputs`, Code.FailedPrecondition);
  }
}
