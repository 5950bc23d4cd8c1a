export type { SafetensorsContent } from "./safetensors.js";
export { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, readSafetensors } from "./safetensors.js";
export type { Manifest } from "./files.js";
export { MANIFEST_FILE, readManifest, readVerified, sha256, writeCheckpointFiles, writeFileAtomic } from "./files.js";
export type { DecoderFolder, LoadedModel, SaveModelOptions } from "./model-folder.js";
export { fromHfConfig, loadDecoder, loadModel, MODEL_FILES, MODEL_TYPE, saveModel, toHfConfig } from "./model-folder.js";
export type { AdapterTensors, LoadedLoraAdapter, PeftLoraConfig, SaveLoraOptions } from "./peft.js";
export { ADAPTER_FILES, expectedAdapterShapes, loadLoraAdapter, peftConfig, saveLoraAdapter } from "./peft.js";
