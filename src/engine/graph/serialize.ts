import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import {
  AttributeProto_AttributeType as AttrType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type TensorProto,
  type ValueInfoProto,
} from "../../gen/onnx/onnx_pb.js";
import { dtypeFromOnnx, onnxTypeCode } from "./builder.js";
import type { Attr, Dim, DType, Graph, Model, Node, TensorArray, TensorData, ValueInfo } from "./ir.js";

/** ONNX IR version written into models (IR 8 = ONNX 1.12 / opset 17, read by every ORT ≥ 1.12). */
export const IR_VERSION = 8;

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** Converts an IR model into the generated protobuf message (for callers that edit protos). */
export function toModelProto(model: Model): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: BigInt(IR_VERSION),
    producerName: model.producerName ?? "autodidact",
    producerVersion: model.producerVersion ?? "",
    opsetImport: model.opsets.map((o) => create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(o.version) })),
    graph: graphToProto(model.graph),
    metadataProps: Object.entries(model.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
}

/** Serializes an IR model to ONNX bytes, ready for an inference session or a `.onnx` file. */
export function serialize(model: Model): Uint8Array {
  return toBinary(ModelProtoSchema, toModelProto(model));
}

/**
 * Parses ONNX bytes back into the IR (tensors with raw or typed data, the dtypes the engine
 * knows). Exists so tests and loaders can inspect any `.onnx` file, ours or exported elsewhere.
 */
export function parseModel(bytes: Uint8Array): Model {
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (cause) {
    throw new AutodidactError("not a valid ONNX model (protobuf decode failed)", Code.InvalidArgument, { cause });
  }
  const g = proto.graph;
  if (!g) throw new AutodidactError("ONNX model has no graph", Code.InvalidArgument);
  return {
    graph: graphFromProto(g),
    opsets: proto.opsetImport.map((o) => ({ domain: o.domain, version: Number(o.version) })),
    producerName: proto.producerName,
    producerVersion: proto.producerVersion,
    metadata: Object.fromEntries(proto.metadataProps.map((e) => [e.key, e.value])),
  };
}

function valueInfoFromProto(v: ValueInfoProto): ValueInfo {
  const t = v.type?.value.case === "tensorType" ? v.type.value.value : undefined;
  const dtype = dtypeFromOnnx(t?.elemType ?? 0) ?? "float32";
  const shape: Dim[] = (t?.shape?.dim ?? []).map((d) =>
    d.value.case === "dimValue" ? Number(d.value.value) : d.value.case === "dimParam" ? d.value.value : null,
  );
  return { name: v.name, dtype, shape };
}

function graphFromProto(g: GraphProto): Graph {
  const vi = valueInfoFromProto;
  return {
    name: g.name,
    inputs: g.input.map(vi),
    outputs: g.output.map(vi),
    valueInfo: g.valueInfo.map(vi),
    initializers: g.initializer.map(tensorFromProto),
    nodes: g.node.map(
      (n): Node => ({
        op: n.opType,
        ...(n.domain ? { domain: n.domain } : {}),
        inputs: [...n.input],
        outputs: [...n.output],
        ...(n.name ? { name: n.name } : {}),
        ...(n.attribute.length > 0 ? { attrs: Object.fromEntries(n.attribute.map((a) => [a.name, attrFromProto(a)])) } : {}),
      }),
    ),
  };
}

/** `nodePrefix` keeps default node names of subgraphs apart from the enclosing graph's. */
function graphToProto(g: Graph, nodePrefix = ""): GraphProto {
  return create(GraphProtoSchema, {
    name: g.name,
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
    valueInfo: g.valueInfo.map(valueInfoToProto),
    initializer: g.initializers.map(tensorToProto),
    node: g.nodes.map((n, i) =>
      create(NodeProtoSchema, {
        opType: n.op,
        domain: n.domain ?? "",
        name: n.name ?? `${nodePrefix}${n.op}_${i}`,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs ?? {}).map(([name, a]) => attrToProto(name, a)),
      }),
    ),
  });
}

