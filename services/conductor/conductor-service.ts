// The conductor service: runs the self-improvement loop (runs of the ConductorService) through the
// other services' RPCs and the bus, with every run's state in NATS, so any conductor (restarted,
// another replica) resumes a run where the last one left it.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { clientSecurity, readClientToken } from "../../src/platform/auth/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { ServiceSpec } from "../../src/platform/host/index.js";
import { createInfoHandler, implement } from "../../src/platform/rpc/index.js";
import { createRegistry } from "../../src/domain/registry/index.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { ConductorService } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { BaseImporter } from "./base-import.js";
import { conductorHandlers, createRun } from "./handlers.js";
import { TaskModuleGate } from "./task-module.js";
import { parseAssignments, Peers } from "./peers.js";
import type { ConductorServices, DriverSettings } from "./phases/index.js";
import { RunEventLog } from "./run-events.js";
import { normalizeRunSpec } from "./run-spec.js";
import { readRunSpecFile } from "./run-spec-file.js";
import { RunStore } from "./run-store.js";
import { RunScheduler } from "./scheduler.js";

/** Flags of the conductor beyond the ones every service takes. */
export const conductorOptions = {
  monitor: { type: "string", help: "gRPC address of the monitor (policies, base promotion, gate reasons)", env: "AUTODIDACT_MONITOR_ADDR", placeholder: "<host:port>" },
  generator: { type: "string", help: "gRPC address of the generator (proposals, probes)", env: "AUTODIDACT_GENERATOR_ADDR", placeholder: "<host:port>" },
  trainer: { type: "list", help: "trainer of a lineage, LINEAGE=HOST:PORT (repeat the flag), or one HOST:PORT for every lineage", env: "AUTODIDACT_TRAINERS", default: [] },
  critic: { type: "list", help: "model critic, ID=HOST:PORT (repeat the flag): served models (SERVE) and agreement (PROBE)", env: "AUTODIDACT_MODEL_CRITICS", default: [] },
  modelsDir: { type: "string", help: "base models are imported only from folders inside this directory", env: "AUTODIDACT_MODELS_DIR", placeholder: "<dir>" },
  runSpecFile: { type: "string", help: "run spec (YAML or JSON) created at start unless a run of its name exists", env: "AUTODIDACT_RUN_SPEC_FILE", placeholder: "<file>" },
  leaseTtl: { type: "duration", help: "a run's lease lasts this long unless renewed (a killed conductor's runs are taken over after it)", env: "AUTODIDACT_LEASE_TTL", default: 10_000, min: 1_000 },
  phaseAttempts: { type: "int", help: "attempts of a failing phase before its run fails (ResumeRun retries it)", default: 5, min: 1, max: 100 },
  retryDelay: { type: "duration", help: "wait before a failed phase's first retry (doubled per attempt, at most a minute)", default: 2_000, min: 10 },
  pollInterval: { type: "duration", help: "how often a waiting phase looks again (decisions, gate, served models)", default: 500, min: 20 },
  serveTimeout: { type: "duration", help: "longest wait for generator and critics to serve the promoted models (and for a trainer's intake)", default: 600_000, min: 1_000 },
  gateTimeout: { type: "duration", help: "longest wait for the monitor's gate on a candidate", default: 3_600_000, min: 1_000 },
  progressEvery: { type: "duration", help: "least time between two progress events of a phase", default: 2_000, min: 0 },
  cacheDir: { type: "string", help: "registry cache (the conductor downloads no checkpoint; imports upload)", env: "AUTODIDACT_CACHE_DIR" },
  dialTlsCa: { type: "string", help: "CA bundle the other services' certificates chain to (dial them over TLS): PEM file or PEM", env: "AUTODIDACT_TLS_CA", placeholder: "<pem>" },
  dialTlsCert: { type: "string", help: "client certificate for services that require one (mTLS)", env: "AUTODIDACT_TLS_CLIENT_CERT", placeholder: "<pem>" },
  dialTlsKey: { type: "string", help: "private key of --dial-tls-cert", env: "AUTODIDACT_TLS_CLIENT_KEY", placeholder: "<pem>" },
  dialTlsServerName: { type: "string", help: "name the other services' certificates carry, when it differs from the dialled host", env: "AUTODIDACT_TLS_SERVER_NAME" },
  adminTokenFile: { type: "string", help: "file holding the admin bearer token sent to the other services (AUTODIDACT_ADMIN_TOKEN wins)", env: "AUTODIDACT_ADMIN_TOKEN_FILE", placeholder: "<file>" },
} as const;

