import type { Metadata } from "@grpc/grpc-js";
import { trace, type TextMapGetter, type TextMapSetter, type Tracer } from "@opentelemetry/api";

/** Name of the tracer all gRPC spans come from. */
export const RPC_TRACER_NAME = "autodidact.rpc";

/** The tracer of the gRPC layer, looked up per use so a provider installed later is picked up. */
export function rpcTracer(): Tracer {
  return trace.getTracer(RPC_TRACER_NAME);
}

/** Writes propagation headers (W3C `traceparent`, `tracestate`, baggage) into gRPC metadata. */
export const metadataSetter: TextMapSetter<Metadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/** Reads propagation headers from incoming gRPC metadata (text values only). */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys(carrier) {
    return Object.keys(carrier.getMap());
  },
  get(carrier, key) {
    const values = carrier.get(key).filter((v): v is string => typeof v === "string");
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  },
};
