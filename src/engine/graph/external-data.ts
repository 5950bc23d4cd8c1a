import { create, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation, type GraphProto } from "../../gen/onnx/onnx_pb.js";
import type { Model } from "./ir.js";
import { toModelProto } from "./serialize.js";

/** Default name of the weights file next to `model.onnx` (what optimum and torch.onnx write). */
export const EXTERNAL_DATA_SUFFIX = "_data";

/** Initializers at least this large (bytes) go to the external file; small constants stay inline. */
export const EXTERNAL_DATA_THRESHOLD = 1024;

/**
 * Serializes a model with its large initializers in a separate weights file (`model.onnx` +
 * `model.onnx_data`): protobuf caps a message at 2 GB, so larger models can only be stored this
 * way. Tensors are aligned to 64 bytes in the data file; `location` is the data file's name
 * relative to the model file.
 */
export function serializeWithExternalData(model: Model, location: string, threshold = EXTERNAL_DATA_THRESHOLD): { model: Uint8Array; data: Uint8Array } {
  const proto = toModelProto(model);
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let size = 0;
  const visit = (g: GraphProto | undefined): void => {
    if (!g) return;
    for (const t of g.initializer) {
      if (t.rawData.length < threshold) continue;
      const offset = Math.ceil(size / 64) * 64;
      chunks.push({ offset, bytes: t.rawData });
      size = offset + t.rawData.length;
      t.externalData = [
        create(StringStringEntryProtoSchema, { key: "location", value: location }),
        create(StringStringEntryProtoSchema, { key: "offset", value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: "length", value: String(t.rawData.length) }),
      ];
      t.dataLocation = TensorProto_DataLocation.EXTERNAL;
      t.rawData = new Uint8Array(0);
    }
    for (const n of g.node) for (const a of n.attribute) visit(a.g);
  };
  visit(proto.graph);
  const data = new Uint8Array(size);
  for (const c of chunks) data.set(c.bytes, c.offset);
  return { model: toBinary(ModelProtoSchema, proto), data };
}
