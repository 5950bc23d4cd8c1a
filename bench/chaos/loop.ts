// The chaos run's loop: a conductor member drives one run (round after round: propose, judge, train,
// gate) while the schedule kills services, the conductor among them. After the chaos the run is
// cancelled (it ends after its current phase) and its rounds are checked against what the registry,
// the trainer's journal and the samples stream hold: every round exactly once per lineage.
import { create, toJsonString } from "@bufbuild/protobuf";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CurriculumPolicy_Kind, RunSpecSchema, RunStatus, type Run, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, TimeoutOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";
import type { Registry } from "../../src/domain/registry/index.js";

/** The run the chaos mesh's conductor drives. */
export const CHAOS_RUN = "chaos";
const BASE_MODEL = fileURLToPath(new URL("../../models/addition-base/lineage-1", import.meta.url));

/** Copies the project's small base model into the conductor's models dir and writes the run spec; returns the spec's path. */
export async function prepareChaosRun(stateDir: string, modelsDir: string, o: { lineage: string; task: string; proposals: number; trainSteps: number; critics: readonly string[]; verifier: string }): Promise<string> {
  await mkdir(modelsDir, { recursive: true });
  await cp(BASE_MODEL, join(modelsDir, "addition-base-1"), { recursive: true });
  const spec: RunSpec = create(RunSpecSchema, {
    name: CHAOS_RUN,
    task: o.task,
    lineages: [{ name: o.lineage, baseModel: "addition-base-1" }],
    curriculum: { kind: CurriculumPolicy_Kind.ACCEPTANCE, start: 2, max: 4, minAcceptedShare: 0.5 },
    proposalsPerRound: o.proposals,
    stop: { maxRounds: 100_000 },
    // The chaos mesh's critics: rules, a verifier (trusted on purpose: it makes decisions checkable), rules.
    critics: o.critics.map((id) => ({ id, kind: id === o.verifier ? "verifier" : "rules", trustedVerifier: id === o.verifier })),
    consensus: { kind: ConsensusKind.K_OF_N, critics: [...o.critics], k: 2, timeoutMs: 20_000n, onTimeout: TimeoutOutcome.REJECT },
    training: { steps: BigInt(o.trainSteps), batchSize: 8, maxReuse: 1000 },
    // Small held-out sets: the chaos run checks the loop's invariants, not accuracy, and each gate must fit between kills.
    labels: { anchor: { min: 1, max: 6 }, validation: { min: 1, max: 3 }, test: { min: 1, max: 8 }, validationSize: 16, testSize: 16 },
    seed: 1n,
    decisionTimeoutSeconds: 180,
  });
  const path = join(stateDir, "run.json");
  await writeFile(path, toJsonString(RunSpecSchema, spec));
  return path;
}

/** Whether a run has ended (nothing will drive it any more). */
export const runEnded = (run: Run): boolean => run.status === RunStatus.SUCCEEDED || run.status === RunStatus.CANCELLED || run.status === RunStatus.FAILED;

/** What the rounds check found. */
export interface RoundCheck {
  readonly roundsDone: number;
  /** Every round once per lineage: one candidate each (when it trained), one journal round, each proposal stored once. */
  readonly ok: boolean;
  readonly problems: readonly string[];
}

interface JournalLine {
  kind: string;
  plan?: { round: number; lineages: string[] };
}

/**
 * Checks that every round of the run happened exactly once per lineage: the run's rounds are
 * consecutive and unique; per finished round, the registry holds one candidate per lineage that
 * trained (the summary's version) and none for one that did not; no lineage has two checkpoints of one
 * round; the trainer journaled each (round, lineage) at most once (once when it trained); every
 * proposal of a finished round is stored exactly once under its deterministic id.
 */
export async function checkRounds(run: Run, registry: Registry, trainerDir: string, storedSamples: ReadonlyMap<string, number>): Promise<RoundCheck> {
  const problems: string[] = [];
  const rounds = run.rounds.map((r) => r.round);
  if (rounds.some((r, i) => r !== run.firstRound + i)) problems.push(`rounds ${rounds.join(",")} are not consecutive from ${run.firstRound}`);
  const text = await readFile(join(trainerDir, "rounds.jsonl"), "utf8").catch(() => "");
  const starts = new Map<string, number>();
  for (const line of text.split("\n")) {
    let e: JournalLine;
    try {
      e = JSON.parse(line) as JournalLine;
    } catch {
      continue;
    }
    if (e.kind === "start" && e.plan !== undefined) for (const l of e.plan.lineages) starts.set(`${e.plan.round}/${l}`, (starts.get(`${e.plan.round}/${l}`) ?? 0) + 1);
  }
  for (const [key, n] of starts) if (n > 1) problems.push(`round ${key} journaled ${n} times`);
  for (const lineage of run.spec?.lineages.map((l) => l.name) ?? []) {
    const records = await registry.listCheckpoints(lineage);
    const byRound = new Map<number, number[]>();
    for (const r of records) if (r.parentVersion > 0) byRound.set(r.round, [...(byRound.get(r.round) ?? []), r.version]);
    for (const [round, versions] of byRound) if (versions.length > 1) problems.push(`${lineage} has ${versions.length} candidates of round ${round}: ${versions.join(", ")}`);
    for (const s of run.rounds) {
      const want = s.lineages.find((l) => l.lineage === lineage)?.candidateVersion ?? 0n;
      const have = byRound.get(s.round) ?? [];
      if (want > 0n ? have.length !== 1 || BigInt(have[0]!) !== want : have.length !== 0) problems.push(`${lineage} round ${s.round}: candidates ${have.join(",") || "none"}, the run recorded ${want}`);
      if (want > 0n && starts.get(`${s.round}/${lineage}`) !== 1) problems.push(`${lineage} round ${s.round} trained but journaled ${starts.get(`${s.round}/${lineage}`) ?? 0} times`);
    }
  }
  for (const s of run.rounds) {
    const prefix = `${run.id}-r${s.round}-`;
    const ids = [...storedSamples.keys()].filter((id) => id.startsWith(prefix));
    const twice = ids.filter((id) => storedSamples.get(id)! > 1);
    if (ids.length !== Number(s.proposed) || twice.length > 0) problems.push(`round ${s.round}: ${ids.length} proposals stored (${twice.length} twice), ${s.proposed} proposed`);
  }
  return { roundsDone: run.rounds.length, ok: problems.length === 0, problems };
}
