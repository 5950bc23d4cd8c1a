import type { DescService } from "@bufbuild/protobuf";
import { ConductorService } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { CriticService } from "../../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { TrainerService } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { AutodidactError } from "../../src/platform/errors/index.js";
import { connectBus, describeTopology, serversOf, type AssetStatus, type Bus, type ServerState } from "../../src/platform/bus/index.js";
import { defineOptions, serviceOptions } from "../../src/platform/config/index.js";
import { resolveNatsCredentials } from "../../src/platform/nats-auth/index.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { formatTable } from "./table.js";
import { createClient, type ClientOptions } from "../../src/platform/rpc/index.js";
import type { MeshServiceEntry } from "./mesh-state.js";

/** The gRPC service each kind of process serves (consensus serves only health). */
export const SERVICE_OF_KIND: Readonly<Record<MeshServiceEntry["kind"], DescService | undefined>> = {
  generator: GeneratorService,
  critic: CriticService,
  consensus: undefined,
  trainer: TrainerService,
  monitor: MonitorService,
  conductor: ConductorService,
};

/** One row of `autodidact status`. */
export interface ServiceStatus {
  name: string;
  address: string;
  health: string;
  version: string;
  models: string;
  uptimeS: number | null;
  error?: string;
}

/** Asks one service for its health (grpc.health.v1) and identity (GetInfo), over TLS / with a token when `security` says so. Never throws. */
export async function probeService(
  entry: Pick<MeshServiceEntry, "name" | "kind" | "address">,
  deadlineMs = 3_000,
  security: Pick<ClientOptions, "credentials" | "channelOptions" | "metadata"> = {},
): Promise<ServiceStatus> {
  const service = SERVICE_OF_KIND[entry.kind];
  const health = createClient(Health, entry.address, { deadlineMs, ...security });
  const info =
    service === undefined
      ? undefined
      : (createClient(service, entry.address, { deadlineMs, ...security }) as unknown as {
          getInfo(req: object): Promise<{ softwareVersion: string; uptimeMs: bigint; models: { role: string; version: string }[] }>;
          close(): void;
        });
  try {
    const checked = await health.check({ service: service?.typeName ?? "" });
    if (info === undefined) {
      const serving = HealthCheckResponse_ServingStatus[checked.status] ?? String(checked.status);
      return { name: entry.name, address: entry.address, health: serving, version: "-", models: "-", uptimeS: null };
    }
    const about = await info.getInfo({});
    return {
      name: entry.name,
      address: entry.address,
      health: HealthCheckResponse_ServingStatus[checked.status] ?? String(checked.status),
      version: about.softwareVersion,
      models: about.models.map((m) => `${m.role}=${m.version}`).join(", ") || "-",
      uptimeS: Number(about.uptimeMs) / 1000,
    };
  } catch (err) {
    return {
      name: entry.name,
      address: entry.address,
      health: "UNREACHABLE",
      version: "-",
      models: "-",
      uptimeS: null,
      error: err instanceof AutodidactError ? err.rawMessage : String(err),
    };
  } finally {
    health.close();
    info?.close();
  }
}

/**
 * The Prometheus endpoint of a local-mesh service, from the port its ready line reported, or "-" when
 * metrics are off. The endpoint binds every interface, so loopback reaches it.
 */
export function metricsUrl(entry: Pick<MeshServiceEntry, "metricsPort">): string {
  return entry.metricsPort === null || entry.metricsPort === undefined ? "-" : `http://127.0.0.1:${entry.metricsPort}/metrics`;
}

/** What `autodidact doctor` reads and prints: the mesh's JetStream replication as the server reports it. */
export interface ReplicationReport {
  /** The server this connection reached, and its cluster (empty on a single server). */
  server: string;
  cluster: string;
  assets: AssetStatus[];
  servers: ServerState[];
  /** Why the replication is not as configured (empty when it is). */
  problems: string[];
}

