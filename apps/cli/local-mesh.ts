import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectBus, freePort, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { defineOptions, serviceOptions } from "../../src/platform/config/index.js";
import type { ReadyLine } from "../../src/platform/host/index.js";
import { generateMeshCredentials, resolveNatsCredentials, type MeshSecretSet } from "../../src/platform/nats-auth/index.js";
import { createSupervisor, type RestartPolicy, type Supervisor } from "./supervisor.js";
import { writeMeshState, type MeshServiceEntry, type MeshState } from "./mesh-state.js";
import { ensureMeshTopology, natsPermissions, type MeshIdentity } from "../../src/domain/topology/index.js";

/** One service process to run in the local mesh. */
export interface MeshMember {
  /** Unique process name (`critic-a`); also its instance id. */
  name: string;
  kind: MeshServiceEntry["kind"];
  /** Extra flags for this process. */
  args?: string[];
}

/** Options of {@link startLocalMesh}. */
export interface LocalMeshOptions {
  /** Where the state file, logs and (when started here) the NATS store live. */
  stateDir: string;
  /** Use this NATS instead of starting one. */
  natsUrl?: string;
  members: readonly MeshMember[];
  /** Environment given to every service process. */
  env?: Record<string, string>;
  restartPolicy?: RestartPolicy;
  /** Called with each line a service writes that is a warning or an error. */
  onAlert?: (name: string, line: string) => void;
  /** How long to wait for every member's first ready line. */
  readyTimeoutMs?: number;
  /** Aborting it while the mesh starts stops what was started and rejects. */
  signal?: AbortSignal;
  /**
   * NATS authentication with per-service permissions (default: on when this mesh starts its own
   * nats-server). A fresh secret set is generated in `<stateDir>/secrets`; the consensus member
   * is then the only identity that may publish decisions.
   */
  auth?: boolean;
  /** Where a conductor member imports base models from (default `<stateDir>/models`). */
  modelsDir?: string;
  /**
   * Runs once the topology exists and before any service starts, with an admin connection when auth
   * is on (otherwise an anonymous one): where a caller seeds what the services need at start (e.g.
   * the demo registers and promotes its base models, which generator and critics load on start).
   */
  beforeServices?: (bus: Bus) => Promise<void>;
  /**
   * Replicas of every stream and bucket, for whatever creates them first (this mesh's admin step or
   * a service); default `AUTODIDACT_NATS_REPLICAS` from the environment, else 1. More than 1 needs
   * `natsUrl` pointing at a NATS cluster.
   */
  natsReplicas?: number;
}

/** A running local mesh. */
export interface LocalMesh {
  readonly natsUrl: string;
  readonly nats: NatsServerProcess | undefined;
  readonly supervisor: Supervisor;
  /** Current gRPC address of a member (a restarted member keeps it: each member has a port of its own). */
  address(name: string): string;
  /** The folder a conductor member imports base models from. */
  readonly modelsDir: string;
  state(): MeshState;
  /** The generated credentials when auth is on (the `admin` seed file is for operators and tests). */
  readonly secrets: MeshSecretSet<MeshIdentity> | undefined;
  /** Stops every service (SIGTERM, drain), then the nats-server this mesh started. */
  stop(): Promise<void>;
}

/** The default members: one generator, three critics, one trainer, one monitor, the conductor that runs the loop. */
export const DEFAULT_MEMBERS: readonly MeshMember[] = [
  { name: "generator", kind: "generator" },
  { name: "critic-a", kind: "critic" },
  { name: "critic-b", kind: "critic" },
  { name: "critic-c", kind: "critic" },
  { name: "trainer", kind: "trainer" },
  { name: "monitor", kind: "monitor" },
  { name: "conductor", kind: "conductor" },
];

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
/** tsx's loader by absolute URL, so service processes start from any working directory. */
const TSX_LOADER = import.meta.resolve("tsx");

/** The command line that runs one service process (tsx loader, so no build step is needed). */
export function serviceCommand(kind: MeshServiceEntry["kind"]): { command: string; args: string[] } {
  return { command: process.execPath, args: ["--import", TSX_LOADER, join(repoRoot, "services", kind, "main.ts")] };
}

/** The value of `--flag v` or `--flag=v` in a member's args. */
function argValue(args: readonly string[] | undefined, flag: string): string | undefined {
  if (args === undefined) return undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1];
    if (args[i]!.startsWith(`${flag}=`)) return args[i]!.slice(flag.length + 1);
  }
  return undefined;
}

/**
 * The NATS identity of a member: its kind is its role; a critic's id is its `--critic-id` (default
 * its name, the instance id) and a trainer's durable its `--durable`, since their permissions name them.
 */
export function memberIdentity(member: MeshMember): MeshIdentity {
  if (member.kind === "critic") return { name: member.name, role: "critic", criticId: argValue(member.args, "--critic-id") ?? member.name };
  const durable = member.kind === "trainer" ? argValue(member.args, "--durable") : undefined;
  return { name: member.name, role: member.kind, ...(durable !== undefined ? { trainerDurable: durable } : {}) };
}

