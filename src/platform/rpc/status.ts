import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { AutodidactError, Code, toCode } from "../errors/index.js";

/**
 * Marker a request deserializer returns instead of throwing: grpc-js turns a throwing deserializer
 * into INTERNAL, but a malformed request is the caller's fault and must be INVALID_ARGUMENT.
 */
export class DecodeFailure {
  constructor(
    /** Fully-qualified message type that failed to decode. */
    readonly typeName: string,
    /** What the decoder said. */
    readonly cause: unknown,
  ) {}

  /** The error a handler reports for this failure. */
  toError(): AutodidactError {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause);
    return new AutodidactError(`malformed request: cannot decode ${this.typeName}: ${why}`, Code.InvalidArgument, {
      cause: this.cause,
    });
  }
}

/**
 * THE server-side mapping from anything a handler throws to a gRPC status, so every service reports
 * errors the same way: an AutodidactError keeps its code and message; anything else becomes INTERNAL
 * with a fixed message (stack traces and internals never leave the process).
 */
export function toStatus(reason: unknown): { code: GrpcStatus; details: string; metadata: Metadata } {
  if (reason instanceof DecodeFailure) return toStatus(reason.toError());
  if (reason instanceof AutodidactError) {
    return { code: reason.code as number as GrpcStatus, details: capDetails(reason.rawMessage), metadata: new Metadata() };
  }
  return { code: GrpcStatus.INTERNAL, details: "internal error", metadata: new Metadata() };
}

/** Longest status message sent (characters); an error that quotes a huge input is cut here. */
export const MAX_STATUS_DETAILS = 2_000;

/**
 * Cuts a status message to {@link MAX_STATUS_DETAILS}: messages travel in the `grpc-message` trailer, and
 * one that quotes a megabyte-sized bad input cannot reach the client (its call hangs to the deadline).
 */
function capDetails(details: string): string {
  if (details.length <= MAX_STATUS_DETAILS) return details;
  return `${details.slice(0, MAX_STATUS_DETAILS)}… (${details.length - MAX_STATUS_DETAILS} more characters)`;
}

function isServiceError(reason: unknown): reason is ServiceError {
  return (
    reason instanceof Error &&
    typeof (reason as Partial<ServiceError>).code === "number" &&
    typeof (reason as Partial<ServiceError>).details === "string"
  );
}

/**
 * THE client-side mapping from a failed call to an AutodidactError with the same {@link Code}, so
 * callers handle remote and local failures with one `err.code` check. The server's message is kept
 * verbatim; `method` (e.g. "autodidact.v1.CriticService/Score") goes into `details.method`.
 */
export function fromStatus(reason: unknown, method: string): AutodidactError {
  if (reason instanceof AutodidactError) return reason;
  if (isServiceError(reason)) {
    const code = toCode(reason.code);
    const details = reason.details.length > 0 ? reason.details : codeFallback(code);
    return new AutodidactError(details, code, {
      cause: reason,
      details: { method, grpcCode: reason.code },
    });
  }
  return AutodidactError.from(reason, Code.Unknown);
}

function codeFallback(code: Code): string {
  return `call failed with ${Code[code] ?? "Unknown"}`;
}
