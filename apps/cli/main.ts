import { join, resolve } from "node:path";
import { clientSecurityFromOptions, generateToken, ROLES, type Role } from "../../src/platform/auth/index.js";
import { connectBus } from "../../src/platform/bus/index.js";
import { clientSecurityOptions, defineOptions, serviceOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { runService, type ServiceSpec } from "../../src/platform/host/index.js";
import { softwareVersion } from "../../src/platform/rpc/index.js";
import { DEFAULT_MEMBERS, startLocalMesh, type LocalMesh, type MeshMember } from "./local-mesh.js";
import { defaultStateDir, readMeshState } from "./mesh-state.js";
import { metricsUrl, probeService } from "./status.js";
import { StopSignals } from "./stop-signals.js";
import { formatTable } from "./table.js";
import { ensureMeshTopology, natsPermissions } from "../../src/domain/topology/index.js";

const USAGE = `autodidact — a model that improves itself on its own data, guarded against collapse

Usage: autodidact <command> [options]

Commands:
  demo               the self-improvement experiment on a local mesh, with a live table and a report
                     (what \`npm start\` runs; --quick, --no-consensus, --replace, --all; \`demo --help\`)
  up                 start a local mesh: nats-server, generator, critics, consensus, trainer, monitor, conductor
  run create -f <run.yaml|run.json> | run get|watch|pause|resume|cancel <id> | run list
                     runs of the self-improvement loop on the conductor (\`run --help\`)
  models import <dir> --lineage <name> [--task <task>]
                     a base model becomes a lineage's first checkpoint (copied into the conductor's models dir)
  task check <name|module> | task list
                     check a task pack (built-in, task module or data-set folder) before the mesh runs it
  topology           create or verify the JetStream streams and buckets (run once with the admin identity)
  nats-auth          generate per-service NATS nkeys and the nats-server authorization (for Kubernetes Secrets)
  status             health and version of every service of the local mesh
  doctor             replicas, leader and follower state of every JetStream stream and bucket
  history            checkpoints of a lineage with promoted / rejected / rolled-back status
  lineage <version>  rounds, sample counts, critic votes and sample-id digests from the root to <version>
  rollback [<version>]  serve an earlier version again (default: the previous promoted one)
  auth-token --identity <name> [--role admin|reader]
                     a new bearer token and the access-list entry (its sha256) for --auth-file
  generator|critic|consensus|trainer|monitor|conductor [options]
                     run one service in this process (what a container runs)
  help               this text; \`autodidact <command> --help\` for a command's options

Exit codes: 0 success, 1 failure, 2 bad usage.`;

/** The service entry points the CLI can run in-process, loaded lazily so `status` stays light. */
const SERVICES: Record<string, () => Promise<ServiceSpec<never>>> = {
  generator: async () => (await import("../../services/generator/index.js")).generatorService as ServiceSpec<never>,
  critic: async () => (await import("../../services/critic/index.js")).criticService as ServiceSpec<never>,
  consensus: async () => (await import("../../services/consensus/index.js")).consensusService as ServiceSpec<never>,
  trainer: async () => (await import("../../services/trainer/index.js")).trainerService as ServiceSpec<never>,
  monitor: async () => (await import("../../services/monitor/index.js")).monitorService as ServiceSpec<never>,
  conductor: async () => (await import("../../services/conductor/index.js")).conductorService as ServiceSpec<never>,
};

const upOptions = defineOptions({
  stateDir: { type: "string", help: "folder for the mesh state, logs and NATS store", env: "AUTODIDACT_STATE_DIR" },
  natsUrl: { type: "string", help: "use this NATS (JetStream on) instead of starting nats-server; several URLs comma-separated", env: "NATS_URL" },
  natsReplicas: serviceOptions.natsReplicas,
  critics: { type: "int", help: "number of critic processes", default: 3, min: 1, max: 16 },
  auth: {
    type: "bool",
    help: "NATS authentication with per-service permissions, fresh credentials in <state-dir>/secrets (--no-auth to disable; off with --nats-url)",
    default: true,
  },
  metrics: {
    type: "bool",
    help: "Prometheus /metrics of every service on a free port, listed by `autodidact status` (--no-metrics to turn off)",
    default: true,
  },
  task: { type: "list", help: "task pack(s) the services handle (default: their own default, addition)", env: "AUTODIDACT_TASKS" },
  taskModule: serviceOptions.taskModule,
  taskModuleDir: serviceOptions.taskModuleDir,
});

const natsAuthOptions = defineOptions({
  out: { type: "string", help: "folder to write the seeds (<deployment>.nk, 0600) and the server authorization into" },
  critics: { type: "list", help: "critic ids, one Deployment critic-<id> each", default: ["rules", "novelty", "likelihood"] },
});

const topologyOptions = defineOptions({
  natsUrl: serviceOptions.natsUrl,
  natsCreds: serviceOptions.natsCreds,
  natsNkeyFile: serviceOptions.natsNkeyFile,
  natsUser: serviceOptions.natsUser,
  natsPasswordFile: serviceOptions.natsPasswordFile,
  natsReplicas: serviceOptions.natsReplicas,
});

const statusOptions = defineOptions({
  stateDir: { type: "string", help: "folder of the local mesh state", env: "AUTODIDACT_STATE_DIR" },
  ...clientSecurityOptions,
});

const authTokenOptions = defineOptions({
  identity: { type: "string", help: "who holds the token (appears in audit logs)", required: true },
  role: { type: "list", values: ROLES, help: "roles of the token", default: ["admin"] },
});

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE + "\n");
        return command === undefined ? 2 : 0;
      case "--version":
      case "version":
        process.stdout.write(softwareVersion() + "\n");
        return 0;
      case "demo":
        return await (await import("../demo/index.js")).demoCommand(rest);
      case "up":
        return await up(rest);
      case "status":
        return await status(rest);
      case "doctor":
        return await (await import("./status.js")).doctorCommand(rest);
      case "topology":
        return await topology(rest);
      case "nats-auth":
        return await natsAuth(rest);
      case "history":
      case "lineage":
      case "rollback":
        return await (await import("./monitor-commands.js")).monitorCommand(command, rest);
      case "auth-token":
        return authToken(rest);
      case "run":
        return await (await import("./run-commands.js")).runCommand(rest);
      case "models":
        return await (await import("./models-commands.js")).modelsCommand(rest);
      case "task":
        return await (await import("./task-commands.js")).taskCommand(rest);
      default: {
        const load = SERVICES[command];
        if (load) return await runService(await load(), rest);
        process.stderr.write(`autodidact: unknown command "${command}"\n\n${USAGE}\n`);
        return 2;
      }
    }
  } catch (err) {
    process.stderr.write(`autodidact ${command}: ${err instanceof AutodidactError ? err.rawMessage : String(err)}\n`);
    return err instanceof AutodidactError && err.code === 3 ? 2 : 1;
  }
}