/**
 * Where a conductor member finds the others (the flags it is not given): the monitor, the generator,
 * each trainer per lineage it trains (its `--lineages`, default `main`), each model critic by its
 * critic id, and the models directory it imports bases from.
 */
export function conductorArgs(member: MeshMember, members: readonly MeshMember[], address: (name: string) => string, modelsDir: string): string[] {
  const own = (flag: string): boolean => argValue(member.args, flag) !== undefined;
  const first = (kind: MeshServiceEntry["kind"]): MeshMember | undefined => members.find((m) => m.kind === kind);
  const out: string[] = [];
  const monitor = first("monitor");
  const generator = first("generator");
  if (!own("--monitor") && monitor !== undefined) out.push("--monitor", address(monitor.name));
  if (!own("--generator") && generator !== undefined) out.push("--generator", address(generator.name));
  if (!own("--trainer")) {
    for (const t of members.filter((m) => m.kind === "trainer")) {
      for (const lineage of (argValue(t.args, "--lineages") ?? "main").split(",")) out.push("--trainer", `${lineage}=${address(t.name)}`);
    }
  }
  if (!own("--critic")) {
    for (const c of members.filter((m) => m.kind === "critic" && argValue(m.args, "--kind") === "model")) {
      out.push("--critic", `${argValue(c.args, "--critic-id") ?? c.name}=${address(c.name)}`);
    }
  }
  if (!own("--models-dir")) out.push("--models-dir", modelsDir);
  return out;
}

/**
 * Flags that keep a member's own state inside the mesh's state dir (`<state-dir>/services/<name>`: the
 * trainer's data dir with its cache, the others' registry cache), so two meshes never share a folder of
 * the working directory or of /tmp. A flag the member sets itself wins.
 */
export function memberStateArgs(member: MeshMember, stateDir: string): string[] {
  const dir = join(stateDir, "services", member.name);
  if (member.kind === "consensus") return [];
  if (member.kind === "trainer") return argValue(member.args, "--data-dir") === undefined ? ["--data-dir", dir] : [];
  return argValue(member.args, "--cache-dir") === undefined ? ["--cache-dir", join(dir, "cache")] : [];
}

/** Critics only judge: the mesh decides through a consensus member, added when the members have none. */
function withConsensus(members: readonly MeshMember[]): MeshMember[] {
  const out = [...members];
  if (!out.some((m) => m.kind === "consensus")) {
    const at = out.findIndex((m) => m.kind === "trainer");
    out.splice(at < 0 ? out.length : at, 0, { name: "consensus", kind: "consensus" });
  }
  return out;
}

/**
 * Starts a local mesh: a nats-server with JetStream (unless `natsUrl` is given) and every member as
 * its own supervised process on loopback; resolves once each member printed its ready line.
 */
