/**
 * The closed set of failure codes every Autodidact component speaks. The numeric values are the
 * gRPC status codes, so an error crosses the wire without a lookup table drifting out of date.
 */
export enum Code {
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** Lower-snake names as they appear in logs and CLI messages (`invalid_argument`). */
export function codeName(code: Code): string {
  const name = Code[code];
  if (name === undefined) return "unknown";
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Narrows an arbitrary number to a member of {@link Code}, falling back to `Unknown`. */
export function toCode(value: number): Code {
  return Code[value] !== undefined && value !== 0 ? (value as Code) : Code.Unknown;
}
