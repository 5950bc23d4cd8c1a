import { create, isMessage, type DescMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import {
  Server,
  ServerCredentials,
  type ChannelOptions,
  type ServerDuplexStream,
  type ServerInterceptor,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
  type sendUnaryData,
} from "@grpc/grpc-js";
import type { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation } from "@opentelemetry/api";
import { AutodidactError, Code } from "../errors/index.js";
import { createHealth, type HealthReporter } from "./health.js";
import { createReflectionServices } from "./reflection.js";
import { createServiceDefinition } from "./service-definition.js";
import type { CallContext, Principal, ServiceImplementation } from "./service.js";
import { DecodeFailure, toStatus } from "./status.js";
import { metadataGetter, rpcTracer } from "./trace.js";

/** Default cap on one message in either direction (grpc-js' own default is 4 MiB receive). */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Extension point for authentication/authorization (tokens, mTLS identities): called before every
 * handler, including health and reflection (check `ctx.method.parent.typeName` to exempt them).
 * Throw an AutodidactError (Unauthenticated / PermissionDenied) to refuse the call; return the
 * caller's {@link Principal} to hand it to the handler as `ctx.principal`.
 */
export type Authorize = (ctx: CallContext) => void | Principal | Promise<void | Principal>;

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** The Autodidact services to serve (from {@link implement}). */
  services: readonly ServiceImplementation[];
  /** TCP port; 0 (default) picks a free one, readable from {@link RpcServer.port}. */
  port?: number;
  /** Interface to bind; default "127.0.0.1". */
  host?: string;
  /** Largest message accepted or sent, in bytes; default {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Transport credentials; default insecure (loopback). mTLS plugs in here. */
  credentials?: ServerCredentials;
  /** Per-call authorization hook; none by default. */
  authorize?: Authorize;
  /** grpc-js server interceptors, run before the handlers (a later auth layer may use them too). */
  interceptors?: ServerInterceptor[];
  /**
   * Also serve grpc.health.v1 alone, in plain text and without authorization, on this port (0 = any
   * free one): kubelet gRPC probes cannot speak TLS, so a TLS server needs a probe port. Off by default.
   */
  healthPort?: number;
  /** Serve grpc.reflection v1 and v1alpha; default true. */
  reflection?: boolean;
  /** Extra grpc-js channel options (keepalive etc.). */
  channelOptions?: ChannelOptions;
  /**
   * Told about every error that is not an AutodidactError (it reaches the caller only as INTERNAL).
   * Default: one line on stderr with the stack, so bugs are not silent.
   */
  onInternalError?: (error: unknown, method: DescMethod) => void;
}

