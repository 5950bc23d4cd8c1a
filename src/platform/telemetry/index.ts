export { setupTelemetry, getTracer, getMeter, samplerFromEnv, installPropagation } from "./setup.js";
export type { Telemetry, TelemetryOptions } from "./setup.js";
export { createLogger, currentLogLevel, setLogService, setLogSink, REDACTED } from "./logger.js";
export type { LogFields, Logger, LogLevel, LogSink } from "./logger.js";
export { createTestTelemetry } from "./test-telemetry.js";
export type { TestMetricPoint, TestTelemetry } from "./test-telemetry.js";