async function up(argv: readonly string[]): Promise<number> {
  const parsed = upOptions.parse(argv, process.env);
  if (parsed.help) {
    process.stdout.write(upOptions.help({ usage: "autodidact up [options]", description: "Start a local mesh." }) + "\n");
    return 0;
  }
  const { stateDir = defaultStateDir(), natsUrl, critics, metrics } = parsed.values;
  const auth = parsed.values.auth && natsUrl === undefined;
  const members: MeshMember[] = [
    ...DEFAULT_MEMBERS.filter((m) => m.kind !== "critic"),
    ...Array.from({ length: critics }, (_, i) => ({ name: `critic-${String.fromCharCode(97 + i)}`, kind: "critic" as const })),
  ];
  process.stdout.write(
    natsUrl ? `using NATS at ${natsUrl}\n` : `starting nats-server (JetStream${auth ? ", per-service credentials" : ", no authentication"})…\n`,
  );
  const signals = new StopSignals();
  try {
    let mesh: LocalMesh;
    try {
      mesh = await startLocalMesh({
        stateDir,
        ...(natsUrl ? { natsUrl } : {}),
        members,
        auth,
        natsReplicas: parsed.values.natsReplicas,
        // Every service on a free port of its own (one fixed port cannot serve several processes); -1 = off.
        env: { AUTODIDACT_METRICS_PORT: metrics ? "0" : "-1", ...taskEnv(parsed.values) },
        signal: signals.stop.signal,
        onAlert: (name, line) => process.stderr.write(`[${name}] ${line}\n`),
      });
    } catch (err) {
      if (!signals.stop.signal.aborted) throw err;
      process.stdout.write("\nstopped before the mesh was up.\n");
      return 130;
    }
    const exits = new Map<string, string>();
    mesh.supervisor.on("exited", (name, code, signal) => exits.set(name, code === 0 ? "" : signal !== null ? `killed by ${signal}` : `exit code ${code}`));
    mesh.supervisor.on("restarting", (name, delay) => process.stderr.write(`[${name}] exited; restarting in ${delay} ms\n`));
    const running = mesh.state().services;
    const rows = running.map((s) => [s.name, s.kind, s.address, metricsUrl(s), s.pid]);
    process.stdout.write(`\nlocal mesh is up (NATS ${mesh.natsUrl}, state in ${stateDir})\n\n`);
    process.stdout.write(formatTable(["service", "kind", "gRPC", "metrics", "pid"], rows) + "\n\n");
    if (mesh.secrets !== undefined) {
      process.stdout.write(`NATS requires credentials: one nkey per service in ${join(stateDir, "secrets")} (admin.nk for operators)\n`);
    }
    process.stdout.write("`autodidact status` in another terminal shows health; Ctrl-C stops everything.\n");

    await signals.stopped();
    process.stdout.write("\nstopping the local mesh: every service finishes its in-flight work (Ctrl-C again to stop at once)…\n");
    signals.force.signal.addEventListener("abort", () => {
      process.stdout.write("stopping at once: services exit without finishing their drain\n");
      mesh.supervisor.forceAll();
    });
    await mesh.stop();
    const unclean = running.flatMap((s) => (exits.get(s.name) ? [`${s.name} ${exits.get(s.name)}`] : []));
    if (unclean.length === 0) {
      process.stdout.write(`stopped: every service drained and exited cleanly (logs in ${join(stateDir, "logs")}).\n`);
      return 0;
    }
    const forced = signals.force.signal.aborted;
    process.stdout.write(`${forced ? "stopped at once, drains cut short" : "stopped, not cleanly"}: ${unclean.join(", ")} (see ${join(stateDir, "logs")}).\n`);
    return forced ? 130 : 1;
  } finally {
    signals.dispose();
  }
}

