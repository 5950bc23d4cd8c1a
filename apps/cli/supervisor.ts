import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";

/** What to run for one supervised service process. */
export interface ProcessSpec {
  /** Short unique name, e.g. `critic-a`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** Restart policy, modelled on Kubernetes' CrashLoopBackOff: doubling delay, capped, reset after a stable run. */
export interface RestartPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** A run longer than this resets the delay to `initialDelayMs`. */
  readonly stableAfterMs: number;
}

/** Events a supervisor emits, for logs and for tests. */
export interface SupervisorEvents {
  started: [name: string, pid: number, restarts: number];
  exited: [name: string, code: number | null, signal: NodeJS.Signals | null];
  restarting: [name: string, delayMs: number];
  output: [name: string, line: string];
}

interface Entry {
  spec: ProcessSpec;
  child?: ChildProcess;
  restarts: number;
  delayMs: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
}

/** A supervisor of local service processes: `autodidact up` runs the mesh through it, as a cluster would. */
export interface Supervisor extends EventEmitter<SupervisorEvents> {
  /** Starts a process and keeps it running until {@link Supervisor.stopAll}. */
  start(spec: ProcessSpec): void;
  /** The live child of a service, if any (tests use it to kill a service on purpose). */
  child(name: string): ChildProcess | undefined;
  /** How many times a service was restarted. */
  restarts(name: string): number;
  /**
   * Stops everything with SIGTERM, then SIGKILL after `graceMs` (default {@link DEFAULT_GRACE_MS}), and
   * stops restarting. Resolves once every process exited.
   */
  stopAll(graceMs?: number): Promise<void>;
  /**
   * A user's second Ctrl-C, who will not wait for drains: stops restarting, sends every live process
   * SIGTERM again (a draining service exits at once on a repeated signal) and SIGKILLs whatever still
   * runs `graceMs` later.
   */
  forceAll(graceMs?: number): void;
}

/**
 * How long {@link Supervisor.stopAll} waits for a process's own drain before SIGKILL: the cluster's
 * terminationGracePeriodSeconds (deploy/k8s), which covers a service's gRPC drain (--shutdown-timeout,
 * 20 s) and its NATS drain.
 */
export const DEFAULT_GRACE_MS = 30_000;

const DEFAULT_POLICY: RestartPolicy = { initialDelayMs: 250, maxDelayMs: 10_000, stableAfterMs: 30_000 };

/** Creates a supervisor that restarts crashed processes with exponential backoff. */
export function createSupervisor(policy: RestartPolicy = DEFAULT_POLICY): Supervisor {
  const entries = new Map<string, Entry>();
  let stopping = false;
  const emitter = new EventEmitter<SupervisorEvents>();

  const launch = (entry: Entry): void => {
    const { spec } = entry;
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    entry.child = child;
    entry.startedAt = Date.now();
    const forward = (stream: NodeJS.ReadableStream | null): void => {
      let buffered = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          emitter.emit("output", spec.name, buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      });
    };
    forward(child.stdout);
    forward(child.stderr);
    child.once("spawn", () => emitter.emit("started", spec.name, child.pid ?? -1, entry.restarts));
    child.once("error", (err) => emitter.emit("output", spec.name, `failed to start: ${err.message}`));
    child.once("exit", (code, signal) => {
      emitter.emit("exited", spec.name, code, signal);
      if (entry.child === child) entry.child = undefined;
      if (stopping) return;
      if (Date.now() - entry.startedAt >= policy.stableAfterMs) entry.delayMs = policy.initialDelayMs;
      const delay = entry.delayMs;
      entry.delayMs = Math.min(policy.maxDelayMs, entry.delayMs * 2);
      emitter.emit("restarting", spec.name, delay);
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        if (stopping) return;
        entry.restarts += 1;
        launch(entry);
      }, delay);
    });
  };

  return Object.assign(emitter, {
    start(spec: ProcessSpec): void {
      if (entries.has(spec.name)) throw new Error(`process ${spec.name} is already supervised`);
      const entry: Entry = { spec, restarts: 0, delayMs: policy.initialDelayMs, startedAt: 0 };
      entries.set(spec.name, entry);
      launch(entry);
    },
    child(name: string): ChildProcess | undefined {
      return entries.get(name)?.child;
    },
    restarts(name: string): number {
      return entries.get(name)?.restarts ?? 0;
    },
    forceAll(graceMs = 1_000): void {
      stopping = true;
      for (const entry of entries.values()) {
        if (entry.timer) clearTimeout(entry.timer);
        const child = entry.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
        child.once("exit", () => clearTimeout(kill));
        child.kill("SIGTERM");
      }
    },
    async stopAll(graceMs = DEFAULT_GRACE_MS): Promise<void> {
      stopping = true;
      await Promise.all(
        [...entries.values()].map(async (entry) => {
          if (entry.timer) clearTimeout(entry.timer);
          const child = entry.child;
          if (!child || child.exitCode !== null || child.signalCode !== null) return;
          await new Promise<void>((resolve) => {
            const force = setTimeout(() => child.kill("SIGKILL"), graceMs);
            child.once("exit", () => {
              clearTimeout(force);
              resolve();
            });
            child.kill("SIGTERM");
          });
        }),
      );
    },
  }) as Supervisor;
}
