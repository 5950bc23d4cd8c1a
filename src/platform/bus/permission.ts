import { PermissionViolationError } from "@nats-io/transport-node";
import { AutodidactError, Code } from "../errors/index.js";

// Permission errors of the bus, shared by every client operation (publish, KV, objects, retry rules).

/**
 * The server's "Permissions Violation" for a subject this connection's NATS user may not publish
 * or subscribe to (found in the error or its causes), or undefined.
 */
export function permissionViolation(err: unknown): PermissionViolationError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return e;
  }
  return undefined;
}

/**
 * Wraps a permissions violation as PermissionDenied naming the refused operation and subject
 * (a denied write is a deployment error, never worth a retry), or undefined for other errors.
 */
export function permissionDeniedError(err: unknown, what: string): AutodidactError | undefined {
  const pv = permissionViolation(err);
  if (pv === undefined) return undefined;
  return new AutodidactError(
    `${what} refused: this NATS user may not ${pv.operation} to "${pv.subject}" (its role lacks this permission)`,
    Code.PermissionDenied,
    { cause: err, details: { operation: pv.operation, subject: pv.subject } },
  );
}
