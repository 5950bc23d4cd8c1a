import { readFile } from "node:fs/promises";
import {
  connect,
  AuthorizationError,
  credsAuthenticator,
  nkeyAuthenticator,
  PermissionViolationError,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type NatsConnection,
} from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { AutodidactError, Code } from "../errors/index.js";
import { createLogger } from "../telemetry/logger.js";
import { publish, type PublishOptions, type PublishResult } from "./publish.js";

/** How to authenticate to NATS; all optional, pick one. */
export interface BusCredentials {
  /** Path of a `.creds` file (JWT + nkey seed) as produced by `nsc`. */
  credsFile?: string;
  /** An nkey seed (`SU…`); the server config holds only its public key (src/platform/nats-auth). */
  nkeySeed?: Uint8Array;
  token?: string;
  user?: string;
  pass?: string;
}

/** Options of {@link connectBus}. */
export interface ConnectBusOptions {
  /** One or more `nats://host:port` URLs (a comma-separated string too, as `NATS_URL` holds them). */
  servers: string | readonly string[];
  /** Connection name shown by the server (`autodidact-critic-0`), helps when reading `nats server report`. */
  name: string;
  credentials?: BusCredentials;
  /**
   * Keep trying the first connect instead of failing (services started before NATS wait for it);
   * false by default so a CLI call against a wrong URL fails fast.
   */
  waitOnFirstConnect?: boolean;
  /** Timeout of JetStream API requests and publish acks, in ms (default 10 s). */
  timeoutMs?: number;
  /** Ceiling of the reconnect backoff, in ms (default 5 s). */
  maxReconnectDelayMs?: number;
  /** How long close() waits for consumers and the drain before closing hard, in ms (default 10 s). */
  drainTimeoutMs?: number;
}

/**
 * A connection to the mesh's NATS: the core connection, a JetStream client and manager, and the
 * publish helper that adds message ids and trace context. One per process.
 */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly name: string;
  /** Timeout of JetStream API requests and publish acks, in ms. */
  readonly timeoutMs: number;
  /** Publishes to a stream subject with de-duplication by `msgId` and trace propagation. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PublishResult>;
  /**
   * Stops every consumer started on this bus (their in-flight handlers finish and ack), then
   * drains and closes the connection; bounded by `drainTimeoutMs`, after which it just closes.
   */
  close(): Promise<void>;
  /** Registers work to finish before the connection drains (consumers use it); returns an unregister function. */
  onClose(hook: () => Promise<void>): () => void;
  /** Resolves when the connection is closed for good (after close() or a fatal error). */
  closed(): Promise<void>;
}

async function authenticators(credentials: BusCredentials | undefined): Promise<Authenticator[] | undefined> {
  if (credentials === undefined) return undefined;
  const out: Authenticator[] = [];
  if (credentials.credsFile !== undefined) {
    let creds: Uint8Array;
    try {
      creds = await readFile(credentials.credsFile);
    } catch (err) {
      throw new AutodidactError(`cannot read NATS credentials file ${credentials.credsFile}`, Code.InvalidArgument, {
        cause: err,
      });
    }
    out.push(credsAuthenticator(creds));
  }
  if (credentials.nkeySeed !== undefined) out.push(nkeyAuthenticator(credentials.nkeySeed));
  if (credentials.token !== undefined) out.push(tokenAuthenticator(credentials.token));
  if (credentials.user !== undefined) out.push(usernamePasswordAuthenticator(credentials.user, credentials.pass ?? ""));
  return out.length > 0 ? out : undefined;
}

/**
 * Connects to NATS and returns a {@link Bus}. It reconnects forever with capped exponential
 * backoff and jitter, so a service survives a nats-server restart without being restarted.
 */
