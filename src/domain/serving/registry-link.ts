import type { Bus } from "../../platform/bus/index.js";
import { createRegistry } from "../registry/index.js";
import type { CheckpointFetcher } from "./model-source.js";

/** The registry calls a serving process makes: fetch a checkpoint, read and follow the promoted version. */
export interface PromotedRegistry extends CheckpointFetcher {
  getPromoted(lineage: string): Promise<{ version: number; revision: number } | undefined>;
  watchPromoted(lineage: string, onChange: (version: number) => void): () => void;
}

/**
 * Opens the shared checkpoint registry (`src/domain/registry`) for a serving process, narrowed to what
 * serving needs, with checkpoints cached under `cacheDir`. Kept async (and able to answer undefined)
 * so callers also handle deployments without a registry.
 */
export async function linkRegistry(bus: Bus, cacheDir: string): Promise<PromotedRegistry | undefined> {
  return createRegistry(bus, { cacheDir });
}
