import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AutodidactError, Code } from "../errors/index.js";

/** A nats-server child process with JetStream on, owned by whoever started it. */
export interface NatsServerProcess {
  /** `nats://127.0.0.1:<port>` for clients. */
  readonly url: string;
  readonly port: number;
  /** The JetStream store directory (a temp dir unless one was given). */
  readonly storeDir: string;
  readonly process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and removes a temp store. */
  stop(): Promise<void>;
  /** Kills the server without removing its store, then starts it again on the same port and store. */
  restart(): Promise<void>;
}

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Port to listen on; a free one is picked when omitted. */
  port?: number;
  /** Store directory; a fresh temp dir (removed on stop) when omitted. */
  storeDir?: string;
  /** Path of the binary; `nats-server` on PATH when omitted. */
  binary?: string;
  /** Extra command-line arguments. */
  args?: string[];
  /**
   * A config file (`-c`), e.g. the authorization block src/platform/nats-auth generates; the port, store and
   * JetStream flags given here still apply (flags override the file).
   */
  configFile?: string;
  /** How long to wait for the server to accept connections. */
  readyTimeoutMs?: number;
  /**
   * Run the server in a process group of its own, so a terminal's Ctrl-C (sent to the whole foreground
   * group) reaches only its owner, which stops it after its clients drained (`autodidact up`).
   */
  detached?: boolean;
}

/** Asks the kernel for a free loopback TCP port. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The install hint shown when no nats-server binary can be found. */
export const NATS_INSTALL_HINT =
  "nats-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install nats-server`; " +
  "macOS: `brew install nats-server`) or set NATS_URL to an existing server with JetStream enabled.";

/**
 * Spawns nats-server with `args` (shared with the cluster helper, nats-cluster.ts) and resolves once it logs that it is ready. `onLog` sees every
 * chunk of its log (stderr) for as long as it runs; without it the log is drained and dropped.
 */
export function launchNatsServer(
  binary: string,
  args: readonly string[],
  timeoutMs: number,
  detached: boolean,
  onLog?: (chunk: string) => void,
): Promise<ChildProcess> {
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], detached });
  return new Promise<ChildProcess>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new AutodidactError(`nats-server did not become ready in ${timeoutMs} ms:\n${log}`, Code.Unavailable));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString();
      onLog?.(text);
      log += text;
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        if (onLog === undefined) {
          child.stderr?.off("data", onData);
          child.stderr?.resume();
        }
        resolve(child);
      }
    };
    child.stderr?.on("data", onData);
    child.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === "ENOENT"
          ? new AutodidactError(NATS_INSTALL_HINT, Code.FailedPrecondition, { cause: err })
          : new AutodidactError(`nats-server failed to start: ${err.message}`, Code.Unavailable, { cause: err }),
      );
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new AutodidactError(`nats-server exited early (code ${code}, signal ${signal}):\n${log}`, Code.Unavailable));
    });
  });
}

/** Sends `signal` and waits for the exit (SIGKILL after 5 s); a no-op for a process already gone. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * Starts a nats-server with JetStream on loopback and resolves once it logs that it is ready.
 * Tests start one per file; `autodidact up` starts one for the local mesh.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerProcess> {
  const port = options.port ?? (await freePort());
  const ownsStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "autodidact-nats-")));
  const binary = options.binary ?? "nats-server";
  const args = [
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    "-js",
    "-sd",
    storeDir,
    ...(options.configFile !== undefined ? ["-c", options.configFile] : []),
    ...(options.args ?? []),
  ];
  const timeoutMs = options.readyTimeoutMs ?? 15_000;

  const launch = (): Promise<ChildProcess> => launchNatsServer(binary, args, timeoutMs, options.detached === true);
  let child = await launch();
  const handle: NatsServerProcess = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get process() {
      return child;
    },
    async stop() {
      await stopChild(child, "SIGTERM");
      if (ownsStore) await rm(storeDir, { recursive: true, force: true });
    },
    async restart() {
      await stopChild(child, "SIGKILL");
      child = await launch();
    },
  };
  return handle;
}
