import { context, propagation, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOnSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace";
import { installPropagation } from "./setup.js";

/** In-memory tracing for tests: spans are kept instead of exported, so tests can assert on them. */
export interface TestTelemetry {
  readonly exporter: InMemorySpanExporter;
  /** Every span finished since the last reset, in end order. */
  spans(): ReadableSpan[];
  /** Finished spans with this name. */
  spansNamed(name: string): ReadableSpan[];
  reset(): void;
  /** Unregisters the globals so another test file or setup can install its own. */
  shutdown(): Promise<void>;
}

/**
 * Installs a tracer provider with an in-memory exporter plus the production context manager and
 * W3C propagators, replacing whatever was registered. Tests use it to check that a trace crosses
 * process boundaries (NATS headers, gRPC metadata) exactly as it would in production.
 */
export function createTestTelemetry(serviceName = "autodidact-test"): TestTelemetry {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": serviceName }),
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  trace.disable();
  installPropagation();
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    spansNamed: (name) => exporter.getFinishedSpans().filter((s) => s.name === name),
    reset: () => exporter.reset(),
    async shutdown() {
      await provider.shutdown().catch(() => undefined);
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
