// Helpers of the conductor tests: a small local mesh around a conductor (tiny models, one trainer for
// two lineages, a model critic, an accept-all critic), a run spec for it, and readers of what the
// mesh recorded (trainer journal, streams) for the end-of-run checks.
import { create, fromBinary } from "@bufbuild/protobuf";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { MeshMember } from "../apps/cli/local-mesh.js";
import type { Bus } from "../src/platform/bus/index.js";
import { CurriculumPolicy_Kind, RunSpecSchema, type RunSpec } from "../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, DecisionSchema, TimeoutOutcome, type Decision } from "../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";
import { Streams } from "../src/domain/topology/index.js";
import { readStream } from "../bench/chaos/streams.js";

/** The lineages of the test runs: one generates, one judges as a model critic. */
export const LINEAGES = ["gen", "crit"] as const;

/** Saves a tiny decoder per lineage under `<modelsDir>/tiny-<lineage>` (the run spec's base models). */
export async function saveTinyBases(modelsDir: string): Promise<void> {
  for (const [i, l] of LINEAGES.entries()) await saveTinyDecoder(join(modelsDir, `tiny-${l}`), 11 + i);
}

/** Knobs of {@link conductorMembers}. */
export interface ConductorMeshOptions {
  readonly stateDir: string;
  /** Optimizer steps of a training round (the trainer's default; the run spec leaves it unset). */
  readonly trainSteps: number;
  readonly leaseTtl?: string;
}

/**
 * The members: generator of `gen`, a model critic of `crit`, an accept-all critic, consensus, one
 * trainer for both lineages (so one round trains two lineages one after the other: two rounds of one
 * number in its journal), monitor (tiny evaluation), and the conductor with short timings.
 */
export function conductorMembers(o: ConductorMeshOptions): MeshMember[] {
  const quiet = ["--log-level", "warn"];
  return [
    { name: "generator", kind: "generator", args: ["--lineage", "gen", "--batch-size", "4", ...quiet] },
    { name: "critic-model", kind: "critic", args: ["--kind", "model", "--critic-id", "model-crit", "--lineage", "crit", "--follow-promoted", "--ack-wait", "5s", ...quiet] },
    { name: "critic-accept", kind: "critic", args: ["--kind", "accept-all", "--critic-id", "accept", "--ack-wait", "5s", ...quiet] },
    { name: "consensus", kind: "consensus", args: quiet },
    {
      name: "trainer",
      kind: "trainer",
      args: ["--lineages", "gen,crit", "--steps", String(o.trainSteps), "--batch-size", "4", "--max-reuse", "1000", "--train-threads", "1", "--data-dir", join(o.stateDir, "trainer"), ...quiet],
    },
    { name: "monitor", kind: "monitor", args: ["--eval-limit", "2", "--eval-min-difficulty", "1", "--eval-max-difficulty", "3", "--eval-samples", "2", "--dashboard-port", "-1", ...quiet] },
    {
      name: "conductor",
      kind: "conductor",
      args: ["--lease-ttl", o.leaseTtl ?? "3s", "--poll-interval", "100ms", "--retry-delay", "300ms", "--progress-every", "300ms", "--log-level", "info"],
    },
  ];
}

/**
 * A run for the mesh above: `rounds` rounds of `proposals` proposals from difficulty 1, the AGREEMENT
 * curriculum (the model critic's agreement with the generator on `probeSize` unlabelled problems). Its
 * consensus waits `decisionMs` for a critic that never votes, then decides with the votes it has (the
 * accept-all critic's): every sample accepted, each decision `decisionMs` after its first vote, so the
 * JUDGE phase lasts that long.
 */
export function tinyRunSpec(o: { name: string; rounds: number; proposals: number; decisionMs: number; probeSize?: number }): RunSpec {
  return create(RunSpecSchema, {
    name: o.name,
    task: "addition",
    lineages: LINEAGES.map((l) => ({ name: l, baseModel: `tiny-${l}` })),
    curriculum: { kind: CurriculumPolicy_Kind.AGREEMENT, start: 1, max: 3, minAgreement: 0.85, probeSize: o.probeSize ?? 4 },
    proposalsPerRound: o.proposals,
    stop: { maxRounds: o.rounds },
    critics: [
      { id: "model-crit", kind: "model", lineage: "crit" },
      { id: "accept", kind: "accept-all" },
      { id: "absent", kind: "rules" },
    ],
    consensus: { kind: ConsensusKind.UNANIMOUS, critics: ["accept", "absent"], timeoutMs: BigInt(o.decisionMs), onTimeout: TimeoutOutcome.ACCEPT },
    // Tiny random models: the gate must let candidates through on anything but broken files.
    gate: { minAccuracyDelta: -1, maxDifficultyRegression: 1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 1, minDiversityRatio: 0, minTailCoverage: 0, maxDriftKl: 1e9, autoPromote: true },
    labels: { anchor: { min: 1, max: 2 }, validation: { min: 1, max: 2 }, test: { min: 1, max: 3 } },
    seed: 5n,
    decisionTimeoutSeconds: 120,
  });
}

/** One line of a trainer's round journal, as the checks read it. */
export interface JournalLine {
  kind: string;
  round?: number;
  lineage?: string;
  plan?: { round: number; lineages: string[] };
}

/** The trainer's round journal (torn lines skipped). */
export async function readJournal(trainerDir: string): Promise<JournalLine[]> {
  const text = await readFile(join(trainerDir, "rounds.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalLine];
      } catch {
        return [];
      }
    });
}

/** Journal starts per `<round>/<lineage>`. */
export function startsPerRoundLineage(lines: readonly JournalLine[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of lines) if (e.kind === "start" && e.plan !== undefined) for (const l of e.plan.lineages) out.set(`${e.plan.round}/${l}`, (out.get(`${e.plan.round}/${l}`) ?? 0) + 1);
  return out;
}

/** Every stored sample id (with how often it is stored) and every stored decision by sample id. */
export async function storedSamplesAndDecisions(bus: Bus): Promise<{ samples: Map<string, number>; decisions: Map<string, Decision[]> }> {
  const samples = new Map<string, number>();
  for (const m of await readStream(bus, Streams.Samples)) {
    const s = fromBinary(SampleSchema, m.data);
    samples.set(s.id, (samples.get(s.id) ?? 0) + 1);
  }
  const decisions = new Map<string, Decision[]>();
  for (const m of await readStream(bus, Streams.Decisions)) {
    const d = fromBinary(DecisionSchema, m.data);
    decisions.set(d.sampleId, [...(decisions.get(d.sampleId) ?? []), d]);
  }
  return { samples, decisions };
}
