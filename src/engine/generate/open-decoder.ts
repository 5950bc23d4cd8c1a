import { AutodidactError, Code } from "../../platform/errors/index.js";
import { loadDecoder, type DecoderFolder } from "../checkpoint/model-folder.js";
import { loadLoraAdapter } from "../checkpoint/peft.js";
import { serialize } from "../graph/serialize.js";
import type { TransformerConfig } from "../model/config.js";
import type { Parameters } from "../model/params.js";
import { buildGreedyDecodingGraph, buildServingGraph } from "../model/transformer.js";
import type { SessionOptions } from "../runtime/session.js";
import type { RemoteSession, SessionHost } from "../runtime/worker.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { mergeLora } from "../train/lora.js";
import { createTextGenerator, type TextGenerator } from "./generator.js";
import { decoderSignature, type DecoderSignature } from "./signature.js";

/** Options of {@link openDecoder}. */
export interface OpenDecoderOptions extends SessionOptions {
  /** For our own folders, run the buffer-layout decoding graph instead of onnx/model.onnx (default true). */
  readonly fast?: boolean;
  /**
   * A PEFT LoRA adapter folder to merge into the weights before serving (our folders only):
   * serving a merged model costs nothing extra per token.
   */
  readonly adapter?: string;
}

/** A decoder loaded into a worker host, ready to generate. */
export interface OpenDecoder {
  /** The folder it came from (absent for {@link openWeights}). */
  readonly folder?: DecoderFolder;
  readonly session: RemoteSession;
  readonly signature: DecoderSignature;
  readonly generator: TextGenerator;
}

/**
 * Loads a model folder (ours or optimum-exported) into `host` and binds a generator to it, after
 * checking that config.json and the ONNX inputs agree on the number of layers.
 */
export async function openDecoder(host: SessionHost, dir: string, options: OpenDecoderOptions = {}): Promise<OpenDecoder> {
  const folder = await loadDecoder(dir);
  const { fast = true, adapter, ...rest } = options;
  const sessionOptions: SessionOptions = folder.externalDataDir !== undefined ? { ...rest, externalDataDir: folder.externalDataDir } : rest;
  let params = folder.params;
  if (adapter !== undefined) {
    if (!folder.config || !params) throw new AutodidactError(`${dir}: LoRA adapters can only be merged into our own model folders`, Code.FailedPrecondition);
    const a = await loadLoraAdapter(adapter, folder.config);
    params = mergeLora(folder.config, params, a.adapters, {
      rank: a.config.r,
      alpha: a.config.lora_alpha,
      targetModules: a.config.target_modules,
      dropout: 0,
    });
  }
  // Our own models decode through the buffer-layout graph built from their weights (same outputs,
  // ~2x faster: the cache never comes back across the JS boundary); others use their ONNX file.
  const ours = folder.config && params && (fast || adapter !== undefined) ? { config: folder.config, params } : null;
  const model = ours
    ? serialize(buildServingGraph(ours.config, ours.params, fast ? { kvLayout: "buffer" } : {}))
    : (folder.model ?? (folder.config && params ? serialize(buildServingGraph(folder.config, params)) : null));
  if (model === null) throw new AutodidactError(`${dir}: no decoder graph`, Code.Internal);
  // Greedy requests to our fast models decode in one run (an ONNX Loop built from the same weights,
  // loaded on the first greedy request).
  const greedy = ours && fast ? () => serialize(buildGreedyDecodingGraph(ours.config, ours.params)) : undefined;
  const opened = await openModelBytes(host, model, greedy, folder.tokenizer, sessionOptions, folder.maxLength, (sig) => {
    const layers = folder.hfConfig.num_hidden_layers ?? folder.hfConfig.n_layer;
    if (typeof layers === "number" && layers !== sig.numLayers) {
      throw new AutodidactError(`${dir}: config.json says ${layers} layers, the ONNX decoder has ${sig.numLayers}`, Code.InvalidArgument);
    }
  });
  return { folder, ...opened };
}

/**
 * Serves in-memory weights (e.g. straight from the trainer, or merged with an adapter) without a
 * folder: builds the buffer-layout decoding graph and loads it into `host`.
 */
export async function openWeights(
  host: SessionHost,
  model: { readonly config: TransformerConfig; readonly params: Parameters; readonly tokenizer: Tokenizer },
  options: SessionOptions = {},
): Promise<OpenDecoder> {
  const bytes = serialize(buildServingGraph(model.config, model.params, { kvLayout: "buffer" }));
  return openModelBytes(host, bytes, () => serialize(buildGreedyDecodingGraph(model.config, model.params)), model.tokenizer, options, model.config.maxPositions);
}

/**
 * Loads the decoder into `host`; for our models, the greedy decoding graph is built and loaded on
 * the first greedy request (a generator that only samples never pays for it). The returned
 * session's `release` releases both, so callers keep releasing one session.
 */
async function openModelBytes(
  host: SessionHost,
  model: Uint8Array,
  greedyModel: (() => Uint8Array) | undefined,
  tokenizer: Tokenizer,
  options: SessionOptions,
  maxLength: number | undefined,
  check?: (sig: DecoderSignature) => void,
): Promise<Omit<OpenDecoder, "folder">> {
  const step = await host.load(model, options);
  let signature: DecoderSignature;
  try {
    signature = decoderSignature(step.inputs, step.outputs);
    check?.(signature);
  } catch (e) {
    await step.release().catch(() => undefined);
    throw e;
  }
  const greedy = greedyModel ? lazySession(host, greedyModel, options) : undefined;
  const session: RemoteSession = greedy
    ? {
        ...step,
        release: async () => {
          await Promise.all([step.release(), greedy.release()]);
        },
      }
    : step;
  const generator = createTextGenerator({ host, session, ...(greedy ? { greedySession: greedy.get } : {}), tokenizer, ...(maxLength !== undefined ? { maxLength } : {}) });
  return { session, signature, generator };
}

/**
 * A session loaded into `host` on the first `get` (concurrent callers share the load). It is an
 * optional fast path: a failed build or load resolves undefined (callers keep the per-token path,
 * whose results are the same) and is not retried; after `release`, `get` resolves undefined.
 */
function lazySession(host: SessionHost, bytes: () => Uint8Array, options: SessionOptions): { get: () => Promise<RemoteSession | undefined>; release: () => Promise<void> } {
  let loading: Promise<RemoteSession | undefined> | undefined;
  let released = false;
  return {
    get: () => {
      if (released) return Promise.resolve(undefined);
      loading ??= Promise.resolve()
        .then(() => host.load(bytes(), options))
        .catch(() => undefined);
      return loading;
    },
    release: async () => {
      released = true;
      await (await loading)?.release();
    },
  };
}
