import type { DescService } from "@bufbuild/protobuf";
import { ConductorService } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { CriticService } from "../../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { TrainerService } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { AutodidactError } from "../../src/platform/errors/index.js";
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