/** A running gRPC server. */
export interface RpcServer {
  /** The bound port. */
  readonly port: number;
  /** "host:port" to give to {@link createClient}. */
  readonly address: string;
  /** The bound plain-text health port, when {@link ServerOptions.healthPort} asked for one. */
  readonly healthPort: number | undefined;
  /** Health status of every served service (and of "" = the whole server). */
  readonly health: HealthReporter;
  /**
   * Stops accepting calls, lets in-flight calls finish for up to `graceMs` (default 5000), then
   * cancels what is left. Health reports NOT_SERVING from the first moment.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** Turns a handler's return value (message or init object) into a message of the method's output. */
function toMessage(schema: DescMessage, value: unknown): Message {
  if (isMessage(value, schema)) return value;
  if (value === null || typeof value !== "object") {
    throw new AutodidactError(`handler returned ${String(value)} instead of a ${schema.typeName}`, Code.Internal);
  }
  return create(schema, value as never);
}

interface CallEnv {
  authorize: Authorize | undefined;
  onInternalError: (error: unknown, method: DescMethod) => void;
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

function deadlineOf(call: AnyCall): Date | undefined {
  const d = call.getDeadline();
  if (d instanceof Date) return d;
  return Number.isFinite(d) ? new Date(d) : undefined;
}

/**
 * Runs `body` as one served call: a SERVER span whose parent is the caller's propagated context,
 * an AbortSignal tied to cancellation, the authorize hook, and error bookkeeping.
 */
async function runCall<T>(method: DescMethod, call: AnyCall, env: CallEnv, body: (ctx: CallContext) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onCancel = (): void => abort.abort(new AutodidactError("call cancelled by the client or deadline", Code.Canceled));
  const events = call as unknown as EventEmitter;
  events.on("cancelled", onCancel);
  const parent = propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
  const name = `${method.parent.typeName}/${method.name}`;
  return rpcTracer().startActiveSpan(
    name,
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": method.parent.typeName, "rpc.method": method.name },
    },
    parent,
    async (span) => {
      let ctx: CallContext = {
        method,
        metadata: call.metadata,
        peer: call.getPeer(),
        deadline: deadlineOf(call),
        signal: abort.signal,
        span,
        peerCertificate: call.getAuthContext().sslPeerCertificate,
        principal: undefined,
      };
      try {
        const principal = env.authorize ? await env.authorize(ctx) : undefined;
        if (principal) {
          ctx = { ...ctx, principal };
          span.setAttribute("enduser.id", principal.identity);
        }
        const result = await body(ctx);
        span.setAttribute("rpc.grpc.status_code", 0);
        return result;
      } catch (error) {
        const status = toStatus(error);
        span.setAttribute("rpc.grpc.status_code", status.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
        if (error instanceof Error) span.recordException(error);
        if (!(error instanceof AutodidactError) && !(error instanceof DecodeFailure)) env.onInternalError(error, method);
        throw error;
      } finally {
        events.removeListener("cancelled", onCancel);
        span.end();
      }
    },
  );
}

/**
 * Yields the decoded requests of a streaming call, failing with INVALID_ARGUMENT on a malformed one.
 * The stream must not be destroyed when reading ends (the default of `for await` on a Readable): for
 * a bidi call that would also destroy the response side before the status is sent.
 */
async function* requestsOf(stream: Readable): AsyncGenerator<unknown> {
  try {
    for await (const message of stream.iterator({ destroyOnReturn: false })) {
      if (message instanceof DecodeFailure) throw message.toError();
      yield message;
    }
  } catch (err) {
    // The transport cut the request stream (an over-limit message already answered
    // RESOURCE_EXHAUSTED, or the client went away): the caller's doing, not an internal error.
    if ((err as NodeJS.ErrnoException | undefined)?.code === "ERR_STREAM_PREMATURE_CLOSE") {
      throw new AutodidactError("the request stream was closed before it ended", Code.Canceled, { cause: err });
    }
    throw err;
  }
}

/** Writes a handler's output stream with back-pressure; stops when the call is cancelled. */
async function writeAll(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  output: AsyncIterable<unknown>,
  schema: DescMessage,
  signal: AbortSignal,
): Promise<void> {
  for await (const value of output) {
    if (signal.aborted) return;
    if (!call.write(toMessage(schema, value))) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          call.removeListener("drain", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        call.once("drain", done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}

function unimplemented(method: DescMethod): AutodidactError {
  return new AutodidactError(`${method.parent.typeName}/${method.name} is not implemented by this server`, Code.Unimplemented);
}

/** Adapts one typed handler to the grpc-js calling convention of its streaming kind. */
function adapt(method: DescMethod, handler: ((...args: never[]) => unknown) | undefined, env: CallEnv): UntypedHandleCall {
  const fn = handler as ((input: unknown, ctx: CallContext) => unknown) | undefined;
  switch (method.methodKind) {
    case "unary":
      return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        runCall(method, call, env, async (ctx) => {
          if (call.request instanceof DecodeFailure) throw call.request.toError();
          if (!fn) throw unimplemented(method);
          return toMessage(method.output, await fn(call.request, ctx));
        }).then(
          (message) => callback(null, message),
          (error: unknown) => callback(toStatus(error)),
        );
      };
    case "server_streaming":
      return (call: ServerWritableStream<unknown, unknown>) => {
        runCall(method, call, env, async (ctx) => {
          if (call.request instanceof DecodeFailure) throw call.request.toError();
          if (!fn) throw unimplemented(method);
          await writeAll(call, fn(call.request, ctx) as AsyncIterable<unknown>, method.output, ctx.signal);
        }).then(
          () => call.end(),
          (error: unknown) => call.emit("error", toStatus(error)),
        );
      };
    case "client_streaming":
      return (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        runCall(method, call, env, async (ctx) => {
          if (!fn) throw unimplemented(method);
          return toMessage(method.output, await fn(requestsOf(call), ctx));
        }).then(
          (message) => callback(null, message),
          (error: unknown) => callback(toStatus(error)),
        );
      };
    case "bidi_streaming":
      return (call: ServerDuplexStream<unknown, unknown>) => {
        runCall(method, call, env, async (ctx) => {
          if (!fn) throw unimplemented(method);
          await writeAll(call, fn(requestsOf(call), ctx) as AsyncIterable<unknown>, method.output, ctx.signal);
        }).then(
          () => call.end(),
          (error: unknown) => call.emit("error", toStatus(error)),
        );
      };
  }
}

function defaultInternalError(error: unknown, method: DescMethod): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`rpc: internal error in ${method.parent.typeName}/${method.name}: ${text}\n`);
}

function bind(server: Server, host: string, port: number, credentials: ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, credentials, (error, bound) => {
      if (error) reject(new AutodidactError(`cannot bind gRPC server on ${host}:${port}: ${error.message}`, Code.Unavailable, { cause: error }));
      else resolve(bound);
    });
  });
}

