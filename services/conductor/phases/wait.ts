// Polling with a deadline and the driver's abort signal: how phases wait for what other services do.
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";

/** Sleeps `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Throws the abort reason when the driver stopped (lease lost, shutdown). */
export function throwIfStopped(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new AutodidactError("stopped", Code.Canceled);
}

/** Polls `check` until it gives a value; DeadlineExceeded naming `what` after `timeoutMs`. */
export async function waitUntil<T>(check: () => Promise<T | undefined>, o: { timeoutMs: number; pollMs: number; signal: AbortSignal; what: string }): Promise<T> {
  const end = Date.now() + o.timeoutMs;
  for (;;) {
    throwIfStopped(o.signal);
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new AutodidactError(`timed out after ${Math.round(o.timeoutMs / 1000)} s waiting for ${o.what}`, Code.DeadlineExceeded);
    await sleep(o.pollMs, o.signal);
  }
}
