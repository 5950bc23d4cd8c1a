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
  shutdownTimeout: {
    type: "duration",
    help: "how long to finish in-flight work on SIGTERM before exiting",
    env: "AUTODIDACT_SHUTDOWN_TIMEOUT",
    default: 20_000,
    min: 0,
  },
} as const satisfies OptionSpecs;