/**
 * The task flags of `up` as every service's environment (absolute paths: services start in other
 * directories), so each one loads the same task modules from the same directories.
 */
function taskEnv(v: { task: readonly string[]; taskModule: readonly string[]; taskModuleDir: readonly string[] }): Record<string, string> {
  const abs = (xs: readonly string[]): string => xs.map((x) => (x.startsWith(".") || x.includes("/") ? resolve(x) : x)).join(",");
  return {
    ...(v.task.length > 0 ? { AUTODIDACT_TASKS: v.task.join(",") } : {}),
    ...(v.taskModule.length > 0 ? { AUTODIDACT_TASK_MODULES: abs(v.taskModule) } : {}),
    ...(v.taskModuleDir.length > 0 ? { AUTODIDACT_TASK_MODULE_PATH: abs(v.taskModuleDir) } : {}),
  };
}

async function topology(argv: readonly string[]): Promise<number> {
  const parsed = topologyOptions.parse(argv, process.env);
  if (parsed.help) {
    process.stdout.write(
      topologyOptions.help({
        usage: "autodidact topology [options]",
        description: "Create or verify every JetStream stream, KV bucket and object store of the mesh (idempotent).",
      }) + "\n",
    );
    return 0;
  }
  const v = parsed.values;
  const { resolveNatsCredentials } = await import("../../src/platform/nats-auth/index.js");
  const credentials = await resolveNatsCredentials(v, process.env);
  const bus = await connectBus({ servers: [...v.natsUrl], name: "autodidact-topology", ...(credentials ? { credentials } : {}) });
  try {
    const report = await ensureMeshTopology(bus, { replicas: v.natsReplicas });
    for (const [what, names] of Object.entries(report)) for (const n of names as string[]) process.stdout.write(`${what}: ${n}\n`);
  } finally {
    await bus.close();
  }
  return 0;
}

