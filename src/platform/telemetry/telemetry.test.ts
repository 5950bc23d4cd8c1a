import { afterEach, describe, expect, it } from "vitest";
import { context, trace } from "@opentelemetry/api";
import { freePort } from "../bus/nats-server.js";
import { AutodidactError, Code } from "../errors/index.js";
import { createLogger, REDACTED, setLogSink } from "./logger.js";
import { getMeter, getTracer, samplerFromEnv, setupTelemetry, type Telemetry } from "./setup.js";

let telemetry: Telemetry | undefined;
let restoreSink: (() => void) | undefined;

function captureLogs(): string[] {
  const lines: string[] = [];
  const prev = setLogSink((line) => lines.push(line));
  restoreSink = () => setLogSink(prev);
  return lines;
}

afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
  restoreSink?.();
  restoreSink = undefined;
  delete process.env["AUTODIDACT_LOG_LEVEL"];
});

describe("setupTelemetry", () => {
  it("serves a counter on the Prometheus endpoint (ephemeral port)", async () => {
    telemetry = await setupTelemetry({ serviceName: "metrics-test", metricsPort: 0, metricsHost: "127.0.0.1", env: {} });
    expect(telemetry.metricsPort).toBeGreaterThan(0);
    const counter = getMeter().createCounter("samples_proposed", { description: "samples proposed" });
    counter.add(3, { task: "addition" });
    counter.add(4, { task: "addition" });
    const res = await fetch(telemetry.metricsUrl ?? "");
    expect(res.status).toBe(200);
    const body = await res.text();
    const line = body.split("\n").find((l) => l.startsWith("samples_proposed_total{"));
    expect(line).toBeDefined();
    expect(line).toContain('task="addition"');
    expect(line?.trim().endsWith(" 7")).toBe(true);
    const notFound = await fetch(telemetry.metricsUrl?.replace("/metrics", "/other") ?? "");
    expect(notFound.status).toBe(404);
  });

  it("rejects an impossible metrics port with InvalidArgument", async () => {
    const err = await setupTelemetry({ serviceName: "x", metricsPort: 70_000, env: {} }).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
  });

  it("fails clearly when the metrics port is taken", async () => {
    telemetry = await setupTelemetry({ serviceName: "a", metricsPort: 0, metricsHost: "127.0.0.1", env: {} });
    const taken = telemetry.metricsPort;
    await telemetry.shutdown();
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(taken, "127.0.0.1", () => r()));
    try {
      const err = await setupTelemetry({ serviceName: "b", metricsPort: taken, metricsHost: "127.0.0.1", env: {} }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AutodidactError);
      expect((err as AutodidactError).code).toBe(Code.Unavailable);
    } finally {
      blocker.close();
    }
  });

  it("never throws into the caller when the OTLP endpoint is down, and reports it once", async () => {
    const lines = captureLogs();
    const port = await freePort();
    telemetry = await setupTelemetry({
      serviceName: "otlp-test",
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TIMEOUT: "300" },
    });
    expect(telemetry.exportingTraces).toBe(true);
    for (let round = 0; round < 3; round++) {
      const span = getTracer().startSpan(`work-${round}`);
      span.end();
      await telemetry.forceFlush();
    }
    await telemetry.shutdown();
    telemetry = undefined;
    const warnings = lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === "warn");
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.filter((w) => /export/.test(w.msg)).length).toBeLessThanOrEqual(1);
  });

  it("keeps working without export when the OTLP endpoint is malformed", async () => {
    const lines = captureLogs();
    telemetry = await setupTelemetry({ serviceName: "bad-url", env: { OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" } });
    expect(telemetry.exportingTraces).toBe(false);
    const span = getTracer().startSpan("still-traced");
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    span.end();
    await telemetry.forceFlush();
    expect(lines.some((l) => l.includes("OTLP exporter setup"))).toBe(true);
  });

  it("honours OTEL_SDK_DISABLED and OTEL_SERVICE_NAME", async () => {
    telemetry = await setupTelemetry({ serviceName: "x", metricsPort: 0, env: { OTEL_SDK_DISABLED: "true", OTEL_SERVICE_NAME: "renamed" } });
    expect(telemetry.enabled).toBe(false);
    expect(telemetry.serviceName).toBe("renamed");
    expect(telemetry.metricsPort).toBeUndefined();
    const span = getTracer().startSpan("nothing");
    expect(span.isRecording()).toBe(false);
    span.end();
  });

  it("reads the sampler from OTEL_TRACES_SAMPLER(_ARG)", () => {
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: "always_off" }).toString()).toMatch(/AlwaysOff/);
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }).toString()).toMatch(/0\.25/);
    expect(samplerFromEnv({}).toString()).toMatch(/ParentBased/);
  });
});

describe("createLogger", () => {
  it("writes one JSON line with the active trace and span ids", async () => {
    telemetry = await setupTelemetry({ serviceName: "log-test", env: {} });
    const lines = captureLogs();
    const log = createLogger("critic");
    const span = getTracer().startSpan("score");
    context.with(trace.setSpan(context.active(), span), () => log.info("scored", { sample_id: "s-1", score: 0.9 }));
    span.end();
    log.info("outside");
    expect(lines).toHaveLength(2);
    const inside = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
    expect(inside).toMatchObject({ level: "info", service: "log-test", component: "critic", msg: "scored", sample_id: "s-1", score: 0.9 });
    expect(inside["trace_id"]).toBe(span.spanContext().traceId);
    expect(inside["span_id"]).toBe(span.spanContext().spanId);
    expect(typeof inside["time"]).toBe("string");
    expect(JSON.parse(lines[1] ?? "{}")).not.toHaveProperty("trace_id");
  });

  it("never writes the values of secret-looking fields", () => {
    const lines = captureLogs();
    createLogger("cli").info("connecting", {
      password: "hunter2",
      nested: { apiToken: "tok-123", host: "nats" },
      credentials: { user: "u" },
      NATS_TOKEN: "abc",
    });
    const text = lines.join("");
    expect(text).not.toMatch(/hunter2|tok-123|abc"|"u"/);
    const line = JSON.parse(lines[0] ?? "{}") as { password: string; nested: { apiToken: string; host: string } };
    expect(line.password).toBe(REDACTED);
    expect(line.nested.apiToken).toBe(REDACTED);
    expect(line.nested.host).toBe("nats");
  });

  it("filters by AUTODIDACT_LOG_LEVEL and serializes errors with their code", () => {
    const lines = captureLogs();
    process.env["AUTODIDACT_LOG_LEVEL"] = "warn";
    const log = createLogger("x");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e", { error: new AutodidactError("bad sample", Code.InvalidArgument) });
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(["w", "e"]);
    const err = (JSON.parse(lines[1] ?? "{}") as { error: { code: string; message: string } }).error;
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toContain("bad sample");
  });
});
