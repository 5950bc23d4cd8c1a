import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { ADAPTER_FILES, MODEL_FILES, openDecoder, sha256, type OpenDecoder, type SessionHost } from "../../engine/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { LoadedModel } from "./model-holder.js";
import { parseModelRef, type CheckpointFetcher } from "./model-source.js";

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/** Options of {@link loadDecoderModel}. */
export interface LoadDecoderOptions {
  /** Fetches the base checkpoint of a LoRA adapter whose base is `<lineage>@<version>`. */
  readonly fetcher?: CheckpointFetcher;
}

/** Where an adapter folder's base model is: its `base_model_name_or_path` as a checkpoint or a path. */
async function adapterBase(dir: string, fetcher: CheckpointFetcher | undefined): Promise<string> {
  let base: unknown;
  try {
    base = (JSON.parse(await readFile(join(dir, ADAPTER_FILES.config), "utf8")) as { base_model_name_or_path?: unknown }).base_model_name_or_path;
  } catch (cause) {
    throw new AutodidactError(`${join(dir, ADAPTER_FILES.config)} is not valid JSON`, Code.InvalidArgument, { cause });
  }
  if (typeof base !== "string" || base === "") throw new AutodidactError(`${dir}: adapter_config.json names no base model`, Code.InvalidArgument);
  const ref = parseModelRef(base);
  if (ref.kind === "checkpoint") {
    if (fetcher === undefined) throw new AutodidactError(`${dir}: adapter base ${base} needs the checkpoint registry`, Code.FailedPrecondition);
    return fetcher.materialize(ref.lineage, ref.version);
  }
  return isAbsolute(ref.path) ? ref.path : resolve(dir, ref.path);
}

/**
 * Loads a decoder into `host` as a swappable model: a full model folder (ours or optimum-exported), or
 * a PEFT LoRA adapter folder, merged into its base (`base_model_name_or_path`: a path or
 * `<lineage>@<version>`). The version is the one given (a checkpoint's `<lineage>@<version>`) or
 * `sha256:<digest of the weights file>` (adapter weights for an adapter), so every result names the
 * weights that produced it.
 */
export async function loadDecoderModel(host: SessionHost, dir: string, version?: string, options: LoadDecoderOptions = {}): Promise<LoadedModel<OpenDecoder>> {
  const isAdapter = (await exists(join(dir, ADAPTER_FILES.config))) && !(await exists(join(dir, MODEL_FILES.config)));
  const decoder = isAdapter ? await openDecoder(host, await adapterBase(dir, options.fetcher), { adapter: dir }) : await openDecoder(host, dir);
  let name = version;
  if (name === undefined) {
    const weights = isAdapter ? join(dir, ADAPTER_FILES.weights) : join(dir, MODEL_FILES.weights);
    const bytes = (await exists(weights)) ? new Uint8Array(await readFile(weights)) : decoder.folder?.model ?? new TextEncoder().encode(dir);
    name = `sha256:${sha256(bytes)}`;
  }
  return { version: name, model: decoder, release: () => decoder.session.release() };
}

/**
 * The warm-up check of a decoder before it may serve: one greedy token and one teacher-forced score
 * must come back finite. Catches weights that load but produce NaN (a corrupt or diverged checkpoint).
 */
export async function validateDecoderModel(loaded: LoadedModel<OpenDecoder>): Promise<void> {
  const { generator } = loaded.model;
  const tok = generator.tokenizer;
  const first = tok.bosId ?? tok.padId ?? 0;
  const second = tok.vocabSize > first + 1 ? first + 1 : 0;
  const [gen] = await generator.generate([[first]], { maxNewTokens: 1, greedy: true, stopTokens: [] });
  if (gen === undefined || gen.logprobs.length !== 1 || !Number.isFinite(gen.logprobs[0])) {
    throw new AutodidactError(`${loaded.version}: warm-up generation gave no finite log-probability`, Code.FailedPrecondition);
  }
  const [row] = await generator.score([[first]], [[second]]);
  if (row === undefined || !Number.isFinite(row.total)) {
    throw new AutodidactError(`${loaded.version}: warm-up scoring gave a non-finite log-probability`, Code.FailedPrecondition);
  }
}
