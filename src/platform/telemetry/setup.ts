import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  context,
  diag,
  DiagLogLevel,
  metrics,
  propagation,
  trace,
  type DiagLogger,
  type Meter,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  CompositePropagator,
  setGlobalErrorHandler,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, type IMetricReader } from "@opentelemetry/sdk-metrics";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { AutodidactError, Code } from "../errors/index.js";
import { createLogger, setLogService } from "./logger.js";

/** Options of {@link setupTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` (OTEL_SERVICE_NAME overrides it, so operators can rename without a rebuild). */
  serviceName: string;
  serviceVersion?: string;
  /** `service.instance.id`: pod name, replica index; a random id when omitted. */
  instanceId?: string;
  /** Port of the Prometheus `/metrics` endpoint: 0 = any free port, undefined = no endpoint. */
  metricsPort?: number;
  /** Interface the metrics endpoint binds (default 0.0.0.0 so Prometheus in a cluster can scrape). */
  metricsHost?: string;
  /** Full OTLP/HTTP traces URL; by default taken from OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT. */
  otlpTracesUrl?: string;
  /** Extra resource attributes (deployment.environment, critic.model...). */
  attributes?: Record<string, string | number | boolean>;
  /** Environment to read OTEL_* settings from (process.env by default; tests pass their own). */
  env?: Record<string, string | undefined>;
}

/** What {@link setupTelemetry} installed, and how to flush and remove it. */
export interface Telemetry {
  readonly serviceName: string;
  /** False when OTEL_SDK_DISABLED=true: API calls are no-ops, context still propagates. */
  readonly enabled: boolean;
  /** True when spans are exported over OTLP. */
  readonly exportingTraces: boolean;
  /** The bound port of `/metrics`, when served. */
  readonly metricsPort: number | undefined;
  /** `http://host:port/metrics`, when served. */
  readonly metricsUrl: string | undefined;
  /** Exports everything buffered; never throws. */
  forceFlush(): Promise<void>;
  /** Flushes spans and metrics, closes the metrics endpoint and unregisters globals; never throws. */
  shutdown(): Promise<void>;
}

let active: Telemetry | undefined;
const log = createLogger("telemetry");

function truthy(v: string | undefined): boolean {
  return v !== undefined && ["true", "1", "yes", "on"].includes(v.trim().toLowerCase());
}

/**
 * Builds the sampler named by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (the SDK does not
 * read them itself); parent-based always-on by default, so a sampled sample's trace stays whole.
 */
export function samplerFromEnv(env: Record<string, string | undefined>): Sampler {
  const name = (env["OTEL_TRACES_SAMPLER"] ?? "parentbased_always_on").trim().toLowerCase();
  const rawArg = env["OTEL_TRACES_SAMPLER_ARG"];
  let ratio = 1;
  if (rawArg !== undefined && rawArg.trim() !== "") {
    const parsed = Number(rawArg);
    if (Number.isFinite(parsed) && parsed >= 0 && parsed <= 1) ratio = parsed;
    else log.warn("ignoring OTEL_TRACES_SAMPLER_ARG: expected a number in [0, 1]", { value: rawArg });
  }
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      log.warn("unknown OTEL_TRACES_SAMPLER; using parentbased_always_on", { value: name });
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

function describeError(err: unknown): string {
  if (Array.isArray(err)) return err.map(describeError).join("; ");
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return err.message || (code !== undefined ? `${code}` : err.name);
  }
  if (typeof err === "object" && err !== null) {
    const o = err as { code?: unknown; message?: unknown; address?: unknown; port?: unknown };
    if (typeof o.message === "string" && o.message !== "") return o.message;
    if (o.code !== undefined) return `${String(o.code)}${o.address !== undefined ? ` ${String(o.address)}:${String(o.port)}` : ""}`;
    try {
      return JSON.stringify(err);
    } catch {
      return String(err);
    }
  }
  return String(err);
}

/** Reports each distinct exporter/SDK problem once, so a dead collector does not flood the logs. */
function createOnceReporter(): (kind: string, err: unknown) => void {
  const seen = new Set<string>();
  return (kind, err) => {
    const message = describeError(err);
    const key = `${kind}:${message.slice(0, 120)}`;
    if (seen.has(key) || seen.size > 200) return;
    seen.add(key);
    log.warn(`telemetry ${kind} failed (reported once; telemetry continues)`, { error: message });
  };
}

function diagLogger(report: (kind: string, err: unknown) => void): DiagLogger {
  const noop = (): void => undefined;
  return {
    error: (message, ...args) => report("sdk", [message, ...args.map((a) => (a instanceof Error ? a.message : String(a)))].join(" ")),
    warn: (message, ...args) => report("sdk", [message, ...args.map((a) => (a instanceof Error ? a.message : String(a)))].join(" ")),
    info: noop,
    debug: noop,
    verbose: noop,
  };
}

/** Installs the context manager and W3C trace-context + baggage propagators as globals. */
export function installPropagation(): void {
  context.disable();
  propagation.disable();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
      timer.unref();
    }),
  ]);
  if (timer !== undefined) clearTimeout(timer);
}

/**
 * Sets up OpenTelemetry for this process, once: resource attributes, tracer provider (batch
 * export over OTLP/proto when an endpoint is configured), AsyncLocalStorage context, W3C
 * propagators, a meter provider with a Prometheus `/metrics` endpoint. Exporter failures are
 * logged once and never thrown into the caller; only a metrics port that cannot be bound throws
 * (Unavailable), because then the operator asked for something impossible.
 */
