import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type DescService, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  Client,
  Metadata,
  credentials as grpcCredentials,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  type Interceptor,
} from "@grpc/grpc-js";
import { SpanKind, SpanStatusCode, context, propagation, trace, type Span } from "@opentelemetry/api";
import { AutodidactError, Code } from "../errors/index.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./server.js";
import { methodPath } from "./service-definition.js";
import type { ServiceMethods } from "./service.js";
import { fromStatus } from "./status.js";
import { metadataSetter, rpcTracer } from "./trace.js";

/** Default deadline of every call, so a dead peer never hangs a caller forever. */
export const DEFAULT_DEADLINE_MS = 30_000;

/** Options of {@link createClient}. */
export interface ClientOptions {
  /**
   * Deadline of every call unless the call says otherwise; default {@link DEFAULT_DEADLINE_MS};
   * Infinity = none. It applies to streaming calls too: give long-lived streams (health Watch,
   * StartRound, FetchCheckpoint of big files) a per-call `deadlineMs` (or Infinity plus a signal).
   */
  deadlineMs?: number;
  /** Largest message sent or accepted, in bytes; default {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Transport credentials; default insecure. TLS/mTLS plugs in here. */
  credentials?: ChannelCredentials;
  /** grpc-js client interceptors. */
  interceptors?: Interceptor[];
  /**
   * Metadata sent with every call (e.g. `authorization: Bearer <token>` from the auth module's
   * client options); a call's own metadata wins on the same key.
   */
  metadata?: Readonly<Record<string, string>>;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

/** Per-call options. */
export interface CallOptions {
  /** Deadline of this call in milliseconds from now (overrides the client default; Infinity = none). */
  deadlineMs?: number;
  /** Cancels the call (it then fails with Code.Canceled). */
  signal?: AbortSignal;
  /** Extra request metadata. */
  metadata?: Record<string, string> | Metadata;
  /**
   * Wait (until the deadline) for the server to become reachable instead of failing at once with
   * Code.Unavailable; useful while services start side by side.
   */
  waitForReady?: boolean;
}

type In<I extends DescMessage> = MessageInitShape<I> | MessageShape<I>;

/** Client-side shape of one method, by streaming kind. */
export type ClientMethod<M extends Pick<DescMethod, "input" | "output" | "methodKind">> = M["methodKind"] extends "unary"
  ? (request: In<M["input"]>, options?: CallOptions) => Promise<MessageShape<M["output"]>>
  : M["methodKind"] extends "server_streaming"
    ? (request: In<M["input"]>, options?: CallOptions) => AsyncIterable<MessageShape<M["output"]>>
    : M["methodKind"] extends "client_streaming"
      ? (requests: AsyncIterable<In<M["input"]>>, options?: CallOptions) => Promise<MessageShape<M["output"]>>
      : (requests: AsyncIterable<In<M["input"]>>, options?: CallOptions) => AsyncIterable<MessageShape<M["output"]>>;

/** A typed client of a generated service: one method per RPC, plus close(). */
export type RpcClient<S extends DescService> = {
  readonly [K in keyof ServiceMethods<S>]: ClientMethod<ServiceMethods<S>[K]>;
} & {
  /** Closes the underlying channel; calls in flight fail with Code.Unavailable or Canceled. */
  close(): void;
};

function toMessage(schema: DescMessage, value: unknown): Message {
  return isMessage(value, schema) ? value : create(schema, value as never);
}

interface Cancellable {
  cancel(): void;
}

/**
 * Runs one call inside a CLIENT span: builds the metadata (user headers + propagated trace context)
 * and the grpc-js call options (deadline), wires the abort signal, and maps failures to
 * AutodidactError. `start` issues the call; `finish` waits for its outcome.
 */
class CallRunner {
  constructor(
    private readonly method: DescMethod,
    private readonly defaultDeadlineMs: number,
    private readonly defaultMetadata: Readonly<Record<string, string>> | undefined,
  ) {}

  get name(): string {
    return `${this.method.parent.typeName}/${this.method.name}`;
  }

  startSpan(): { span: Span; ctx: ReturnType<typeof context.active> } {
    const span = rpcTracer().startSpan(this.name, {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.system": "grpc", "rpc.service": this.method.parent.typeName, "rpc.method": this.method.name },
    });
    return { span, ctx: trace.setSpan(context.active(), span) };
  }

  metadata(ctx: ReturnType<typeof context.active>, options: CallOptions | undefined): Metadata {
    const metadata = new Metadata(options?.waitForReady ? { waitForReady: true } : undefined);
    if (this.defaultMetadata) for (const [key, value] of Object.entries(this.defaultMetadata)) metadata.set(key, value);
    const extra = options?.metadata;
    if (extra instanceof Metadata) {
      for (const key of Object.keys(extra.getMap())) metadata.remove(key);
      metadata.merge(extra);
    } else if (extra) for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    propagation.inject(ctx, metadata, metadataSetter);
    return metadata;
  }

  callOptions(options: CallOptions | undefined): GrpcCallOptions {
    const ms = options?.deadlineMs ?? this.defaultDeadlineMs;
    return Number.isFinite(ms) ? { deadline: new Date(Date.now() + ms) } : {};
  }

  /** Cancels `call` when `signal` aborts; returns the unhook function. */
  bindSignal(call: Cancellable, signal: AbortSignal | undefined): () => void {
    if (!signal) return () => {};
    if (signal.aborted) {
      call.cancel();
      return () => {};
    }
    const onAbort = (): void => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    return () => signal.removeEventListener("abort", onAbort);
  }

