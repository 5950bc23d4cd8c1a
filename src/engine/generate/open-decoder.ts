import { AutodidactError, Code } from "../../errors/index.js";
import { loadDecoder, type DecoderFolder } from "../checkpoint/model-folder.js";
import type { SessionOptions } from "../runtime/session.js";
import type { RemoteSession, SessionHost } from "../runtime/worker.js";
import { createTextGenerator, type TextGenerator } from "./generator.js";
import { decoderSignature, type DecoderSignature } from "./signature.js";

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
export async function openDecoder(host: SessionHost, dir: string, options: SessionOptions = {}): Promise<OpenDecoder> {
  const folder = await loadDecoder(dir);
  const session = await host.load(folder.model, options);
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
