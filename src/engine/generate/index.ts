export type { DecoderSignature } from "./signature.js";
export { decoderSignature } from "./signature.js";
export type { Sampler, SamplingOptions } from "./sampling.js";
export { checkSampling, createSampler } from "./sampling.js";
export type { DecodedRow, DecodeRequest } from "./decode.js";
export { decodeBatch } from "./decode.js";
export type { GenerateOptions, Generation, TextGenerator, TextGeneratorOptions } from "./generator.js";
export { createTextGenerator } from "./generator.js";
