/**
 * The mesh's topology, declared once: every stream, subject, KV bucket, object store, key space,
 * durable consumer and role, and the NATS permissions derived from them. Services, the CLI, tests
 * and benches take names only from here; src/platform/bus creates what MESH_TOPOLOGY lists.
 */
export { MESH_ROLES } from "./roles.js";
export type { MeshIdentity, MeshRole, ServiceRole } from "./roles.js";
export { STREAMS, Streams } from "./streams.js";
export type { MeshStream, StreamName } from "./streams.js";
export { Subjects } from "./subjects.js";
export type { CheckpointEvent, PromotionAuditEvent } from "./subjects.js";
export { KV_BUCKETS, KvBuckets, OBJECT_STORES, ObjectBuckets } from "./buckets.js";
export type { KvBucketName, MeshKvBucket, MeshObjectStore, ObjectBucketName } from "./buckets.js";
export { ConductorKeySpaces, ConsensusLedgerKeySpaces, KEY_SPACES, keyPattern, RegistryKeySpaces } from "./key-spaces.js";
export type { KeySpace } from "./key-spaces.js";
export { DURABLES, Durables } from "./durables.js";
export type { DurableDeclaration, NamedDurable, ParametricDurable } from "./durables.js";
export { PUBLICATIONS, SUBSCRIPTIONS } from "./publications.js";
export type { Publication, Subscription } from "./publications.js";
export { ensureMeshTopology, MESH_TOPOLOGY } from "./mesh.js";
export { natsPermissions } from "./permissions.js";
