// gRPC runtime of Autodidact: protobuf-es services served and called over @grpc/grpc-js, with health,
// reflection, message size limits, deadlines, one error mapping and OpenTelemetry trace propagation.
export { createClient, DEFAULT_DEADLINE_MS } from "./client.js";
export type { CallOptions, ClientMethod, ClientOptions, RpcClient } from "./client.js";
export { createHealth, ServingStatus } from "./health.js";
export type { Health, HealthReporter } from "./health.js";
export { createReflectionServices } from "./reflection.js";
export { createServer, DEFAULT_MAX_MESSAGE_BYTES } from "./server.js";
export type { Authorize, RpcServer, ServerOptions } from "./server.js";
export { implement } from "./service.js";
export { createInfoHandler, softwareVersion } from "./service-info.js";
export type { InfoSource } from "./service-info.js";
export type { CallContext, MethodHandler, Principal, ServiceHandlers, ServiceImplementation, ServiceMethods } from "./service.js";
export { createMethodDefinition, createServiceDefinition, methodPath } from "./service-definition.js";
export { DecodeFailure, fromStatus, toStatus } from "./status.js";
export { metadataGetter, metadataSetter, RPC_TRACER_NAME, rpcTracer } from "./trace.js";
