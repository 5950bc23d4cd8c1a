import { SpanKind, SpanStatusCode, context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { CriticService } from "../../gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../gen/autodidact/v1/generator_pb.js";
import { createClient, createServer, implement, type RpcServer } from "./index.js";

// Installs a real SDK (this file runs in its own worker process, so globals do not leak).
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager().enable();

interface Seen {
  activeSpanId?: string;
  traceparent?: string;
}

describe("trace propagation", () => {
  let server: RpcServer;
  const seen: Seen = {};

  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    context.setGlobalContextManager(contextManager);
    const critic = implement(CriticService, {
      async score(request, ctx) {
        await new Promise((resolve) => setImmediate(resolve));
        seen.activeSpanId = trace.getActiveSpan()?.spanContext().spanId;
        seen.traceparent = String(ctx.metadata.get("traceparent")[0] ?? "");
        if (request.sample?.task === "fail") throw new AutodidactError("bad sample", Code.InvalidArgument);
        return { sampleId: request.sample?.id ?? "" };
      },
      swapModel: () => ({}),
      getAgreement: () => ({}),
      getInfo: () => ({}),
    });
    const generator = implement(GeneratorService, {
      async *generate(request) {
        for (let i = 0; i < request.count; i++) yield { id: `g-${i}` };
      },
      getInfo: () => ({}),
    });
    server = await createServer({ services: [critic, generator] });
  });
  afterAll(async () => {
    await server.shutdown(1000);
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  const byKind = (spans: ReadableSpan[], kind: SpanKind): ReadableSpan => {
    const found = spans.filter((s) => s.kind === kind);
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it("makes the server span a child of the client span, inside the caller's trace", async () => {
    const client = createClient(CriticService, server.address);
    const tracer = trace.getTracer("test");
    const root = await tracer.startActiveSpan("round", async (span) => {
      await client.score({ sample: { id: "abc" } });
      span.end();
      return span;
    });
    client.close();

    const spans = exporter.getFinishedSpans().filter((s) => s.name === "autodidact.v1.CriticService/Score");
    const clientSpan = byKind(spans, SpanKind.CLIENT);
    const serverSpan = byKind(spans, SpanKind.SERVER);
    const rootContext = root.spanContext();

    expect(clientSpan.spanContext().traceId).toBe(rootContext.traceId);
    expect(clientSpan.parentSpanContext?.spanId).toBe(rootContext.spanId);
    expect(serverSpan.spanContext().traceId).toBe(rootContext.traceId);
    expect(serverSpan.parentSpanContext?.spanId).toBe(clientSpan.spanContext().spanId);
    expect(serverSpan.parentSpanContext?.isRemote).toBe(true);
    // The handler ran with the server span active, and the header on the wire named the client span.
    expect(seen.activeSpanId).toBe(serverSpan.spanContext().spanId);
    expect(seen.traceparent).toContain(clientSpan.spanContext().spanId);
    expect(serverSpan.attributes["rpc.service"]).toBe("autodidact.v1.CriticService");
    expect(serverSpan.attributes["rpc.grpc.status_code"]).toBe(0);
  });

  it("marks both spans as errors with the status code when the handler fails", async () => {
    const client = createClient(CriticService, server.address);
    await expect(client.score({ sample: { id: "x", task: "fail" } })).rejects.toMatchObject({ code: Code.InvalidArgument });
    client.close();
    const spans = exporter.getFinishedSpans();
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = byKind(spans, kind);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes["rpc.grpc.status_code"]).toBe(Code.InvalidArgument);
    }
  });

  it("propagates the context on a server-streaming call", async () => {
    const client = createClient(GeneratorService, server.address);
    const ids: string[] = [];
    for await (const s of client.generate({ count: 3 })) ids.push(s.id);
    client.close();
    expect(ids).toEqual(["g-0", "g-1", "g-2"]);
    const spans = exporter.getFinishedSpans();
    const clientSpan = byKind(spans, SpanKind.CLIENT);
    const serverSpan = byKind(spans, SpanKind.SERVER);
    expect(serverSpan.spanContext().traceId).toBe(clientSpan.spanContext().traceId);
    expect(serverSpan.parentSpanContext?.spanId).toBe(clientSpan.spanContext().spanId);
  });
});
