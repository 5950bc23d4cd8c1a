import { Code, codeName } from "./code.js";

/**
 * The one error class of Autodidact. It carries a {@link Code} that maps 1:1 to a gRPC status,
 * a human message that says what went wrong and what to do, and the underlying cause.
 */
export class AutodidactError extends Error {
  /** The failure code; on the wire it is the gRPC status. */
  readonly code: Code;
  /** The message without the `[code]` prefix, as sent to remote callers. */
  readonly rawMessage: string;
  /** Optional structured context (file names, limits, ids) for logs and tests. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    message: string,
    code: Code = Code.Unknown,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(`[${codeName(code)}] ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AutodidactError";
    this.code = code;
    this.rawMessage = message;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /**
   * Turns anything thrown into an AutodidactError, keeping an existing one as it is, so callers
   * can reason about `code` without `instanceof` ladders.
   */
  static from(reason: unknown, code: Code = Code.Unknown): AutodidactError {
    if (reason instanceof AutodidactError) return reason;
    if (reason instanceof Error) return new AutodidactError(reason.message, code, { cause: reason });
    return new AutodidactError(String(reason), code, { cause: reason });
  }
}
