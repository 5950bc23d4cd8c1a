import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Metadata } from "@grpc/grpc-js";
import type { Span } from "@opentelemetry/api";
import type { PeerCertificate } from "node:tls";

/**
 * Who is calling, as the server's authorize hook established it (a bearer token's or a client
 * certificate's identity), so handlers and logs can name the caller without seeing its credential.
 */
export interface Principal {
  /** Identity name from the token entry or the certificate's common name; never the credential. */
  readonly identity: string;
  /** Roles granted to the identity ("admin", "reader"). */
  readonly roles: readonly string[];
  /** How the identity was proven. */
  readonly via: "token" | "certificate";
}

/** What a handler knows about the call it serves, beyond the request message. */
export interface CallContext {
  /** The method being served. */
  readonly method: DescMethod;
  /** Incoming request metadata (headers). */
  readonly metadata: Metadata;
  /** The peer address ("ipv4:127.0.0.1:53412"). */
  readonly peer: string;
  /** The caller's deadline, if it set one. */
  readonly deadline: Date | undefined;
  /** Aborted when the caller cancels, the deadline passes, or the server force-stops. */
  readonly signal: AbortSignal;
  /** The SERVER span of this call (also the active span while the handler runs). */
  readonly span: Span;
  /** The client certificate the TLS handshake verified (mTLS), if any. */
  readonly peerCertificate: PeerCertificate | undefined;
  /**
   * The caller as the authorize hook established it; undefined when the server authorizes nobody
   * (no hook, or a hook that returned nothing: local development).
   */
  readonly principal: Principal | undefined;
}

type Out<O extends DescMessage> = MessageInitShape<O> | MessageShape<O>;

/** Handler of one method, shaped by its streaming kind. Returned messages may be plain init objects. */
export type MethodHandler<M extends Pick<DescMethod, "input" | "output" | "methodKind">> = M["methodKind"] extends "unary"
  ? (request: MessageShape<M["input"]>, ctx: CallContext) => Promise<Out<M["output"]>> | Out<M["output"]>
  : M["methodKind"] extends "server_streaming"
    ? (request: MessageShape<M["input"]>, ctx: CallContext) => AsyncIterable<Out<M["output"]>>
    : M["methodKind"] extends "client_streaming"
      ? (requests: AsyncIterable<MessageShape<M["input"]>>, ctx: CallContext) => Promise<Out<M["output"]>>
      : (requests: AsyncIterable<MessageShape<M["input"]>>, ctx: CallContext) => AsyncIterable<Out<M["output"]>>;

/** The methods of a generated service, by local name. */
export type ServiceMethods<S> = S extends GenService<infer M> ? M : GenServiceMethods;

/** One handler per method of a generated service, type-checked against the contract. */
export type ServiceHandlers<S extends DescService> = {
  [K in keyof ServiceMethods<S>]: MethodHandler<ServiceMethods<S>[K]>;
};

/** A service descriptor bound to its handlers, ready for {@link createServer}. */
export interface ServiceImplementation {
  readonly service: DescService;
  /** Handlers by method local name (untyped here; {@link implement} checks them). */
  readonly handlers: Readonly<Record<string, (...args: never[]) => unknown>>;
}

/**
 * Binds handlers to a generated service. Exists so an implementation is checked by the compiler
 * against the contract (every method, right message types, right streaming shape).
 */
export function implement<S extends DescService>(service: S, handlers: ServiceHandlers<S>): ServiceImplementation {
  return { service, handlers: handlers as unknown as ServiceImplementation["handlers"] };
}
