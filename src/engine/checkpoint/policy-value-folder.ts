import { join } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { serialize } from "../graph/serialize.js";
import type { Parameters } from "../model/params.js";
import { buildPolicyValueGraph, checkPolicyValueParams, createPolicyValueConfig, type PolicyValueConfig } from "../model/policy-value.js";
import { readManifest, readVerified, writeCheckpointFiles, type Manifest } from "./files.js";
import { MODEL_FILES } from "./model-folder.js";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.js";

/** `model_type` of a policy/value folder's config.json. */
export const POLICY_VALUE_MODEL_TYPE = "autodidact-policy-value";

/** What {@link savePolicyValueModel} writes. */
export interface SavePolicyValueOptions {
  readonly config: PolicyValueConfig;
  readonly params: Parameters;
  /** Extra keys of config.json's `autodidact` section (the game's name, the round, ...). */
  readonly extra?: Record<string, unknown>;
  /** Also write the inference graph as onnx/model.onnx (default true). */
  readonly onnx?: boolean;
  /** Strings stored in the safetensors header and the manifest (lineage, step…). */
  readonly metadata?: Record<string, string>;
}

/**
 * Saves a policy/value network as a checkpoint folder like the decoder's: config.json
 * (`model_type` {@link POLICY_VALUE_MODEL_TYPE}, the exact config under `autodidact.policyValue`),
 * model.safetensors, onnx/model.onnx (inference graph) and manifest.json with every file's sha256,
 * so the registry can carry it as it carries decoders.
 */
export async function savePolicyValueModel(dir: string, o: SavePolicyValueOptions): Promise<Manifest> {
  checkPolicyValueParams(o.config, o.params);
  const files: Record<string, Uint8Array | string> = {
    [MODEL_FILES.config]: JSON.stringify({ model_type: POLICY_VALUE_MODEL_TYPE, torch_dtype: "float32", autodidact: { format: 1, policyValue: o.config, ...(o.extra ?? {}) } }, null, 2),
    [MODEL_FILES.weights]: encodeSafetensors(o.params, { format: "pt", ...(o.metadata ?? {}) }),
  };
  if (o.onnx ?? true) files[MODEL_FILES.onnx] = serialize(buildPolicyValueGraph(o.config, { params: o.params }));
  return writeCheckpointFiles(dir, "model", files, o.metadata);
}

/** A policy/value folder loaded and verified. */
export interface LoadedPolicyValueModel {
  readonly config: PolicyValueConfig;
  readonly params: Parameters;
  /** config.json's `autodidact` section minus format and config (what `extra` held). */
  readonly extra: Record<string, unknown>;
  readonly manifest: Manifest;
  readonly metadata: Record<string, string>;
}

/**
 * Loads a folder written by {@link savePolicyValueModel}, verifying every file against the
 * manifest (DataLoss on a digest mismatch) and the weights against the config (InvalidArgument).
 */
export async function loadPolicyValueModel(dir: string): Promise<LoadedPolicyValueModel> {
  const manifest = await readManifest(dir);
  const configPath = join(dir, MODEL_FILES.config);
  let json: { model_type?: unknown; autodidact?: { format?: unknown; policyValue?: unknown } & Record<string, unknown> };
  try {
    json = JSON.parse(Buffer.from(await readVerified(dir, MODEL_FILES.config, manifest)).toString("utf8")) as typeof json;
  } catch (cause) {
    if (cause instanceof AutodidactError) throw cause;
    throw new AutodidactError(`${configPath} is not valid JSON`, Code.DataLoss, { cause, details: { file: configPath } });
  }
  if (json.model_type !== POLICY_VALUE_MODEL_TYPE || json.autodidact?.policyValue === undefined) {
    throw new AutodidactError(`${configPath}: not a policy/value model (model_type ${String(json.model_type)})`, Code.InvalidArgument, { details: { file: configPath } });
  }
  const { format: _format, policyValue, ...extra } = json.autodidact;
  let config: PolicyValueConfig;
  try {
    config = createPolicyValueConfig(policyValue as PolicyValueConfig);
  } catch (e) {
    throw new AutodidactError(`${configPath}: ${AutodidactError.from(e).rawMessage}`, Code.InvalidArgument, { cause: e, details: { file: configPath } });
  }
  const weightsPath = join(dir, MODEL_FILES.weights);
  const st = decodeSafetensors(await readVerified(dir, MODEL_FILES.weights, manifest), weightsPath);
  for (const [name, t] of Object.entries(st.tensors)) {
    if (t.dtype !== "float32") throw new AutodidactError(`${weightsPath}: tensor ${name} is ${t.dtype}, expected float32`, Code.InvalidArgument, { details: { file: weightsPath } });
  }
  checkPolicyValueParams(config, st.tensors, weightsPath);
  const { format: _f, ...metadata } = st.metadata;
  return { config, params: st.tensors as Parameters, extra, manifest, metadata };
}
