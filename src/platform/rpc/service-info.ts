import { create, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { readFileSync } from "node:fs";
import { ServedModelSchema, ServiceInfoSchema, TaskIdentitySchema, type ServiceInfo } from "../../gen/autodidact/v1/common_pb.js";

/** What a service tells {@link createInfoHandler} about itself. */
export interface InfoSource {
  /** Unique per process (critics use it as their critic id). */
  instanceId: string;
  /** Software version; default: the package.json version. */
  softwareVersion?: string;
  /** Models served right now; called on every GetInfo so swaps show at once. */
  models?: () => ReadonlyArray<MessageInitShape<typeof ServedModelSchema>>;
  /** Task packs handled. */
  tasks?: readonly string[];
  /** Identity (name, version, module, digest) of each handled task pack, so a conductor can check every service runs the same task code. */
  taskIdentities?: ReadonlyArray<MessageInitShape<typeof TaskIdentitySchema>>;
  /** Extra facts (host, execution provider...). */
  attributes?: Readonly<Record<string, string>>;
}

let packageVersion: string | undefined;

/** The package.json version, read once; "unknown" if it cannot be read. */
export function softwareVersion(): string {
  if (packageVersion === undefined) {
    try {
      const raw = readFileSync(new URL("../../../package.json", import.meta.url), "utf8");
      const version: unknown = (JSON.parse(raw) as { version?: unknown }).version;
      packageVersion = typeof version === "string" ? version : "unknown";
    } catch {
      packageVersion = "unknown";
    }
  }
  return packageVersion;
}

/**
 * Builds the GetInfo handler every service must serve, so each one reports name, instance,
 * version, models and uptime the same way. The clock starts when the handler is created.
 */
export function createInfoHandler(service: DescService, source: InfoSource): () => ServiceInfo {
  const started = new Date();
  return () =>
    create(ServiceInfoSchema, {
      serviceName: service.typeName,
      instanceId: source.instanceId,
      softwareVersion: source.softwareVersion ?? softwareVersion(),
      models: (source.models?.() ?? []).map((m) => create(ServedModelSchema, m)),
      uptimeMs: BigInt(Math.max(0, Date.now() - started.getTime())),
      startedAt: timestampFromDate(started),
      tasks: [...(source.tasks ?? [])],
      taskIdentities: (source.taskIdentities ?? []).map((t) => create(TaskIdentitySchema, t)),
      attributes: { ...source.attributes },
    });
}
