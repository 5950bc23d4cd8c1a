// The checkpoint registry: versions, promoted pointers and checkpoint files shared by the whole mesh.
export { createRegistry, listCheckpointFiles, safeCheckpointPath } from "./registry.js";
export type {
  CheckpointFile,
  CheckpointRecord,
  CheckpointStatus,
  PromotedPointer,
  Registry,
  RegistryOptions,
} from "./registry.js";