export async function connectBus(options: ConnectBusOptions): Promise<Bus> {
  const log = createLogger("bus");
  const maxDelay = options.maxReconnectDelayMs ?? 5_000;
  const timeout = options.timeoutMs ?? 10_000;
  // nats.js asks for the delay on every turn of its dial loop (also while it is only waiting), so
  // the backoff is a function of how long we have been disconnected, not of a call counter:
  // 100 ms right after a restart, growing to maxDelay after a long outage.
  let disconnectedAt: number | undefined;
  // "nats://a:4222,nats://b:4222" is a list: every node of a cluster, to fail over between.
  const servers = (typeof options.servers === "string" ? [options.servers] : [...options.servers])
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnect: true,
      waitOnFirstConnect: options.waitOnFirstConnect ?? false,
      reconnectDelayHandler: () => {
        disconnectedAt ??= Date.now();
        const down = Date.now() - disconnectedAt;
        return Math.round(Math.min(maxDelay, Math.max(100, down / 4)) * (0.8 + Math.random() * 0.4));
      },
      authenticator: await authenticators(options.credentials),
      timeout,
      // nats.js captures a stack trace up front for every request so a failure can point at the
      // caller; on the consensus path (several KV requests per sample) that alone cost ~18% CPU.
      noAsyncTraces: true,
    });
  } catch (err) {
    if (err instanceof AutodidactError) throw err;
    const list = servers.join(", ");
    if (err instanceof AuthorizationError || /authorization violation|authentication/i.test(String(err))) {
      throw new AutodidactError(
        `NATS at ${list} refused the connection of ${options.name}: ${options.credentials === undefined ? "no credentials given" : "credentials not accepted"} ` +
          "(set --nats-nkey-file / --nats-creds / --nats-user with --nats-password-file)",
        Code.Unauthenticated,
        { cause: err },
      );
    }
    throw new AutodidactError(
      `cannot connect to NATS at ${list}: ${err instanceof Error ? err.message : String(err)} ` +
        `(is nats-server running with JetStream, and is NATS_URL right?)`,
      Code.Unavailable,
      { cause: err },
    );
  }

  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          disconnectedAt ??= Date.now();
          log.warn("disconnected from NATS", { server: s.server });
          break;
        case "reconnect":
          disconnectedAt = undefined;
          log.info("reconnected to NATS", { server: s.server });
          break;
        case "error":
          if (s.error instanceof PermissionViolationError) {
            // The failing call reports it too (PERMISSION_DENIED); here it is one line, not a stack.
            log.warn("NATS permissions violation: this user's role lacks the permission", {
              operation: s.error.operation,
              subject: s.error.subject,
            });
          } else log.error("NATS connection error", { error: s.error });
          break;
        default:
          break;
      }
    }
  })().catch(() => undefined);

  const js = jetstream(nc, { timeout });
  const jsm = await jetstreamManager(nc, { timeout, checkAPI: false });
  const closedP = nc.closed().then(() => undefined);
  const hooks = new Set<() => Promise<void>>();
  const drainTimeout = options.drainTimeoutMs ?? 10_000;
  let closing: Promise<void> | undefined;
  const closeOnce = async (): Promise<void> => {
    const graceful = (async () => {
      await Promise.allSettled([...hooks].map((h) => h()));
      if (!nc.isClosed()) await nc.drain();
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      graceful.then(
        () => false,
        () => true,
      ),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), drainTimeout);
      }),
    ]);
    if (timer !== undefined) clearTimeout(timer);
    if (timedOut) {
      log.warn("bus did not drain in time; closing", { drain_timeout_ms: drainTimeout });
      await nc.close().catch(() => undefined);
    }
  };
  const bus: Bus = {
    nc,
    js,
    jsm,
    name: options.name,
    timeoutMs: timeout,
    publish: (subject, data, publishOptions) => publish(bus, subject, data, publishOptions),
    close() {
      closing ??= closeOnce();
      return closing;
    },
    onClose(hook) {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },
    closed: () => closedP,
  };
  return bus;
}
