import { openDecoder, sha256, type OpenDecoder, type SessionHost } from "../engine/index.js";
import { AutodidactError, Code } from "../errors/index.js";
import type { LoadedModel } from "./model-holder.js";

/**
 * Loads a decoder folder (ours or optimum-exported) into `host` as a swappable model. The version is
 * the one given (a checkpoint's `<lineage>@<version>`) or `sha256:<digest of the ONNX graph>`, so
 * every result names exactly the weights that produced it.
 */
export async function loadDecoderModel(host: SessionHost, dir: string, version?: string): Promise<LoadedModel<OpenDecoder>> {
  const decoder = await openDecoder(host, dir);
  return {
    version: version ?? `sha256:${sha256(decoder.folder?.model ?? new TextEncoder().encode(dir))}`,
    model: decoder,
    release: () => decoder.session.release(),
  };
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
