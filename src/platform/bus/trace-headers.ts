import type { Context, TextMapGetter, TextMapSetter } from "@opentelemetry/api";
import { context as otelContext, propagation } from "@opentelemetry/api";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";

/**
 * Writes propagation fields (`traceparent`, `tracestate`, `baggage`) into NATS headers. There is
 * no official OpenTelemetry instrumentation for NATS in JS, so the bus carries context itself.
 */
export const natsHeaderSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/** Reads propagation fields back from NATS headers on the consuming side. */
export const natsHeaderGetter: TextMapGetter<MsgHdrs | undefined> = {
  get(carrier, key) {
    if (carrier === undefined || !carrier.has(key)) return undefined;
    const v = carrier.get(key);
    return v === "" ? undefined : v;
  },
  keys(carrier) {
    return carrier === undefined ? [] : carrier.keys();
  },
};

/** Injects `ctx` (the active context by default) into `headers`, creating them when absent. */
export function injectTraceContext(headers: MsgHdrs | undefined, ctx: Context = otelContext.active()): MsgHdrs {
  const h = headers ?? natsHeaders();
  propagation.inject(ctx, h, natsHeaderSetter);
  return h;
}

/** Extracts the remote context carried in `headers` (the root context when there is none). */
export function extractTraceContext(headers: MsgHdrs | undefined, base: Context = otelContext.active()): Context {
  return propagation.extract(base, headers, natsHeaderGetter);
}