  fail(span: Span, error: unknown): AutodidactError {
    const mapped = fromStatus(error, this.name);
    span.setAttribute("rpc.grpc.status_code", mapped.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: mapped.rawMessage });
    return mapped;
  }

  succeed(span: Span): void {
    span.setAttribute("rpc.grpc.status_code", 0);
  }

  /**
   * Runs a call that answers once (unary, client streaming): `start` gets the completion callback
   * and returns the call; the span ends and the signal unhooks when the answer or error arrives.
   */
  single<C extends Cancellable>(
    span: Span,
    signal: AbortSignal | undefined,
    start: (done: (error: unknown, value?: unknown) => void) => C,
    afterStart?: (call: C) => void,
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      let unhook = (): void => {};
      const call = start((error, value) => {
        unhook();
        if (error) reject(this.fail(span, error));
        else {
          this.succeed(span);
          resolve(value);
        }
        span.end();
      });
      unhook = this.bindSignal(call, signal);
      afterStart?.(call);
    });
  }
}

async function writeRequests(
  call: ClientWritableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  requests: AsyncIterable<unknown>,
  schema: DescMessage,
): Promise<void> {
  try {
    for await (const request of requests) {
      if (!call.write(toMessage(schema, request))) {
        await new Promise<void>((resolve) => call.once("drain", resolve));
      }
    }
    call.end();
  } catch (error) {
    // A failing request source cancels the call rather than half-sending it.
    call.cancel();
    throw error;
  }
}

/**
 * Creates a typed client of a generated service at `address` ("host:port"). Every call gets a
 * deadline, a CLIENT span whose context travels in the metadata, and errors as AutodidactError with
 * the server's Code.
 */
export function createClient<S extends DescService>(service: S, address: string, options: ClientOptions = {}): RpcClient<S> {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const client = new Client(address, options.credentials ?? grpcCredentials.createInsecure(), {
    ...options.channelOptions,
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  const defaultDeadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const methods: Record<string, unknown> = {};

  for (const method of service.methods) {
    if (method.localName === "close") {
      throw new AutodidactError(`${service.typeName} has an RPC named Close, which clashes with RpcClient.close()`, Code.InvalidArgument);
    }
    const path = methodPath(method);
    const serialize = (value: unknown): Buffer => Buffer.from(toBinaryOf(method.input, value));
    const deserialize = (bytes: Buffer): unknown => fromBinaryOf(method.output, bytes);
    const runner = new CallRunner(method, defaultDeadlineMs, options.metadata);

    switch (method.methodKind) {
      case "unary":
        methods[method.localName] = (request: unknown, callOptions?: CallOptions) => {
          const { span, ctx } = runner.startSpan();
          return context.with(ctx, () =>
            runner.single(span, callOptions?.signal, (done) =>
              client.makeUnaryRequest(
                path,
                serialize,
                deserialize,
                toMessage(method.input, request),
                runner.metadata(ctx, callOptions),
                runner.callOptions(callOptions),
                done,
              ),
            ),
          );
        };
        break;
      case "server_streaming":
        methods[method.localName] = async function* (request: unknown, callOptions?: CallOptions) {
          const { span, ctx } = runner.startSpan();
          const call: ClientReadableStream<unknown> = context.with(ctx, () =>
            client.makeServerStreamRequest(
              path,
              serialize,
              deserialize,
              toMessage(method.input, request),
              runner.metadata(ctx, callOptions),
              runner.callOptions(callOptions),
            ),
          );
          yield* readAll(call, runner, span, callOptions);
        };
        break;
      case "client_streaming":
        methods[method.localName] = (requests: AsyncIterable<unknown>, callOptions?: CallOptions) => {
          const { span, ctx } = runner.startSpan();
          return context.with(ctx, () =>
            runner.single(
              span,
              callOptions?.signal,
              (done) =>
                client.makeClientStreamRequest(
                  path,
                  serialize,
                  deserialize,
                  runner.metadata(ctx, callOptions),
                  runner.callOptions(callOptions),
                  done,
                ),
              (call) => void writeRequests(call, requests, method.input).catch(() => {}),
            ),
          );
        };
        break;
      case "bidi_streaming":
        methods[method.localName] = async function* (requests: AsyncIterable<unknown>, callOptions?: CallOptions) {
          const { span, ctx } = runner.startSpan();
          const call: ClientDuplexStream<unknown, unknown> = context.with(ctx, () =>
            client.makeBidiStreamRequest(path, serialize, deserialize, runner.metadata(ctx, callOptions), runner.callOptions(callOptions)),
          );
          writeRequests(call, requests, method.input).catch(() => {});
          yield* readAll(call, runner, span, callOptions);
        };
        break;
    }
  }
  methods.close = () => client.close();
  return methods as RpcClient<S>;
}

/** Iterates a response stream, mapping its failure and cancelling the call if the consumer stops early. */
async function* readAll(
  call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  runner: CallRunner,
  span: Span,
  callOptions: CallOptions | undefined,
): AsyncGenerator<unknown> {
  const unhook = runner.bindSignal(call, callOptions?.signal);
  let finished = false;
  try {
    for await (const message of call) yield message;
    finished = true;
    runner.succeed(span);
  } catch (error) {
    finished = true;
    throw runner.fail(span, error);
  } finally {
    unhook();
    if (!finished) call.cancel();
    span.end();
  }
}

function toBinaryOf(schema: DescMessage, value: unknown): Uint8Array {
  return toBinary(schema, value as Message);
}

function fromBinaryOf(schema: DescMessage, bytes: Uint8Array): Message {
  return fromBinary(schema, bytes);
}
