export type {
  Attr,
  Attrs,
  Dim,
  DType,
  DTypeArrayMap,
  Graph,
  Model,
  Node,
  OpsetImport,
  Shape,
  TensorArray,
  TensorData,
  ValueInfo,
} from "./ir.js";
export { attr, DEFAULT_OPSET, MS_DOMAIN, MS_OPSET, ONNX_DOMAIN, shapeSize } from "./ir.js";
export type { OpOptions, OutputType, ValueRef } from "./builder.js";
export { createGraphBuilder, dtypeFromOnnx, GraphBuilder, onnxTypeCode } from "./builder.js";
export { IR_VERSION, parseModel, serialize, toModelProto } from "./serialize.js";
export { graphIssues, validate } from "./validate.js";
export { broadcastShapes, matMulShape, reshapeShape } from "./shape.js";
export { EXTERNAL_DATA_SUFFIX, EXTERNAL_DATA_THRESHOLD, serializeWithExternalData } from "./external-data.js";