/**
 * Starts a gRPC server for Autodidact services. Every server also answers `grpc.health.v1.Health`
 * (all services SERVING at start) and server reflection (v1 and v1alpha, for grpcurl), enforces a
 * message size cap in both directions, and maps errors and traces the same way for every service.
 */
export async function createServer(options: ServerOptions): Promise<RpcServer> {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const server = new Server({
    ...options.channelOptions,
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  const env: CallEnv = { authorize: options.authorize, onInternalError: options.onInternalError ?? defaultInternalError };

  const served: DescService[] = options.services.map((s) => s.service);
  const health = createHealth(served.map((s) => s.typeName));
  const all: ServiceImplementation[] = [...options.services, health.implementation];
  if (options.reflection ?? true) {
    const reflection = createReflectionServices(() => all.map((s) => s.service));
    all.push(...reflection);
  }
  const seen = new Set<string>();
  for (const impl of all) {
    if (seen.has(impl.service.typeName)) {
      throw new AutodidactError(`service ${impl.service.typeName} given twice`, Code.InvalidArgument);
    }
    seen.add(impl.service.typeName);
    const handlers: Record<string, UntypedHandleCall> = {};
    for (const method of impl.service.methods) {
      handlers[method.localName] = adapt(method, impl.handlers[method.localName], env);
    }
    server.addService(createServiceDefinition(impl.service), handlers);
  }

  const host = options.host ?? "127.0.0.1";
  const port = await bind(server, host, options.port ?? 0, options.credentials ?? ServerCredentials.createInsecure());
  let probeServer: Server | undefined;
  let healthPort: number | undefined;
  if (options.healthPort !== undefined) {
    probeServer = new Server();
    const probeEnv: CallEnv = { authorize: undefined, onInternalError: env.onInternalError };
    const handlers: Record<string, UntypedHandleCall> = {};
    for (const method of health.implementation.service.methods) {
      handlers[method.localName] = adapt(method, health.implementation.handlers[method.localName], probeEnv);
    }
    probeServer.addService(createServiceDefinition(health.implementation.service), handlers);
    try {
      healthPort = await bind(probeServer, host, options.healthPort, ServerCredentials.createInsecure());
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    address: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    healthPort,
    health: health.reporter,
    shutdown(graceMs = 5000) {
      stopping ??= new Promise<void>((resolve) => {
        // Long-lived Watch streams would hold the drain open: end them (with NOT_SERVING) first.
        health.close();
        probeServer?.forceShutdown();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopping;
    },
  };
}

