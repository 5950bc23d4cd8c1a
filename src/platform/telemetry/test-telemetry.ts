import { metrics, trace, type Attributes } from "@opentelemetry/api";
import { DataPointType, MeterProvider, MetricReader, type Histogram } from "@opentelemetry/sdk-metrics";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOnSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace";
import { installPropagation } from "./setup.js";

/** One data point, flattened: a counter/gauge value, or a histogram's count and sum. */
export interface TestMetricPoint {
  name: string;
  attributes: Attributes;
  /** Sum or gauge value; for histograms, the sum of recorded values. */
  value: number;
  /** For histograms, how many values were recorded. */
  count?: number;
}

/** A reader that only collects when asked: tests read metrics synchronously with their actions. */
class OnDemandReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** In-memory tracing for tests: spans are kept instead of exported, so tests can assert on them. */
export interface TestTelemetry {
  readonly exporter: InMemorySpanExporter;
  /** Every span finished since the last reset, in end order. */
  spans(): ReadableSpan[];
  /** Finished spans with this name. */
  spansNamed(name: string): ReadableSpan[];
  reset(): void;
  /** Collects every metric recorded so far (cumulative), flattened to points. */
  collectMetrics(): Promise<TestMetricPoint[]>;
  /** Sum of the values of metric `name` over points whose attributes include `attributes`. */
  metricValue(name: string, attributes?: Attributes): Promise<number>;
  /** Unregisters the globals so another test file or setup can install its own. */
  shutdown(): Promise<void>;
}

/**
 * Installs a tracer provider with an in-memory exporter, an on-demand meter provider, plus the production context manager and
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
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.disable();
  metrics.setGlobalMeterProvider(meterProvider);
  const collectMetrics = async (): Promise<TestMetricPoint[]> => {
    const { resourceMetrics } = await reader.collect();
    const out: TestMetricPoint[] = [];
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const dp of metric.dataPoints) {
          if (metric.dataPointType === DataPointType.HISTOGRAM) {
            const h = dp.value as Histogram;
            out.push({ name: metric.descriptor.name, attributes: dp.attributes, value: h.sum ?? 0, count: h.count });
          } else if (typeof dp.value === "number") {
            out.push({ name: metric.descriptor.name, attributes: dp.attributes, value: dp.value });
          }
        }
      }
    }
    return out;
  };
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    spansNamed: (name) => exporter.getFinishedSpans().filter((s) => s.name === name),
    reset: () => exporter.reset(),
    collectMetrics,
    async metricValue(name, attributes = {}) {
      const points = await collectMetrics();
      return points
        .filter((p) => p.name === name && Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))
        .reduce((sum, p) => sum + p.value, 0);
    },
    async shutdown() {
      await provider.shutdown().catch(() => undefined);
      await meterProvider.shutdown().catch(() => undefined);
      trace.disable();
      metrics.disable();
    },
  };
}
