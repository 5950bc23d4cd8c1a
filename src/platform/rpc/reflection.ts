import { toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "../errors/index.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { implement, type ServiceImplementation } from "./service.js";

/** The request fields both reflection versions share (v1 and v1alpha are wire-identical). */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** Index of the schema files behind a set of services: files by name, symbols by full name. */
class SchemaIndex {
  readonly files = new Map<string, DescFile>();
  readonly symbols = new Map<string, DescFile>();
  readonly extensions = new Map<string, Map<number, DescFile>>();

  constructor(readonly services: readonly DescService[]) {
    for (const service of services) this.addFile(service.file);
  }

  private addFile(file: DescFile): void {
    const name = file.proto.name;
    if (this.files.has(name)) return;
    this.files.set(name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    for (const service of file.services) {
      this.symbols.set(service.typeName, file);
      for (const method of service.methods) this.symbols.set(`${service.typeName}.${method.name}`, file);
    }
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const m of file.messages) this.addMessage(m, file);
    for (const ext of file.extensions) this.addExtension(ext.extendee.typeName, ext.number, ext.typeName, file);
  }

  private addMessage(message: DescMessage, file: DescFile): void {
    this.symbols.set(message.typeName, file);
    for (const field of message.fields) this.symbols.set(`${message.typeName}.${field.name}`, file);
    for (const nested of message.nestedMessages) this.addMessage(nested, file);
    for (const e of message.nestedEnums) this.symbols.set(e.typeName, file);
    for (const ext of message.nestedExtensions) this.addExtension(ext.extendee.typeName, ext.number, ext.typeName, file);
  }

  private addExtension(extendee: string, number: number, typeName: string, file: DescFile): void {
    this.symbols.set(typeName, file);
    let byNumber = this.extensions.get(extendee);
    if (!byNumber) this.extensions.set(extendee, (byNumber = new Map()));
    byNumber.set(number, file);
  }

  /** The serialized file and, after it, every file it depends on (transitively), each once. */
  withDependencies(file: DescFile): Uint8Array[] {
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile): void => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return out;
  }
}

function notFound(message: string): ReflectionAnswer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } };
}

function answer(index: SchemaIndex, request: ReflectionRequest): ReflectionAnswer {
  const files = (file: DescFile | undefined, what: string): ReflectionAnswer =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(file) } } : notFound(what);
  const r = request.messageRequest;
  switch (r.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: { service: index.services.map((s) => ({ name: s.typeName })).sort((a, b) => a.name.localeCompare(b.name)) },
      };
    case "fileByFilename":
      return files(index.files.get(r.value), `file "${r.value}" not found`);
    case "fileContainingSymbol":
      return files(index.symbols.get(r.value.replace(/^\./, "")), `symbol "${r.value}" not found`);
    case "fileContainingExtension":
      return files(
        index.extensions.get(r.value.containingType)?.get(r.value.extensionNumber),
        `extension ${r.value.extensionNumber} of "${r.value.containingType}" not found`,
      );
    case "allExtensionNumbersOfType": {
      if (!index.symbols.has(r.value)) return notFound(`type "${r.value}" not found`);
      const numbers = [...(index.extensions.get(r.value)?.keys() ?? [])].sort((a, b) => a - b);
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } };
    }
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } };
  }
}

/**
 * Creates the server reflection services (v1, and v1alpha which grpcurl still asks for) answering
 * from the protobuf-es descriptors of the served services, so tools can call any Autodidact server
 * without .proto files. `services` is read lazily so the list includes the reflection services.
 */
export function createReflectionServices(services: () => readonly DescService[]): ServiceImplementation[] {
  let index: SchemaIndex | undefined;
  const getIndex = (): SchemaIndex => (index ??= new SchemaIndex(services()));
  const v1 = implement(ServerReflectionV1, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: answer(getIndex(), request as ReflectionRequest) };
      }
    },
  });
  const v1alpha = implement(ServerReflectionV1Alpha, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: answer(getIndex(), request as ReflectionRequest) };
      }
    },
  });
  return [v1, v1alpha];
}
