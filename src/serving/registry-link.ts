import type { Bus } from "../bus/index.js";
import type { CheckpointFetcher } from "./model-source.js";

/** The registry calls a serving process makes: fetch a checkpoint, read and follow the promoted version. */
export interface PromotedRegistry extends CheckpointFetcher {
  getPromoted(lineage: string): Promise<{ version: number; revision: number } | undefined>;
  watchPromoted(lineage: string, onChange: (version: number) => void): () => void;
}

/**
 * Opens the shared checkpoint registry (`src/registry`, owned by the trainer) for a serving process.
 * Loaded lazily by module path so serving works (path-only models) in a tree where the registry is
 * not built yet; resolves undefined then.
 */
export async function linkRegistry(bus: Bus, cacheDir: string): Promise<PromotedRegistry | undefined> {
  const modulePath = "../registry/index.js";
  let mod: { createRegistry?: (bus: Bus, options: { cacheDir: string }) => PromotedRegistry };
  try {
    mod = (await import(modulePath)) as typeof mod;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const missing = code === "ERR_MODULE_NOT_FOUND" || /Cannot find module|Failed to load url|does not exist/i.test(String(err));
    if (missing) return undefined;
    throw err;
  }
  return mod.createRegistry?.(bus, { cacheDir });
}
