import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AutodidactError, Code } from "../errors/index.js";
import { freePort, launchNatsServer, stopChild } from "./nats-server.js";

// A JetStream cluster of nats-server processes on loopback: what tests and the cluster chaos bench
// (bench/chaos/cluster.ts) run replicated streams on, and kill nodes of.

/** Options of {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Number of nodes (default 3). */
  size?: number;
  /** `--cluster_name` (default `c1`); the nodes are `n1`..`n<size>`. */
  name?: string;
  /** Folder holding one store directory per node; a fresh temp dir (removed on stop) when omitted. */
  storeRoot?: string;
  /** Path of the binary; `nats-server` on PATH when omitted. */
  binary?: string;
  /** A config file every node reads (`-c`), e.g. an authorization block; the flags given here still apply. */
  configFile?: string;
  /** Extra command-line arguments of every node. */
  args?: string[];
  /** How long to wait for each node to accept connections and for a metadata leader (default 30 s). */
  readyTimeoutMs?: number;
}

/** One node of a {@link NatsCluster}. */
export interface NatsClusterNode {
  /** Server name (`-n`), as stream info reports leaders and replicas. */
  readonly name: string;
  /** `nats://127.0.0.1:<port>` for clients. */
  readonly url: string;
  readonly port: number;
  /** Port of the cluster routes. */
  readonly clusterPort: number;
  /** Port of the HTTP monitoring endpoint (`/jsz`, `/healthz`). */
  readonly monitorPort: number;
  readonly storeDir: string;
  /** True while the process runs. */
  readonly running: boolean;
  readonly process: ChildProcess | undefined;
  /** Kills the node (SIGKILL by default) and keeps its store; a no-op when it is not running. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again on the same ports and store; a no-op when it runs. */
  start(): Promise<void>;
}

/** A running cluster; nodes may be killed and started again while it runs. */
export interface NatsCluster {
  readonly name: string;
  readonly nodes: readonly NatsClusterNode[];
  /** Every node's client URL: what clients connect with (they fail over between them). */
  readonly urls: readonly string[];
  /** The URLs comma-separated, as `NATS_URL` takes them. */
  readonly url: string;
  /** The node named `name` (`n1`); throws for an unknown name. */
  node(name: string): NatsClusterNode;
  /**
   * Waits until a running node reports a JetStream metadata leader that is itself running, and
   * returns its name: before that, the cluster cannot create or change streams.
   */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Stops every node (SIGTERM) and removes a temp store root. */
  stop(): Promise<void>;
}

interface Ports {
  client: number;
  cluster: number;
  monitor: number;
}

/** What a node's `/jsz` says about the metadata group (undefined when unreachable). */
async function metaLeaderSeenBy(monitorPort: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/jsz`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json()) as { meta_cluster?: { leader?: string } };
    const leader = body.meta_cluster?.leader;
    return leader === undefined || leader === "" ? undefined : leader;
  } catch {
    return undefined;
  }
}

class ClusterNode implements NatsClusterNode {
  readonly url: string;
  private child: ChildProcess | undefined;
  private starting: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly ports: Ports,
    readonly storeDir: string,
    private readonly binary: string,
    private readonly args: readonly string[],
    private readonly readyTimeoutMs: number,
  ) {
    this.url = `nats://127.0.0.1:${ports.client}`;
  }

  get port(): number {
    return this.ports.client;
  }
  get clusterPort(): number {
    return this.ports.cluster;
  }
  get monitorPort(): number {
    return this.ports.monitor;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
  get process(): ChildProcess | undefined {
    return this.child;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.starting ??= (async () => {
      await mkdir(this.storeDir, { recursive: true });
      this.child = await launchNatsServer(this.binary, this.args, this.readyTimeoutMs, false);
    })().finally(() => {
      this.starting = undefined;
    });
    await this.starting;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child !== undefined) await stopChild(this.child, signal);
  }
}

/**
 * Starts a JetStream cluster of `size` nats-server processes on loopback, each with its own client,
 * route and monitoring port and its own store directory, routed to each other (`--routes`), and
 * resolves once the cluster has a metadata leader.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > 9) {
    throw new AutodidactError(`cluster size must be an integer in [1, 9], got ${size}`, Code.InvalidArgument);
  }
  const clusterName = options.name ?? "c1";
  const ownsStore = options.storeRoot === undefined;
  const storeRoot = options.storeRoot ?? (await mkdtemp(join(tmpdir(), "autodidact-nats-cluster-")));
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const ports: Ports[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), cluster: await freePort(), monitor: await freePort() });
  const routes = ports.map((p) => `nats://127.0.0.1:${p.cluster}`).join(",");
  const nodes = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const storeDir = join(storeRoot, name);
    const args = [
      ...(options.configFile !== undefined ? ["-c", options.configFile] : []),
      "-n", name,
      "-a", "127.0.0.1",
      "-p", String(p.client),
      "-m", String(p.monitor),
      "--cluster_name", clusterName,
      "--cluster", `nats://127.0.0.1:${p.cluster}`,
      "--routes", routes,
      "-js",
      "-sd", storeDir,
      ...(options.args ?? []),
    ];
    return new ClusterNode(name, p, storeDir, options.binary ?? "nats-server", args, readyTimeoutMs);
  });

  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill("SIGTERM")));
    if (ownsStore) await rm(storeRoot, { recursive: true, force: true });
  };

  const waitForMetaLeader = async (timeoutMs = readyTimeoutMs): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = nodes.filter((n) => n.running);
      const seen = await Promise.all(running.map((n) => metaLeaderSeenBy(n.monitorPort)));
      const leader = seen.find((l) => l !== undefined && running.some((n) => n.name === l));
      if (leader !== undefined) return leader;
      if (Date.now() > deadline) {
        throw new AutodidactError(
          `the NATS cluster ${clusterName} has no JetStream metadata leader after ${timeoutMs} ms (running: ${running.map((n) => n.name).join(", ") || "none"})`,
          Code.Unavailable,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  try {
    // All at once: each node waits for its routes, and the metadata group needs a quorum to elect.
    await Promise.all(nodes.map((n) => n.start()));
    await waitForMetaLeader();
  } catch (err) {
    await stop();
    throw err;
  }
  const urls = nodes.map((n) => n.url);
  return {
    name: clusterName,
    nodes,
    urls,
    url: urls.join(","),
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (n === undefined) throw new AutodidactError(`no node ${name} in cluster ${clusterName}`, Code.InvalidArgument);
      return n;
    },
    waitForMetaLeader,
    stop,
  };
}
