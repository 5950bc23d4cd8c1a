// NATS authentication runtime: permission data and matching, the JetStream API subjects behind each
// kind of access, nkey credentials and the nats-server authorization block. Which role may do what
// in the mesh is declared in src/domain/topology.
export { JetStreamGrants, permits, subjectMatches } from "./permissions.js";
export type { NatsPermissions, SubjectRules } from "./permissions.js";
export { generateMeshCredentials, renderNatsAuthConfig, resolveNatsCredentials, SECRET_ENV } from "./nats-auth.js";
export type { MeshCredential, MeshSecretSet, NatsCredentialSources, NatsIdentity, NatsUserEntry } from "./nats-auth.js";
