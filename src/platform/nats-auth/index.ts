// NATS authentication of the mesh: roles, their least-privilege permissions, and credentials.
export { Durables, MESH_ROLES, natsPermissions, permits, RegistryKeys, subjectMatches } from "./nats-permissions.js";
export type { MeshIdentity, MeshRole, NatsPermissions, SubjectRules } from "./nats-permissions.js";
export { generateMeshCredentials, renderNatsAuthConfig, resolveNatsCredentials, SECRET_ENV } from "./nats-auth.js";
export type { MeshCredential, MeshSecretSet, NatsCredentialSources, NatsUserEntry } from "./nats-auth.js";
