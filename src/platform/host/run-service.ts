import { randomBytes } from "node:crypto";
import { constants as osConstants } from "node:os";
import { connectBus, ensureTopology, type Bus, type TopologyDeclaration } from "../bus/index.js";
import { defineOptions, serviceOptions, type OptionSpecs, type OptionValues } from "../config/index.js";
import { AutodidactError, Code } from "../errors/index.js";
import { createAuthorizer, loadAccessList, serverCredentials, serverTlsEnabled } from "../auth/index.js";
import { resolveNatsCredentials } from "../nats-auth/index.js";
import { createServer, softwareVersion, type RpcServer, type ServiceImplementation } from "../rpc/index.js";
import { createLogger, setLogService, setupTelemetry, type Logger, type Telemetry } from "../telemetry/index.js";

/** The options every service takes plus its own. */
export type ServiceConfig<T extends OptionSpecs> = OptionValues<typeof serviceOptions> & OptionValues<T>;

/** What a service's `start` receives: its parsed config and the process-wide mesh handles. */
export interface ServiceContext<T extends OptionSpecs> {
  readonly name: string;
  readonly instanceId: string;
  readonly config: ServiceConfig<T>;
  readonly bus: Bus;
  readonly logger: Logger;
  /** Aborted when the service begins to shut down; long loops watch it. */
  readonly signal: AbortSignal;
}

/** What a started service hands back to the host. */
export interface StartedService {
  /** The gRPC services to serve (health and reflection are added by the server). */
  readonly services: readonly ServiceImplementation[];
  /** Called after the gRPC server stopped accepting calls and drained: stop loops, consumers, workers. */
  stop?(): Promise<void>;
}

/** A service as the host knows it: a name, its own flags, and how to start it. */
export interface ServiceSpec<T extends OptionSpecs> {
  /** `generator`, `critic`, `trainer` or `monitor`. */
  readonly name: string;
  /** One line for `--help`. */
  readonly description: string;
  readonly options: T;
  /**
   * The JetStream topology the service needs, created or verified (with `--nats-replicas`) before
   * `start`: the mesh's services pass `MESH_TOPOLOGY` (src/domain/topology).
   */
  readonly topology: TopologyDeclaration;
  start(ctx: ServiceContext<T>): Promise<StartedService>;
}

/** A service running in this process. */
export interface RunningService {
  readonly name: string;
  readonly instanceId: string;
  readonly server: RpcServer;
  readonly telemetry: Telemetry;
  /** Graceful stop: health NOT_SERVING, drain gRPC, stop the service's work, drain NATS, flush telemetry. */
  stop(): Promise<void>;
}

/**
 * Starts a service in this process: parses flags and environment, sets up telemetry, connects to
 * NATS, verifies the JetStream topology its spec declares, starts the service's work and serves gRPC. Every service
 * goes through here so that flags, health, shutdown and the ready line are the same everywhere.
 */
export async function startService<T extends OptionSpecs>(
  spec: ServiceSpec<T>,
  config: ServiceConfig<T>,
): Promise<RunningService> {
  const instanceId = config.instanceId ?? `${spec.name}-${randomBytes(3).toString("hex")}`;
  setLogService(spec.name);
  process.env.AUTODIDACT_LOG_LEVEL ??= config.logLevel;
  const logger = createLogger(spec.name);
  // Credentials are read (and bad ones refused) before anything connects or starts.
  const tls = { cert: config.tlsCert, key: config.tlsKey, clientCa: config.tlsClientCa };
  const credentials = serverCredentials(tls);
  const authorize = createAuthorizer({
    access: config.authFile !== undefined ? loadAccessList(config.authFile) : undefined,
    tls: serverTlsEnabled(tls),
    logger,
  });
  const telemetry = await setupTelemetry({
    serviceName: `autodidact-${spec.name}`,
    serviceVersion: softwareVersion(),
    instanceId,
    ...(config.metricsPort >= 0 ? { metricsPort: config.metricsPort } : {}),
  });
  const abort = new AbortController();
  let bus: Bus | undefined;
  let started: StartedService | undefined;
  try {
    // Secrets come from files or the environment (read once, then removed from it); never from flags.
    const natsCredentials = await resolveNatsCredentials(config, process.env);
    bus = await connectBus({
      servers: [...config.natsUrl],
      name: `autodidact-${instanceId}`,
      waitOnFirstConnect: true,
      ...(natsCredentials !== undefined ? { credentials: natsCredentials } : {}),
    });
    await ensureTopology(bus, spec.topology, { replicas: config.natsReplicas });
    started = await spec.start({ name: spec.name, instanceId, config, bus, logger, signal: abort.signal });
    const server = await createServer({
      services: started.services,
      host: config.grpcHost,
      port: config.grpcPort,
      maxMessageBytes: config.grpcMaxMessage,
      authorize,
      ...(credentials ? { credentials } : {}),
      ...(config.healthPort >= 0 ? { healthPort: config.healthPort } : {}),
    });
    const runningBus = bus;
    const runningStarted = started;
    let stopping: Promise<void> | undefined;
    return {
      name: spec.name,
      instanceId,
      server,
      telemetry,
      stop() {
        stopping ??= (async () => {
          abort.abort();
          await server.shutdown(config.shutdownTimeout);
          await runningStarted.stop?.();
          await runningBus.close();
          await telemetry.shutdown();
        })();
        return stopping;
      },
    };
  } catch (err) {
    abort.abort();
    await started?.stop?.().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await telemetry.shutdown();
    throw err;
  }
}