export async function startLocalMesh(options: LocalMeshOptions): Promise<LocalMesh> {
  await mkdir(join(options.stateDir, "logs"), { recursive: true });
  const auth = options.auth ?? options.natsUrl === undefined;
  if (auth && options.natsUrl !== undefined) {
    throw new AutodidactError(
      "generated NATS authentication needs the nats-server this mesh starts: drop --nats-url, or run with --no-auth",
      Code.InvalidArgument,
    );
  }
  const members = withConsensus(options.members);
  const replicas = options.natsReplicas ?? defineOptions({ natsReplicas: serviceOptions.natsReplicas }).parse([], process.env).values.natsReplicas;
  if (replicas > 1 && options.natsUrl === undefined) {
    throw new AutodidactError(
      `${replicas} JetStream replicas need a NATS cluster: give its URLs (--nats-url / NATS_URL), or use 1 replica with the nats-server this mesh starts`,
      Code.InvalidArgument,
    );
  }
  let secrets: MeshSecretSet<MeshIdentity> | undefined;
  if (auth) {
    const dir = join(options.stateDir, "secrets");
    // A fresh set per mesh: seeds of an earlier run stop working with this server.
    await rm(dir, { recursive: true, force: true });
    secrets = await generateMeshCredentials(dir, [{ name: "admin", role: "admin" }, ...members.map(memberIdentity)], natsPermissions);
  }
  const nats =
    options.natsUrl === undefined
      ? await startNatsServer({ storeDir: join(options.stateDir, "nats"), detached: true, ...(secrets ? { configFile: secrets.configFile } : {}) })
      : undefined;
  const natsUrl = options.natsUrl ?? nats!.url;
  if (secrets !== undefined || options.beforeServices !== undefined) {
    // The services may only verify the topology: create it once with the admin identity.
    try {
      const admin = await connectBus({
        servers: natsUrl,
        name: "autodidact-up-admin",
        ...(secrets !== undefined ? { credentials: (await resolveNatsCredentials({ natsNkeyFile: secrets.seedFileOf("admin") }))! } : {}),
      });
      try {
        await ensureMeshTopology(admin, { replicas });
        await options.beforeServices?.(admin);
      } finally {
        await admin.close();
      }
    } catch (err) {
      await nats?.stop();
      throw err;
    }
  }
  const supervisor = createSupervisor(options.restartPolicy);
  const entries = new Map<string, MeshServiceEntry>();
  const logs = new Map<string, WriteStream>();
  const waiting = new Map<string, () => void>();

  const state = (): MeshState => ({
    natsUrl,
    ownsNats: nats !== undefined,
    natsPid: nats?.process.pid ?? null,
    supervisorPid: process.pid,
    services: members.flatMap((m) => entries.get(m.name) ?? []),
    updatedAt: new Date().toISOString(),
  });
  let saving = Promise.resolve();
  const save = (): void => {
    const snapshot = state();
    saving = saving.then(() => writeMeshState(options.stateDir, snapshot)).catch(() => undefined);
  };

  supervisor.on("output", (name, line) => {
    logs.get(name)?.write(line + "\n");
    if (line.startsWith('{"event":"ready"')) {
      const ready = JSON.parse(line) as ReadyLine;
      const member = members.find((m) => m.name === name);
      if (member) {
        entries.set(name, {
          name,
          kind: member.kind,
          address: `127.0.0.1:${ready.grpcPort}`,
          pid: ready.pid,
          metricsPort: ready.metricsPort,
        });
        save();
        waiting.get(name)?.();
      }
      return;
    }
    if (/"level":"(warn|error)"/.test(line) || !line.startsWith("{")) options.onAlert?.(name, line);
  });
  supervisor.on("exited", (name, code, signal) => {
    logs.get(name)?.write(`# exited code=${code} signal=${signal}\n`);
    entries.delete(name);
    save();
  });

  const readyTimeout = options.readyTimeoutMs ?? 60_000;
  const allReady = members.map(
    (member) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${member.name} did not become ready in ${readyTimeout} ms (see its log)`)),
          readyTimeout,
        );
        // A mesh that failed to start (or was interrupted) must not be kept alive by this timer.
        timer.unref();
        waiting.set(member.name, () => {
          clearTimeout(timer);
          waiting.delete(member.name);
          resolve();
        });
      }),
  );
  const criticNames = members.filter((m) => m.kind === "critic").map((m) => m.name).join(",");
  // A port of its own per member, kept across its restarts: the conductor (and anyone) keeps reaching it.
  const ports = new Map<string, number>();
  for (const member of members) {
    let port = Number(argValue(member.args, "--grpc-port") ?? 0);
    while (port === 0 || [...ports.values()].includes(port)) port = await freePort();
    ports.set(member.name, port);
  }
  const fixedAddress = (name: string): string => `127.0.0.1:${ports.get(name)}`;
  const modelsDir = options.modelsDir ?? join(options.stateDir, "models");
  await mkdir(modelsDir, { recursive: true });
  for (const member of members) {
    logs.set(member.name, createWriteStream(join(options.stateDir, "logs", `${member.name}.log`), { flags: "a" }));
    const { command, args } = serviceCommand(member.kind);
    const portArgs = argValue(member.args, "--grpc-port") === undefined ? ["--grpc-port", String(ports.get(member.name))] : [];
    const wiring = member.kind === "conductor" ? conductorArgs(member, members, fixedAddress, modelsDir) : [];
    supervisor.start({
      name: member.name,
      command,
      args: [...args, "--instance-id", member.name, "--grpc-host", "127.0.0.1", ...portArgs, ...memberStateArgs(member, options.stateDir), ...wiring, ...(member.args ?? [])],
      // The consensus member's fallback panel: all critic members (a policy set in the registry overrides it).
      env: {
        AUTODIDACT_CONSENSUS_CRITICS: criticNames,
        ...options.env,
        NATS_URL: natsUrl,
        // Whoever creates a stream or bucket first creates it with the mesh's replica count.
        AUTODIDACT_NATS_REPLICAS: String(replicas),
        // The path of the member's own seed file, never the seed itself.
        ...(secrets !== undefined ? { AUTODIDACT_NATS_NKEY_FILE: secrets.seedFileOf(member.name) } : {}),
      },
    });
  }

  const stop = async (): Promise<void> => {
    await supervisor.stopAll();
    await Promise.all([...logs.values()].map((s) => new Promise<void>((r) => s.end(r))));
    await nats?.stop();
    entries.clear();
    await saving;
  };
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = (): void => reject(new Error("interrupted while the mesh was starting"));
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([Promise.all(allReady), aborted]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    natsUrl,
    nats,
    supervisor,
    address(name) {
      const entry = entries.get(name);
      if (!entry) throw new Error(`${name} is not running`);
      return entry.address;
    },
    state,
    secrets,
    modelsDir,
    stop,
  };
}
