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
}

/**
 * Serves the promoted checkpoint of a lineage and follows every change (promotion or rollback) with
 * a live swap, so generator and critics serve only promoted checkpoints. A checkpoint that fails to
 * load or validate is logged and the current model keeps serving. Resolves once the currently
 * promoted version (if any) was tried; returns the function that stops following.
 */
export async function followPromoted<M>(options: FollowPromotedOptions<M>): Promise<() => void> {
  const { registry, lineage, holder } = options;
  const logger = options.logger ?? createLogger("serving");
  let wanted: string | undefined;
  const serve = async (version: number): Promise<void> => {
    const name = checkpointVersion(lineage, version);
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
      logger.error("cannot serve the promoted checkpoint; keeping the current model", { version: name, wanted, error: String(err) });
      options.onSwap?.(name, err);
    }
  };
  const promoted = await registry.getPromoted(lineage);
  if (promoted !== undefined) await serve(promoted.version);
  return registry.watchPromoted(lineage, (version) => void serve(version));
}