/**
 * Starts a service in this process from command-line style arguments (environment ignored), as a
 * test or an embedding program would: the same flags a process takes, the same validation.
 */
export async function startServiceWithArgs<T extends OptionSpecs>(spec: ServiceSpec<T>, argv: readonly string[]): Promise<RunningService> {
  const parsed = defineOptions({ ...serviceOptions, ...spec.options }).parse(argv, {});
  return await startService(spec, parsed.values as unknown as ServiceConfig<T>);
}

/** The line a service prints on stdout once it serves; `autodidact up` reads the port from it. */
export interface ReadyLine {
  event: "ready";
  service: string;
  instanceId: string;
  grpcPort: number;
  /** Plain-text health-only port (--health-port), when on. */
  healthPort: number | null;
  /** Whether the gRPC port speaks TLS. */
  tls: boolean;
  metricsPort: number | null;
  pid: number;
}

/**
 * The process entry of a service: parses argv/env (exit 2 with a message on a bad value), starts it,
 * prints the {@link ReadyLine}, and on SIGTERM/SIGINT drains and exits 0 (a repeated signal does not cut
 * the drain short; a third one exits at once with 128 + its number). Returns the exit code.
 */
export async function runService<T extends OptionSpecs>(
  spec: ServiceSpec<T>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<number> {
  const parser = defineOptions({ ...serviceOptions, ...spec.options });
  let config: ServiceConfig<T>;
  try {
    const parsed = parser.parse(argv, process.env);
    if (parsed.help) {
      process.stdout.write(
        parser.help({ usage: `autodidact ${spec.name} [options]`, description: spec.description }) + "\n",
      );
      return 0;
    }
    config = parsed.values as unknown as ServiceConfig<T>;
  } catch (err) {
    process.stderr.write(`autodidact ${spec.name}: ${errorText(err)}\n`);
    return 2;
  }

  let running: RunningService;
  try {
    running = await startService(spec, config);
  } catch (err) {
    process.stderr.write(`autodidact ${spec.name}: failed to start: ${errorText(err)}\n`);
    return 1;
  }
  const ready: ReadyLine = {
    event: "ready",
    service: spec.name,
    instanceId: running.instanceId,
    grpcPort: running.server.port,
    healthPort: running.server.healthPort ?? null,
    tls: config.tlsCert !== undefined,
    metricsPort: running.telemetry.metricsPort ?? null,
    pid: process.pid,
  };
  process.stdout.write(JSON.stringify(ready) + "\n");

  return await new Promise<number>((resolve) => {
    let signals = 0;
    // The handlers stay installed for the whole drain: in a terminal, Ctrl-C reaches every process of the
    // group and a supervisor's SIGTERM follows milliseconds later; with the default action back in place
    // that second signal would kill the process mid-drain. A second signal is noted, a third exits at once.
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      const logger = createLogger(spec.name);
      if (signals === 1) {
        logger.info("shutting down", { signal });
        running.stop().then(
          () => resolve(0),
          (err: unknown) => {
            process.stderr.write(`autodidact ${spec.name}: unclean shutdown: ${errorText(err)}\n`);
            resolve(1);
          },
        );
      } else if (signals === 2) {
        logger.info("already shutting down: the drain continues (a third signal exits at once)", { signal });
      } else {
        process.stderr.write(`autodidact ${spec.name}: ${signal} during shutdown: exiting without finishing the drain\n`);
        process.exit(128 + (osConstants.signals[signal] ?? 15));
      }
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

function errorText(err: unknown): string {
  if (err instanceof AutodidactError) return err.rawMessage;
  return err instanceof Error ? err.message : String(err);
}

/** Shorthand for the UNIMPLEMENTED answer of an RPC whose behaviour a later piece of work adds. */
export function notYet(what: string): AutodidactError {
  return new AutodidactError(what, Code.Unimplemented);
}