function valueInfoToProto(v: ValueInfo): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name: v.name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: create(TypeProto_TensorSchema, {
          elemType: onnxTypeCode(v.dtype),
          shape: create(TensorShapeProtoSchema, {
            dim: v.shape.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value:
                  typeof d === "number"
                    ? { case: "dimValue", value: BigInt(d) }
                    : typeof d === "string"
                      ? { case: "dimParam", value: d }
                      : { case: undefined },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

function attrToProto(name: string, a: Attr): AttributeProto {
  switch (a.kind) {
    case "int":
      return create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(a.value) });
    case "float":
      return create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f: a.value });
    case "string":
      return create(AttributeProtoSchema, { name, type: AttrType.STRING, s: utf8.encode(a.value) });
    case "ints":
      return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: a.value.map((v) => BigInt(v)) });
    case "floats":
      return create(AttributeProtoSchema, { name, type: AttrType.FLOATS, floats: [...a.value] });
    case "strings":
      return create(AttributeProtoSchema, { name, type: AttrType.STRINGS, strings: a.value.map((s) => utf8.encode(s)) });
    case "tensor":
      return create(AttributeProtoSchema, { name, type: AttrType.TENSOR, t: tensorToProto(a.value) });
    case "graph":
      return create(AttributeProtoSchema, { name, type: AttrType.GRAPH, g: graphToProto(a.value, `${a.value.name}/`) });
  }
}

function attrFromProto(a: AttributeProto): Attr {
  switch (a.type) {
    case AttrType.INT:
      return { kind: "int", value: Number(a.i) };
    case AttrType.FLOAT:
      return { kind: "float", value: a.f };
    case AttrType.STRING:
      return { kind: "string", value: utf8d.decode(a.s) };
    case AttrType.INTS:
      return { kind: "ints", value: a.ints.map(Number) };
    case AttrType.FLOATS:
      return { kind: "floats", value: [...a.floats] };
    case AttrType.STRINGS:
      return { kind: "strings", value: a.strings.map((s) => utf8d.decode(s)) };
    case AttrType.TENSOR:
      if (a.t) return { kind: "tensor", value: tensorFromProto(a.t) };
      break;
    case AttrType.GRAPH:
      if (a.g) return { kind: "graph", value: graphFromProto(a.g) };
      break;
    default:
      break;
  }
  throw new AutodidactError(`attribute "${a.name}" has unsupported type ${AttrType[a.type] ?? a.type}`, Code.Unimplemented);
}

/** Little-endian raw bytes of a typed array (the host is little-endian; ONNX raw_data is LE). */
function rawBytes(data: TensorArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

function tensorToProto(t: TensorData): TensorProto {
  return create(TensorProtoSchema, {
    name: t.name,
    dataType: onnxTypeCode(t.dtype),
    dims: t.dims.map((d) => BigInt(d)),
    rawData: rawBytes(t.data),
  });
}

function tensorFromProto(t: TensorProto): TensorData {
  const dtype = dtypeFromOnnx(t.dataType);
  if (dtype === null) throw new AutodidactError(`tensor "${t.name}" has unsupported data type ${t.dataType}`, Code.Unimplemented);
  const dims = t.dims.map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  let data: TensorArray;
  if (t.rawData.length > 0) {
    const buf = t.rawData.slice().buffer;
    data = makeArray(dtype, buf);
  } else {
    switch (dtype) {
      case "float32":
        data = Float32Array.from(t.floatData);
        break;
      case "float64":
        data = Float64Array.from(t.doubleData);
        break;
      case "int64":
        data = BigInt64Array.from(t.int64Data);
        break;
      case "int32":
        data = Int32Array.from(t.int32Data);
        break;
      case "bool":
        data = Uint8Array.from(t.int32Data);
        break;
    }
  }
  if (data.length !== n) {
    throw new AutodidactError(`tensor "${t.name}": ${data.length} elements for dims [${dims.join(",")}]`, Code.DataLoss);
  }
  return { name: t.name, dtype, dims, data } as TensorData;
}

function makeArray(dtype: DType, buf: ArrayBuffer): TensorArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(buf);
    case "float64":
      return new Float64Array(buf);
    case "int64":
      return new BigInt64Array(buf);
    case "int32":
      return new Int32Array(buf);
    case "bool":
      return new Uint8Array(buf);
  }
}
