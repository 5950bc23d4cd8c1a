// GATE: the monitor gates every candidate on its own (candidate event → evaluate → promote or
// reject). The conductor waits for each candidate's status to leave `candidate` in the registry and
// records the outcome with the gate's reasons (the monitor's GetEvaluation) — it never judges itself.
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { RoundPhase, type LineageRound } from "../../../src/gen/autodidact/v1/conductor_pb.js";
import type { ConductorServices, Phase, PhaseInput, PhaseOutcome } from "./phase.js";
import { waitUntil } from "./wait.js";

/** The gate's reasons for a checkpoint (its stored evaluation), else the registry's status reason. */
async function reasonsOf(services: ConductorServices, lineage: string, version: bigint, fallback: string): Promise<string[]> {
  try {
    const e = await services.peers.monitor().getEvaluation({ lineage, version }, { deadlineMs: 30_000 });
    if (e.gate !== undefined && e.gate.reasons.length > 0) return [...e.gate.reasons];
  } catch (err) {
    if (!(err instanceof AutodidactError && err.code === Code.NotFound)) throw err;
  }
  return fallback === "" ? [] : [fallback];
}

/** GATE: wait for the monitor's verdict on each candidate. */
export class GatePhase implements Phase {
  readonly phase = RoundPhase.GATE;
  readonly key = "gate";

  async run({ run, services, signal, progress }: PhaseInput): Promise<PhaseOutcome> {
    const lineages = run.current!.lineages;
    const judged: LineageRound[] = [];
    for (const l of lineages) {
      const promoted = async (): Promise<bigint> => BigInt((await services.registry.getPromoted(l.lineage))?.version ?? 0);
      if (l.candidateVersion === 0n) {
        judged.push({ ...l, status: l.status || "no_candidate", promotedVersion: await promoted() });
        continue;
      }
      const record = await waitUntil(
        async () => {
          const rec = await services.registry.getCheckpoint(l.lineage, Number(l.candidateVersion));
          return rec !== undefined && rec.status !== "candidate" ? rec : undefined;
        },
        { timeoutMs: services.settings.gateTimeoutMs, pollMs: services.settings.pollMs, signal, what: `the monitor's gate on ${l.lineage}@${l.candidateVersion}` },
      );
      const status = record.status === "promoted" || record.status === "rolled_back" ? record.status : "rejected";
      judged.push({ ...l, status, reasons: await reasonsOf(services, l.lineage, l.candidateVersion, record.statusReason), promotedVersion: await promoted() });
      await progress(judged.length, lineages.length, `${l.lineage}@${l.candidateVersion} ${status}`);
    }
    return {
      apply(r) {
        r.current!.lineages = judged;
        r.phase = RoundPhase.PROBE;
      },
    };
  }
}
