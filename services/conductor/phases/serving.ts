// Whether generator and model critics serve the promoted versions of their lineages (their GetInfo),
// which SERVE waits for before proposing and PROBE before measuring agreement.
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import type { Run } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import type { ServiceInfo } from "../../../src/gen/autodidact/v1/common_pb.js";
import type { ConductorServices } from "./phase.js";
import { waitUntil } from "./wait.js";
import { checkTaskIdentity } from "../task-module.js";

/** The model critics of a run: critic id → the lineage it serves. */
export function modelCritics(run: Run): Map<string, string> {
  return new Map((run.spec?.critics ?? []).filter((c) => c.kind === "model").map((c) => [c.id, c.lineage]));
}

/** The promoted version of every lineage of the run (FailedPrecondition when one has none). */
export async function promotedVersions(services: ConductorServices, run: Run): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const l of run.spec?.lineages ?? []) {
    const p = await services.registry.getPromoted(l.name);
    if (p === undefined) throw new AutodidactError(`lineage ${l.name} has no promoted checkpoint`, Code.FailedPrecondition);
    out.set(l.name, p.version);
  }
  return out;
}

const serves = (info: ServiceInfo, lineage: string, version: number): boolean =>
  info.models.some((m) => m.lineage === lineage && Number(m.checkpointVersion) === version);

/**
 * Waits until the generator serves the generator lineage's promoted version and every model critic
 * its lineage's; returns the promoted versions it waited for.
 */
export async function waitForServing(services: ConductorServices, run: Run, signal: AbortSignal): Promise<Map<string, number>> {
  const want = await promotedVersions(services, run);
  const generatorLineage = run.spec!.lineages[0]!.name;
  const critics = modelCritics(run);
  await waitUntil(
    async () => {
      const info = await services.peers.generator().getInfo({}, { deadlineMs: 10_000 }).catch(() => undefined);
      if (info === undefined) return undefined;
      checkTaskIdentity(run.taskIdentity, info, "the generator");
      if (!serves(info, generatorLineage, want.get(generatorLineage)!)) return undefined;
      for (const [id, lineage] of critics) {
        const c = await services.peers.critic(id).getInfo({}, { deadlineMs: 10_000 }).catch(() => undefined);
        if (c === undefined) return undefined;
        checkTaskIdentity(run.taskIdentity, c, `critic ${id}`);
        if (!serves(c, lineage, want.get(lineage)!)) return undefined;
      }
      return true;
    },
    { timeoutMs: services.settings.serveTimeoutMs, pollMs: services.settings.pollMs, signal, what: "the generator and the model critics to serve the promoted models" },
  );
  return want;
}