export async function setupTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  if (active !== undefined) {
    log.warn("setupTelemetry called twice; keeping the first setup", { service: active.serviceName });
    return active;
  }
  if (
    options.metricsPort !== undefined &&
    (!Number.isInteger(options.metricsPort) || options.metricsPort < 0 || options.metricsPort > 65535)
  ) {
    throw new AutodidactError(
      `metrics port must be an integer between 0 and 65535 (0 = any free port), got ${options.metricsPort}`,
      Code.InvalidArgument,
    );
  }
  const env = options.env ?? process.env;
  const serviceName = env["OTEL_SERVICE_NAME"]?.trim() || options.serviceName;
  setLogService(serviceName);
  installPropagation();

  if (truthy(env["OTEL_SDK_DISABLED"])) {
    const disabled: Telemetry = {
      serviceName,
      enabled: false,
      exportingTraces: false,
      metricsPort: undefined,
      metricsUrl: undefined,
      forceFlush: async () => undefined,
      shutdown: async () => {
        if (active === disabled) active = undefined;
      },
    };
    active = disabled;
    return disabled;
  }

  const report = createOnceReporter();
  setGlobalErrorHandler((err) => report("export", err));
  diag.setLogger(diagLogger(report), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });

  const ours: Record<string, string | number | boolean> = {
    [ATTR_SERVICE_NAME]: serviceName,
    "service.instance.id": options.instanceId ?? `${serviceName}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...(options.serviceVersion !== undefined ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
    ...(options.attributes ?? {}),
  };
  const fromEnv = env === process.env ? detectResources({ detectors: [envDetector] }) : resourceFromAttributes({});
  const resource = defaultResource()
    .merge(resourceFromAttributes(ours))
    .merge(fromEnv)
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }));

  const tracesUrl =
    options.otlpTracesUrl ??
    (env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] || undefined) ??
    (env["OTEL_EXPORTER_OTLP_ENDPOINT"] ? `${env["OTEL_EXPORTER_OTLP_ENDPOINT"].replace(/\/+$/, "")}/v1/traces` : undefined);
  const spanProcessors = [];
  if (tracesUrl !== undefined) {
    const rawTimeout = env["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] ?? env["OTEL_EXPORTER_OTLP_TIMEOUT"];
    const timeoutMillis = rawTimeout !== undefined && Number(rawTimeout) > 0 ? Number(rawTimeout) : 10_000;
    try {
      const exporter = new OTLPTraceExporter({ url: tracesUrl, timeoutMillis });
      spanProcessors.push(new BatchSpanProcessor({ exporter }));
    } catch (err) {
      report("OTLP exporter setup (traces are not exported)", err);
    }
  }
  const tracerProvider = new TracerProvider({ resource, sampler: samplerFromEnv(env), spanProcessors });
  trace.disable();
  trace.setGlobalTracerProvider(tracerProvider);

  let server: Server | undefined;
  let metricsPort: number | undefined;
  let metricsUrl: string | undefined;
  const readers: IMetricReader[] = [];
  let prometheus: PrometheusExporter | undefined;
  if (options.metricsPort !== undefined) {
    prometheus = new PrometheusExporter({ preventServerStart: true });
    readers.push(prometheus as unknown as IMetricReader);
  }
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.disable();
  metrics.setGlobalMeterProvider(meterProvider);

  if (prometheus !== undefined) {
    const exporter = prometheus;
    server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method === "GET" && path === "/metrics") {
        exporter.getMetricsRequestHandler(req, res);
        return;
      }
      res.statusCode = 404;
      res.end("not found: metrics are served at /metrics\n");
    });
    const host = options.metricsHost ?? "0.0.0.0";
    const s = server;
    try {
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(options.metricsPort, host, () => {
          s.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      await tracerProvider.shutdown().catch(() => undefined);
      await meterProvider.shutdown().catch(() => undefined);
      trace.disable();
      metrics.disable();
      throw new AutodidactError(`cannot serve metrics on ${host}:${options.metricsPort}: ${String(err)}`, Code.Unavailable, {
        cause: err,
      });
    }
    s.unref();
    metricsPort = (s.address() as AddressInfo).port;
    metricsUrl = `http://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${metricsPort}/metrics`;
  }

  let shutdownP: Promise<void> | undefined;
  const t: Telemetry = {
    serviceName,
    enabled: true,
    exportingTraces: spanProcessors.length > 0,
    metricsPort,
    metricsUrl,
    async forceFlush() {
      await withTimeout(
        Promise.all([tracerProvider.forceFlush(), meterProvider.forceFlush()]).catch((err: unknown) => report("export", err)),
        5_000,
      );
    },
    shutdown() {
      shutdownP ??= shutdownOnce();
      return shutdownP;
    },
  };
  const shutdownOnce = async (): Promise<void> => {
      await withTimeout(
        Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]).catch((err: unknown) => report("export", err)),
        5_000,
      );
      if (server !== undefined) {
        const s = server;
        await withTimeout(new Promise<void>((r) => s.close(() => r())), 2_000);
        s.closeAllConnections?.();
      }
      if (active === t) {
        active = undefined;
        trace.disable();
        metrics.disable();
      }
  };
  active = t;
  log.debug("telemetry ready", { traces: tracesUrl ?? "off", metrics: metricsUrl ?? "off" });
  return t;
}

/** A tracer of the running service (or of a named library scope). */
export function getTracer(name?: string, version?: string): Tracer {
  return trace.getTracer(name ?? active?.serviceName ?? "autodidact", version);
}

/** A meter of the running service (or of a named library scope). */
export function getMeter(name?: string, version?: string): Meter {
  return metrics.getMeter(name ?? active?.serviceName ?? "autodidact", version);
}
