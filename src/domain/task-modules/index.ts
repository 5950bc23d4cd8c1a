/**
 * Task modules: task packs that live outside the repository, loaded as ES modules (TypeScript through
 * tsx, or JavaScript) only from the directories the operator configured. This floor resolves, digests
 * and imports them and knows nothing of packs (the conductor uses it without holding any task code);
 * `src/domain/tasks` turns the export into a registered pack.
 */
export { taskModuleLocations, resolveTaskModule, moduleDigest, isPathReference, DATASET_MANIFEST } from "./locations.js";
export type { ResolvedTaskModule, TaskModuleLocations } from "./locations.js";
export { importTaskModule, moduleError } from "./load.js";
export type { LoadedModule, TaskIdentity } from "./load.js";