/** Reads the replicas, leader and peers of every stream and bucket of the mesh; `want` is the configured replica count. */
export async function readReplication(bus: Bus, want: number): Promise<ReplicationReport> {
  const assets = await describeTopology(bus, MESH_TOPOLOGY);
  const problems: string[] = [];
  for (const a of assets) {
    const label = `${a.kind} ${a.name}`;
    if (a.error !== undefined) problems.push(`${label}: ${a.error}`);
    else {
      if ((a.replicas ?? 0) < want) problems.push(`${label} has ${a.replicas} replicas, configured ${want}`);
      if ((a.replicas ?? 1) > 1 && a.leader === undefined) problems.push(`${label} has no leader`);
      const down = a.peers.filter((p) => p.offline || !p.current).map((p) => `${p.name} ${p.offline ? "offline" : `behind by ${p.lag}`}`);
      if (down.length > 0) problems.push(`${label}: ${down.join(", ")}`);
    }
  }
  const info = bus.nc.info;
  return { server: info?.server_name ?? "?", cluster: info?.cluster ?? "", assets, servers: serversOf(assets), problems };
}

/** The tables of a {@link ReplicationReport}: one row per stream and bucket, then one per server. */
export function formatReplication(r: ReplicationReport): string {
  const peerText = (a: AssetStatus): string =>
    a.peers
      .filter((p) => !p.leader)
      .map((p) => `${p.name} ${p.offline ? "offline" : p.current ? "current" : `behind ${p.lag}`}`)
      .join(", ") || "-";
  const rows = r.assets.map((a) => [a.kind, a.name, a.stream, a.replicas ?? "?", a.leader ?? (a.error !== undefined ? "?" : "-"), a.error ?? peerText(a), a.messages]);
  const out = [
    `JetStream at ${r.server}${r.cluster !== "" ? ` (cluster ${r.cluster})` : " (single server)"}`,
    "",
    formatTable(["kind", "name", "stream", "replicas", "leader", "followers", "messages"], rows),
  ];
  if (r.servers.length > 0) {
    out.push("", formatTable(["server", "leads", "replicas", "offline", "behind"], r.servers.map((s) => [s.name, s.leads, s.replicas, s.offline, s.lagging])));
  }
  out.push("", r.problems.length === 0 ? "replication as configured" : `problems:\n${r.problems.map((p) => `  ${p}`).join("\n")}`);
  return out.join("\n");
}

const doctorOptions = defineOptions({
  natsUrl: serviceOptions.natsUrl,
  natsCreds: serviceOptions.natsCreds,
  natsNkeyFile: serviceOptions.natsNkeyFile,
  natsUser: serviceOptions.natsUser,
  natsPasswordFile: serviceOptions.natsPasswordFile,
  natsReplicas: serviceOptions.natsReplicas,
});

/**
 * `autodidact doctor`: every stream and bucket of the mesh with its replicas, current leader and
 * each follower's state, and every server's share; exit 1 when replication is not as configured
 * (fewer replicas, no leader, a follower offline or behind).
 */
export async function doctorCommand(argv: readonly string[]): Promise<number> {
  const parsed = doctorOptions.parse(argv, process.env);
  if (parsed.help) {
    process.stdout.write(
      doctorOptions.help({
        usage: "autodidact doctor [options]",
        description: "Replicas, leader and follower state of every JetStream stream and bucket of the mesh (exit 1 when not as configured).",
      }) + "\n",
    );
    return 0;
  }
  const v = parsed.values;
  const credentials = await resolveNatsCredentials(v, process.env);
  const bus = await connectBus({ servers: [...v.natsUrl], name: "autodidact-doctor", timeoutMs: 5_000, ...(credentials ? { credentials } : {}) });
  try {
    const report = await readReplication(bus, v.natsReplicas);
    process.stdout.write(formatReplication(report) + "\n");
    return report.problems.length === 0 ? 0 : 1;
  } finally {
    await bus.close();
  }
}