/** The conductor service: drives runs of the self-improvement loop. */
export const conductorService: ServiceSpec<typeof conductorOptions> = {
  name: "conductor",
  description: "runs the self-improvement loop: choose a difficulty, propose, judge, train, gate, repeat",
  options: conductorOptions,
  topology: MESH_TOPOLOGY,
  async start(ctx) {
    const cfg = ctx.config;
    const logger = ctx.logger;
    const tls = cfg.dialTlsCa !== undefined || cfg.dialTlsCert !== undefined;
    const security = clientSecurity({
      tls: { tls, ca: cfg.dialTlsCa, cert: cfg.dialTlsCert, key: cfg.dialTlsKey, serverName: cfg.dialTlsServerName },
      token: readClientToken(cfg.adminTokenFile),
    });
    const peers = new Peers(
      {
        monitor: cfg.monitor,
        generator: cfg.generator,
        trainers: parseAssignments("trainer", cfg.trainer, true),
        critics: parseAssignments("critic", cfg.critic, false),
      },
      security,
    );
    const taskModules = await TaskModuleGate.open(cfg);
    const registry = createRegistry(ctx.bus, { cacheDir: cfg.cacheDir ?? join(tmpdir(), "autodidact-cache", ctx.instanceId) });
    const events = new RunEventLog(ctx.bus, logger);
    const store = await RunStore.open(ctx.bus, events, logger);
    const importer = new BaseImporter(registry, peers, cfg.modelsDir === undefined ? undefined : resolve(cfg.modelsDir), logger);
    const settings: DriverSettings = {
      phaseAttempts: cfg.phaseAttempts,
      retryBaseMs: cfg.retryDelay,
      retryMaxMs: 60_000,
      pollMs: cfg.pollInterval,
      serveTimeoutMs: cfg.serveTimeout,
      gateTimeoutMs: cfg.gateTimeout,
      progressEveryMs: cfg.progressEvery,
    };
    const services: ConductorServices = { bus: ctx.bus, store, registry, peers, importer, logger, settings };
    // Unique per process: a restarted conductor waits for its predecessor's leases to expire.
    const holder = `${ctx.instanceId}/${randomBytes(3).toString("hex")}`;
    const scheduler = new RunScheduler(services, { holder, leaseTtlMs: cfg.leaseTtl, scanMs: Math.max(200, Math.min(1_000, cfg.leaseTtl / 4)) });
    if (cfg.runSpecFile !== undefined) {
      try {
        const spec = normalizeRunSpec(await readRunSpecFile(cfg.runSpecFile));
        const missing = peers.missing(spec.lineages.map((l) => l.name), spec.critics.filter((c) => c.kind === "model").map((c) => c.id));
        if (missing.length > 0) throw new AutodidactError(`--run-spec-file: run ${spec.name} needs ${missing.join(", ")}`, Code.InvalidArgument);
        const run = await createRun({ store, peers, scheduler, taskModules }, spec);
        logger.info("run from --run-spec-file", { run: run.id });
      } catch (err) {
        // A run of that name with another spec, or another active run of the task: the file names a
        // run that cannot start now, which is no reason to stop driving the others (a bad spec is).
        const code = err instanceof AutodidactError ? err.code : Code.Unknown;
        if (code !== Code.AlreadyExists && code !== Code.FailedPrecondition) {
          peers.close();
          throw err;
        }
        logger.warn("the run of --run-spec-file is not created", { file: cfg.runSpecFile, reason: err instanceof AutodidactError ? err.rawMessage : String(err) });
      }
    }
    scheduler.start();
    const info = createInfoHandler(ConductorService, {
      instanceId: ctx.instanceId,
      attributes: {
        holder,
        ...(cfg.monitor ? { monitor: cfg.monitor } : {}),
        ...(cfg.generator ? { generator: cfg.generator } : {}),
        ...(cfg.modelsDir ? { modelsDir: cfg.modelsDir } : {}),
      },
    });
    return {
      services: [implement(ConductorService, conductorHandlers({ store, events, scheduler, importer, peers, taskModules, info: () => info() }))],
      async stop() {
        await scheduler.stop();
        peers.close();
      },
    };
  },
};
