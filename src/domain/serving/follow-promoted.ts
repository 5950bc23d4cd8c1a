import { createLogger, type Logger } from "../../platform/telemetry/index.js";
import type { LoadedModel, ModelHolder } from "./model-holder.js";
import { checkpointVersion } from "./model-source.js";
import type { PromotedRegistry } from "./registry-link.js";

/** Options of {@link followPromoted}. */
export interface FollowPromotedOptions<M> {
  readonly registry: PromotedRegistry;
  readonly lineage: string;
  readonly holder: ModelHolder<M>;
  /** Loads a materialized checkpoint folder as a model named `version`. */
  readonly load: (dir: string, version: string) => Promise<LoadedModel<M>>;
  /** Called after each completed swap (or failed one, with the error). */
  readonly onSwap?: (version: string, error?: unknown) => void;
  readonly logger?: Logger;
  /**
   * Waits before trying a version that failed to load again, by attempt (the last one repeats):
   * a checkpoint unreadable while the object store elects a leader loads a few seconds later.
   */
  readonly retryDelaysMs?: readonly number[];
}

/** Default waits between attempts to load a promoted checkpoint that failed. */
const RETRY_DELAYS_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/**
 * Serves the promoted checkpoint of a lineage and follows every change (promotion or rollback) with
 * a live swap, so generator and critics serve only promoted checkpoints. A checkpoint that fails to
 * load or validate is logged, the current model keeps serving, and the load is tried again with
 * growing waits for as long as that version stays promoted (the object store may be electing a
 * leader; a corrupt checkpoint is rolled back by the monitor, which ends the retries). Resolves once
 * the currently promoted version (if any) was tried; returns the function that stops following.
 */
export async function followPromoted<M>(options: FollowPromotedOptions<M>): Promise<() => void> {
  const { registry, lineage, holder } = options;
  const logger = options.logger ?? createLogger("serving");
  const delays = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  let wanted: string | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const serve = async (version: number, attempt = 0): Promise<void> => {
    const name = checkpointVersion(lineage, version);
    if (stopped || (attempt > 0 && wanted !== name)) return;
    wanted = name;
    if (holder.version === name) return;
    try {
      await holder.swap(async () => {
        const dir = await registry.materialize(lineage, version);
        return options.load(dir, name);
      });
      // A newer promotion may have arrived while this one loaded; the swaps are serialized, so the
      // newest request runs last and wins.
      options.onSwap?.(name);
    } catch (err) {
      const delayMs = delays[Math.min(attempt, delays.length - 1)] ?? 30_000;
      logger.error("cannot serve the promoted checkpoint; keeping the current model", { version: name, wanted, attempt: attempt + 1, retryInMs: delayMs, error: String(err) });
      options.onSwap?.(name, err);
      if (stopped || wanted !== name) return;
      clearTimeout(retry);
      retry = setTimeout(() => void serve(version, attempt + 1), delayMs);
      retry.unref();
    }
  };
  const promoted = await registry.getPromoted(lineage);
  if (promoted !== undefined) await serve(promoted.version);
  const unwatch = registry.watchPromoted(lineage, (version) => void serve(version));
  return () => {
    stopped = true;
    clearTimeout(retry);
    unwatch();
  };
}
