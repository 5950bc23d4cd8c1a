export type { Activation, NormKind, PositionalEncoding, TransformerConfig } from "./config.js";
export { createTransformerConfig, headDim, REFERENCE_CONFIG } from "./config.js";
export type { ParamKind, Parameters, ParamSpec } from "./params.js";
export { checkParameters, initParameters, parameterCount, parameterSpecs, paramNames } from "./params.js";
export type { FloatDType, ForwardGraph, ForwardGraphOptions, LoraGraphOptions, LoraInput, ServingGraphOptions } from "./transformer.js";
export { buildForwardGraph, buildGreedyDecodingGraph, buildServingGraph, GREEDY_OUTPUTS, loraParamNames, MASK_VALUE, SERVING_DIMS } from "./transformer.js";
