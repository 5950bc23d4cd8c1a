import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Codes of a registry call that failed only because NATS was briefly unreachable (e.g. restarting). */
const TRANSIENT = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded]);

/**
 * Retries a registry step of a round while it fails transiently (up to 2 minutes). Exists because
 * giving up after a version was allocated would leave that version a permanent gap in the lineage
 * (the next round allocates the next one) and its folder without a record.
 */
export async function retryTransient<T>(what: string, logger: Logger, fn: (attempt: number) => Promise<T>): Promise<T> {
  const until = Date.now() + 120_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof AutodidactError && TRANSIENT.has(err.code)) || Date.now() > until) throw err;
      logger.warn(`${what} failed; retrying`, { attempt, error: err.rawMessage });
      await sleep(Math.min(5_000, 250 * 2 ** attempt));
    }
  }
}
