import { trace } from "@opentelemetry/api";
import { AutodidactError, codeName } from "../errors/index.js";

/** Log levels in increasing severity; `silent` turns logging off. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/**
 * A structured logger: one JSON object per line on stderr, carrying the active trace and span
 * ids so a log line can be found from a trace and vice versa.
 */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (request ids, critic names). */
  child(fields: LogFields): Logger;
}

/** Where log lines go; stderr unless a test or embedding replaces it. */
export type LogSink = (line: string) => void;

const state: { service: string; sink: LogSink } = {
  service: process.env["OTEL_SERVICE_NAME"] ?? "autodidact",
  sink: (line) => {
    try {
      process.stderr.write(line);
    } catch {
      // A closed stderr must not take the service down.
    }
  },
};

/** Sets the `service` field of every log line; setupTelemetry calls it. */
export function setLogService(service: string): void {
  state.service = service;
}

/** Replaces the log sink (tests capture lines; returns the previous sink to restore it). */
export function setLogSink(sink: LogSink): LogSink {
  const prev = state.sink;
  state.sink = sink;
  return prev;
}

/** Reads `AUTODIDACT_LOG_LEVEL` (default info) at each call, so tests and operators can change it live. */
export function currentLogLevel(): LogLevel {
  const raw = (process.env["AUTODIDACT_LOG_LEVEL"] ?? "info").trim().toLowerCase();
  return raw in LEVELS ? (raw as LogLevel) : "info";
}

/** Field names whose values are never written: secrets, tokens, passwords, credentials, keys. */
const SECRET_KEY = /secret|token|passw(or)?d|passwd|pwd|credential|api[-_]?key|private[-_]?key|authorization|cookie|seed/i;

/** The placeholder written instead of a secret value. */
export const REDACTED = "[redacted]";

function serialize(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") {
    if (typeof value === "function") return `[function ${value.name || "anonymous"}]`;
    if (typeof value === "symbol") return value.toString();
    return value;
  }
  if (seen.has(value)) return "[circular]";
  if (depth > 6) return "[depth]";
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    if (value instanceof AutodidactError) out["code"] = codeName(value.code);
    if (value.stack !== undefined) out["stack"] = value.stack;
    if (value.cause !== undefined) out["cause"] = serialize(value.cause, depth + 1, seen);
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value)) return `[${value.constructor.name} ${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => serialize(v, depth + 1, seen));
  if (value instanceof Map) return serialize(Object.fromEntries(value), depth, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) ? REDACTED : serialize(v, depth + 1, seen);
  }
  return out;
}

const RESERVED = new Set(["time", "level", "service", "component", "msg", "trace_id", "span_id"]);

function write(level: Exclude<LogLevel, "silent">, component: string, base: LogFields, msg: string, fields?: LogFields): void {
  if (LEVELS[level] < LEVELS[currentLogLevel()]) return;
  try {
    const line: Record<string, unknown> = {
      time: new Date().toISOString(),
      level,
      service: state.service,
      component,
      msg,
    };
    const span = trace.getActiveSpan();
    const sc = span?.spanContext();
    if (sc !== undefined && trace.isSpanContextValid(sc)) {
      line["trace_id"] = sc.traceId;
      line["span_id"] = sc.spanId;
    }
    const seen = new WeakSet<object>();
    for (const src of [base, fields ?? {}]) {
      for (const [k, v] of Object.entries(src)) {
        const key = RESERVED.has(k) ? `field_${k}` : k;
        line[key] = SECRET_KEY.test(k) ? REDACTED : serialize(v, 0, seen);
      }
    }
    state.sink(`${JSON.stringify(line)}\n`);
  } catch {
    // Logging never throws into the caller.
  }
}

/** Creates the logger of one component (`bus`, `critic`, `trainer.round`). */
export function createLogger(component: string, fields: LogFields = {}): Logger {
  return {
    debug: (msg, f) => write("debug", component, fields, msg, f),
    info: (msg, f) => write("info", component, fields, msg, f),
    warn: (msg, f) => write("warn", component, fields, msg, f),
    error: (msg, f) => write("error", component, fields, msg, f),
    child: (more) => createLogger(component, { ...fields, ...more }),
  };
}
