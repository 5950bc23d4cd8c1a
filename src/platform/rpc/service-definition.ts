import { fromBinary, toBinary, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { DecodeFailure } from "./status.js";

/** The grpc-js path of a method: `/<package>.<Service>/<Method>`, as every gRPC implementation names it. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/**
 * Turns a protobuf-es service descriptor into the grpc-js definition of its wire format, so the
 * generated `GenService` constants are the only source of truth for paths, streaming and codecs.
 * Request decoding never throws: a malformed request decodes to a {@link DecodeFailure} that the
 * handler wrapper answers with INVALID_ARGUMENT.
 */
export function createServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = createMethodDefinition(method);
  }
  return definition as ServiceDefinition;
}

/** The grpc-js definition of one method (see {@link createServiceDefinition}). */
export function createMethodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: methodPath(method),
    originalName: method.localName,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (value: unknown) => Buffer.from(toBinary(method.input, value as Message)),
    requestDeserialize: (bytes: Buffer) => {
      try {
        return fromBinary(method.input, bytes);
      } catch (cause) {
        return new DecodeFailure(method.input.typeName, cause);
      }
    },
    responseSerialize: (value: unknown) => Buffer.from(toBinary(method.output, value as Message)),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
  };
}
