import type { KvBucketDeclaration, ObjectStoreDeclaration } from "../../platform/bus/index.js";
import type { ServiceRole } from "./roles.js";

/** KV bucket names of the mesh. */
export const KvBuckets = {
  /** The consensus ledger: per-sample vote state, updated with compare-and-set so each decision happens once. */
  Consensus: "consensus",
  /** The registry: checkpoint records, versions, promoted pointers, policies, the monitor's records. */
  Registry: "registry",
  /** Runs of the loop and the leases of the conductors driving them (compare-and-set on every write). */
  Conductor: "conductor",
} as const;
/** A KV bucket name of the mesh. */
export type KvBucketName = (typeof KvBuckets)[keyof typeof KvBuckets];

/** Object store names of the mesh. */
export const ObjectBuckets = {
  /** Checkpoint files (safetensors, ONNX, configs), chunked, each verified against its record's SHA-256. */
  Checkpoints: "checkpoints",
} as const;
/** An object store name of the mesh. */
export type ObjectBucketName = (typeof ObjectBuckets)[keyof typeof ObjectBuckets];

/** A KV bucket of the mesh and who may read it (who writes which keys: key-spaces.ts). */
export interface MeshKvBucket extends KvBucketDeclaration {
  readonly name: KvBucketName;
  /** Roles that read the bucket (stream info, gets, key listings, watches). */
  readonly readers: readonly ServiceRole[];
  /** The only module that opens the bucket; everyone else goes through it. */
  readonly owner: string;
}

/** An object store of the mesh, its readers and writers. */
export interface MeshObjectStore extends ObjectStoreDeclaration {
  readonly name: ObjectBucketName;
  readonly readers: readonly ServiceRole[];
  readonly writers: readonly ServiceRole[];
  /** The only module that opens the store. */
  readonly owner: string;
}

/** The KV buckets of the mesh. */
export const KV_BUCKETS: readonly MeshKvBucket[] = [
  {
    name: KvBuckets.Consensus,
    history: 1,
    purpose: "the consensus ledger: per-sample vote state (compare-and-set), so each sample is decided once",
    readers: ["consensus"],
    owner: "src/domain/consensus (the consensus worker)",
  },
  {
    name: KvBuckets.Registry,
    history: 64,
    purpose: "the registry: checkpoint records, version counters, promoted pointers, consensus and gate policies, evaluations, round statistics",
    readers: ["generator", "critic", "consensus", "trainer", "monitor", "conductor"],
    owner: "src/domain/registry",
  },
  {
    name: KvBuckets.Conductor,
    history: 8,
    purpose: "runs of the loop (run.<id>) and the lease of the conductor driving each (lease.<id>), written by compare-and-set",
    readers: ["conductor"],
    owner: "services/conductor (run-store.ts)",
  },
];

/** The object stores of the mesh. */
export const OBJECT_STORES: readonly MeshObjectStore[] = [
  {
    name: ObjectBuckets.Checkpoints,
    purpose: "checkpoint files (`<lineage>/<version>/<file>`), each verified against the SHA-256 in its registry record",
    readers: ["generator", "critic", "trainer", "monitor", "conductor"],
    // The conductor uploads the base models it imports.
    writers: ["trainer", "conductor"],
    owner: "src/domain/registry",
  },
];