async function natsAuth(argv: readonly string[]): Promise<number> {
  const parsed = natsAuthOptions.parse(argv, process.env);
  if (parsed.help) {
    process.stdout.write(
      natsAuthOptions.help({
        usage: "autodidact nats-auth --out <dir> [options]",
        description:
          "Generate one NATS nkey per Deployment of deploy/k8s (and admin), the nats-server authorization block " +
          "(nats-server.conf) and Helm values for the NATS chart (nats-auth-values.json). See deploy/k8s/README.md.",
      }) + "\n",
    );
    return 0;
  }
  const { out, critics } = parsed.values;
  if (out === undefined) throw new AutodidactError("--out <dir> is required", Code.InvalidArgument);
  const { generateMeshCredentials } = await import("../../src/platform/nats-auth/index.js");
  const { writeFile } = await import("node:fs/promises");
  const identities = [
    { name: "admin", role: "admin" as const },
    { name: "generator", role: "generator" as const },
    ...critics.map((id) => ({ name: `critic-${id}`, role: "critic" as const, criticId: id })),
    { name: "consensus", role: "consensus" as const },
    { name: "trainer", role: "trainer" as const },
    { name: "monitor", role: "monitor" as const },
    { name: "conductor", role: "conductor" as const },
  ];
  const set = await generateMeshCredentials(out, identities, natsPermissions);
  // The same users as Helm values for the official NATS chart (config.merge becomes nats.conf).
  const rules = (r: { allow: string[]; deny: string[] }): object => (r.deny.length > 0 ? r : { allow: r.allow });
  const users = set.credentials.map((c) => {
    const p = natsPermissions(c.identity);
    return { nkey: c.publicKey, permissions: { publish: rules(p.publish), subscribe: rules(p.subscribe) } };
  });
  const values = { config: { merge: { authorization: { users } } } };
  await writeFile(join(out, "nats-auth-values.json"), JSON.stringify(values, null, 2) + "\n", { mode: 0o600 });
  process.stdout.write(`wrote ${set.credentials.length} seeds, ${set.configFile} and ${join(out, "nats-auth-values.json")}\n`);
  for (const c of set.credentials) {
    process.stdout.write(
      `kubectl -n autodidact create secret generic autodidact-nats-${c.identity.name} --from-file=nkey-seed=${c.seedFile}\n`,
    );
  }
  return 0;
}

async function status(argv: readonly string[]): Promise<number> {
  const parsed = statusOptions.parse(argv, process.env);
  if (parsed.help) {
    process.stdout.write(statusOptions.help({ usage: "autodidact status [options]" }) + "\n");
    return 0;
  }
  const stateDir = parsed.values.stateDir ?? defaultStateDir();
  const state = await readMeshState(stateDir);
  if (state.services.length === 0) {
    process.stderr.write(`no service of the local mesh in ${stateDir} is running: start one with \`autodidact up\`\n`);
    return 1;
  }
  const security = clientSecurityFromOptions(parsed.values, process.env);
  const statuses = await Promise.all(state.services.map((s) => probeService(s, undefined, security)));
  const rows = statuses.map((s, i) => [
    s.name,
    s.address,
    s.health,
    s.version,
    s.uptimeS === null ? "-" : `${s.uptimeS.toFixed(0)}s`,
    metricsUrl(state.services[i]!),
    s.error ?? s.models,
  ]);
  process.stdout.write(`NATS ${state.natsUrl}\n\n`);
  process.stdout.write(formatTable(["service", "gRPC", "health", "version", "uptime", "metrics", "models"], rows) + "\n");
  return statuses.every((s) => s.health === "SERVING") ? 0 : 1;
}

/** `autodidact auth-token`: prints a fresh token (for the client) and its digest entry (for the servers' --auth-file). */
function authToken(argv: readonly string[]): number {
  const parsed = authTokenOptions.parse(argv, {});
  if (parsed.help) {
    process.stdout.write(authTokenOptions.help({ usage: "autodidact auth-token --identity <name> [--role admin|reader]" }) + "\n");
    return 0;
  }
  const { token, entry } = generateToken(parsed.values.identity, parsed.values.role as Role[]);
  process.stdout.write(`${JSON.stringify({ token, entry })}\n`);
  return 0;
}
