// Transport security and access control of the gRPC mesh: TLS / mTLS credentials from PEM files or
// environment, bearer-token and client-certificate identities, and the admin-only RPC policy.
export { findToken, generateToken, loadAccessList, parseAccessList, ROLES, tokenDigest } from "./access.js";
export type { AccessList, CertificateEntry, Role, TokenEntry } from "./access.js";
export { ADMIN_METHODS, createAuthorizer, hasRole, requiredRole, requireRole } from "./authorizer.js";
export type { AuthorizerOptions } from "./authorizer.js";
export { ADMIN_TOKEN_ENV, clientSecurity, clientSecurityFromOptions, readClientToken } from "./client.js";
export type { ClientSecurityValues } from "./client.js";
export { createTestCertificates } from "./test-certificates.js";
export type { TestCertificates } from "./test-certificates.js";
export { clientCredentials, clientTlsEnabled, readPem, serverCredentials, serverTlsEnabled } from "./tls.js";
export type { ClientTlsConfig, ServerTlsConfig } from "./tls.js";
