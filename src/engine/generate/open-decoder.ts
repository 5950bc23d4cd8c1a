import { AutodidactError, Code } from "../../errors/index.js";
import { loadDecoder, type DecoderFolder } from "../checkpoint/model-folder.js";
import { serialize } from "../graph/serialize.js";
import { buildServingGraph } from "../model/transformer.js";
import type { SessionOptions } from "../runtime/session.js";
import type { RemoteSession, SessionHost } from "../runtime/worker.js";
import { createTextGenerator, type TextGenerator } from "./generator.js";
import { decoderSignature, type DecoderSignature } from "./signature.js";

/** Options of {@link openDecoder}. */
export interface OpenDecoderOptions extends SessionOptions {
  /** For our own folders, run the time-major decoding graph instead of onnx/model.onnx (default true). */
  readonly fast?: boolean;
}

/** A decoder folder loaded into a worker host, ready to generate. */
export interface OpenDecoder {
  readonly folder: DecoderFolder;
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
  const { fast = true, ...sessionOptions } = options;
  // Our own models decode through the time-major graph built from their weights (same outputs,
  // ~2x faster: the cache never comes back across the JS boundary); others use their ONNX file.
  const model =
    fast && folder.config && folder.params ? serialize(buildServingGraph(folder.config, folder.params, { kvLayout: "time-major" })) : folder.model;
  const session = await host.load(model, sessionOptions);
  let signature: DecoderSignature;
  try {
    signature = decoderSignature(session.inputs, session.outputs);
    const layers = folder.hfConfig.num_hidden_layers ?? folder.hfConfig.n_layer;
    if (typeof layers === "number" && layers !== signature.numLayers) {
      throw new AutodidactError(`${dir}: config.json says ${layers} layers, the ONNX decoder has ${signature.numLayers}`, Code.InvalidArgument);
    }
  } catch (e) {
    await session.release().catch(() => undefined);
    throw e;
  }
  const generator = createTextGenerator({ host, session, tokenizer: folder.tokenizer, ...(folder.maxLength !== undefined ? { maxLength: folder.maxLength } : {}) });
  return { folder, session, signature, generator };
}
