import type { OptionSpecs } from "./options.js";

/**
 * Options every mesh service takes, declared once so that the generator, critics, trainer and
 * monitor spell their flags and environment variables the same way (the CLI and the Kubernetes
 * manifests set these). Spread into a service's own declarations:
 * `defineOptions({ ...serviceOptions, model: {...} })`.
 */
export const serviceOptions = {
  natsUrl: {
    type: "list",
    help: "NATS server URL(s), comma-separated",
    env: "NATS_URL",
    default: ["nats://127.0.0.1:4222"],
  },
  natsCreds: { type: "string", help: "NATS credentials (.creds) file", env: "NATS_CREDS", placeholder: "<file>" },
  natsNkeyFile: {
    type: "string",
    help: "file holding this service's NATS nkey seed (or the seed itself in AUTODIDACT_NATS_NKEY_SEED)",
    env: "AUTODIDACT_NATS_NKEY_FILE",
    placeholder: "<file>",
  },
  natsUser: { type: "string", help: "NATS user name (password from --nats-password-file or AUTODIDACT_NATS_PASSWORD)", env: "AUTODIDACT_NATS_USER" },
  natsPasswordFile: { type: "string", help: "file holding the NATS password of --nats-user", env: "AUTODIDACT_NATS_PASSWORD_FILE", placeholder: "<file>" },
  natsReplicas: {
    type: "int",
    help: "JetStream stream and bucket replicas (1 locally, 3 in clusters)",
    env: "AUTODIDACT_NATS_REPLICAS",
    default: 1,
    min: 1,
    max: 5,
  },
  grpcHost: { type: "string", help: "interface the gRPC server binds", env: "AUTODIDACT_GRPC_HOST", default: "0.0.0.0" },
  grpcPort: {
    type: "int",
    help: "gRPC port (0 = any free port, reported at start)",
    env: "AUTODIDACT_GRPC_PORT",
    default: 0,
    min: 0,
    max: 65535,
  },
  grpcMaxMessage: {
    type: "int",
    help: "largest gRPC message accepted or sent, in bytes (bigger ones fail with RESOURCE_EXHAUSTED)",
    env: "AUTODIDACT_GRPC_MAX_MESSAGE",
    default: 16 * 1024 * 1024,
    min: 1024,
    max: 1024 * 1024 * 1024,
  },
  healthPort: {
    type: "int",
    help: "plain-text gRPC health-only port for kubelet probes, which cannot speak TLS (0 = any free port; -1 = off)",
    env: "AUTODIDACT_HEALTH_PORT",
    default: -1,
    min: -1,
    max: 65535,
  },
  tlsCert: { type: "string", help: "gRPC server certificate chain: PEM file, or the PEM itself (enables TLS)", env: "AUTODIDACT_TLS_CERT", placeholder: "<pem>" },
  tlsKey: { type: "string", help: "private key of --tls-cert: PEM file, or the PEM itself", env: "AUTODIDACT_TLS_KEY", placeholder: "<pem>" },
  tlsClientCa: { type: "string", help: "CA bundle client certificates must chain to; when set, clients must present one (mTLS)", env: "AUTODIDACT_TLS_CLIENT_CA", placeholder: "<pem>" },
  authFile: {
    type: "string",
    help: "access list (JSON file, or the JSON itself): token sha256 digests and certificate names with roles; unset = admin RPCs open",
    env: "AUTODIDACT_AUTH_FILE",
    placeholder: "<file>",
  },
  metricsPort: {
    type: "int",
    help: "Prometheus /metrics port (0 = any free port; -1 = off)",
    env: "AUTODIDACT_METRICS_PORT",
    default: -1,
    min: -1,
    max: 65535,
  },
  instanceId: {
    type: "string",
    help: "instance id in traces and logs (pod name); random when unset",
    env: "AUTODIDACT_INSTANCE_ID",
  },
  logLevel: {
    type: "enum",
    values: ["debug", "info", "warn", "error", "silent"],
    help: "log level (stderr, JSON lines)",
    env: "AUTODIDACT_LOG_LEVEL",
    default: "info",
  },
  taskModule: {
    type: "list",
    help: "task module(s) to load at start (ES module path or package exporting a task pack), from --task-module-dir only",
    env: "AUTODIDACT_TASK_MODULES",
  },
  taskModuleDir: {
    type: "list",
    help: "directories task modules may load from (also PATH-style lists); a module anywhere else is refused",
    env: "AUTODIDACT_TASK_MODULE_PATH",
  },
  shutdownTimeout: {
    type: "duration",
    help: "how long to finish in-flight work on SIGTERM before exiting",
    env: "AUTODIDACT_SHUTDOWN_TIMEOUT",
    default: 20_000,
    min: 0,
  },
} as const satisfies OptionSpecs;

/**
 * Options of a command that dials Autodidact services (the CLI): TLS trust and client certificate,
 * and the bearer token file, spelled like the services' own so one set of Secrets serves both.
 * The token itself may also come from AUTODIDACT_ADMIN_TOKEN (never a flag: argv is visible in `ps`).
 */
export const clientSecurityOptions = {
  tls: { type: "bool", help: "dial services over TLS trusting the system roots (implied by --tls-ca / --tls-cert)", env: "AUTODIDACT_TLS" },
  tlsCa: { type: "string", help: "CA bundle the services' certificates must chain to: PEM file or PEM", env: "AUTODIDACT_TLS_CA", placeholder: "<pem>" },
  tlsCert: { type: "string", help: "client certificate for services that require one (mTLS): PEM file or PEM", env: "AUTODIDACT_TLS_CLIENT_CERT", placeholder: "<pem>" },
  tlsKey: { type: "string", help: "private key of --tls-cert: PEM file or PEM", env: "AUTODIDACT_TLS_CLIENT_KEY", placeholder: "<pem>" },
  tlsServerName: { type: "string", help: "name the service certificate must carry, when it differs from the dialled host", env: "AUTODIDACT_TLS_SERVER_NAME" },
  adminTokenFile: { type: "string", help: "file holding the bearer token sent to services (AUTODIDACT_ADMIN_TOKEN wins)", env: "AUTODIDACT_ADMIN_TOKEN_FILE", placeholder: "<file>" },
} as const satisfies OptionSpecs;
