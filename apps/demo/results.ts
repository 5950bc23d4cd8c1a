// What the demo reports about a round, read back from what the services recorded: the monitor's
// evaluations of the lineages' checkpoints (test split), its verifier-judged round statistics (accepted
// vs proposed label accuracy), the candidates' loss curves from the registry. Reporting only: nothing
// here feeds back into the run (the conductor decides from label-free facts).
import { create } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { RpcClient } from "../../src/platform/rpc/index.js";
import type { Registry } from "../../src/domain/registry/index.js";
import type { RoundSummary, LineageRound as ConductorLineageRound } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { GetEvaluationResponseSchema, type GetEvaluationResponse, type MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { frontierOf } from "../experiment/index.js";
import type { DemoRound, DemoRun, LineageRound } from "../report/types.js";

type Accuracy = DemoRun["base"]["accuracyByLength"];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Per-length accuracy on the test split of a stored evaluation (the results; the top-level metrics are the gate's validation split). */
export function testAccuracyOf(e: GetEvaluationResponse): Accuracy {
  const test = e.evaluation?.splits.find((s) => s.split === "test");
  if (test === undefined) throw new AutodidactError(`the monitor's evaluation of ${e.evaluation?.lineage}@${e.evaluation?.version} has no test split`, Code.FailedPrecondition);
  return test.perDifficulty.map((d) => ({ length: d.difficulty, accuracy: d.accuracy })).sort((a, b) => a.length - b.length);
}

/** Settings of the reader. */
export interface ResultSettings {
  readonly task: string;
  readonly threshold: number;
  readonly from: number;
  readonly data: "accumulate" | "replace";
}

/** Reads a run's results from the monitor and the registry, round by round. */
export class RoundResults {
  readonly #monitor: RpcClient<typeof MonitorService>;
  readonly #registry: Registry;
  readonly #s: ResultSettings;
  readonly #signal: AbortSignal | undefined;
  #pool = 0;

  constructor(monitor: RpcClient<typeof MonitorService>, registry: Registry, settings: ResultSettings, signal?: AbortSignal) {
    this.#monitor = monitor;
    this.#registry = registry;
    this.#s = settings;
    this.#signal = signal;
  }

  /** The test frontier of per-length accuracies. */
  frontier(acc: Accuracy): number {
    return frontierOf(acc, this.#s.threshold, this.#s.from);
  }

  /** Test accuracy per length of a checkpoint: its stored evaluation, else a fresh one. */
  async accuracy(lineage: string, version: bigint): Promise<Accuracy> {
    try {
      return testAccuracyOf(await this.#monitor.getEvaluation({ lineage, version }));
    } catch (err) {
      if (!(err instanceof AutodidactError && err.code === Code.NotFound)) throw err;
    }
    return testAccuracyOf(create(GetEvaluationResponseSchema, { evaluation: await this.#monitor.evaluate({ lineage, version }) }));
  }

  /** The monitor's round statistics once it has counted every decided proposal of the round. */
  async #stats(round: number, decided: number): Promise<{ proposed: number; accepted: number; correctProposed: number; correctAccepted: number }> {
    const end = Date.now() + 60_000;
    for (;;) {
      const e = await this.#monitor.getRoundStats({ task: this.#s.task, round });
      const view = { proposed: Number(e.proposed), accepted: Number(e.accepted), correctProposed: Number(e.correctProposed), correctAccepted: Number(e.correctAccepted) };
      if (view.proposed >= decided || Date.now() > end || this.#signal?.aborted) return view;
      await sleep(250);
    }
  }

  /** One lineage's outcome: its candidate's test accuracy and loss curve, or its parent kept. */
  async #lineage(l: ConductorLineageRound): Promise<LineageRound> {
    const status = l.status === "promoted" || l.status === "rejected" || l.status === "rolled_back" ? l.status : "no_candidate";
    const evaluated = l.candidateVersion > 0n ? l.candidateVersion : l.promotedVersion;
    const accuracy = evaluated > 0n ? await this.accuracy(l.lineage, evaluated) : [];
    const record = l.candidateVersion > 0n ? await this.#registry.getCheckpoint(l.lineage, Number(l.candidateVersion)) : undefined;
    const loss = ((record?.manifest["lossCurve"] ?? []) as { step: number; loss: number }[]).map((c) => [c.step, c.loss] as const);
    return {
      lineage: l.lineage,
      candidateVersion: Number(l.candidateVersion),
      promotedVersion: Number(l.promotedVersion),
      status,
      reasons: [...l.reasons],
      accuracyByLength: accuracy,
      frontier: this.frontier(accuracy),
      loss,
    };
  }

  /** A finished round as the report holds it: the conductor's summary plus the monitor's measurements. */
  async round(s: RoundSummary): Promise<DemoRound> {
    const stats = await this.#stats(s.round, Number(s.decided));
    const lineages = await Promise.all(s.lineages.map((l) => this.#lineage(l)));
    const gen = s.lineages[0]!;
    const accuracy = await this.accuracy(gen.lineage, gen.promotedVersion);
    this.#pool = this.#s.data === "accumulate" ? this.#pool + Number(s.accepted) : Number(s.accepted);
    const ph = s.phaseSeconds;
    return {
      round: s.round,
      labelLength: s.difficulty,
      proposed: Number(s.proposed),
      accepted: Number(s.accepted),
      acceptedLabelAccuracy: stats.accepted > 0 ? stats.correctAccepted / stats.accepted : null,
      proposedLabelAccuracy: stats.proposed > 0 ? stats.correctProposed / stats.proposed : null,
      poolSize: this.#pool,
      accuracyByLength: accuracy,
      frontier: this.frontier(accuracy),
      status: lineages[0]!.status,
      lineages,
      seconds: s.seconds,
      phaseSeconds: {
        serve: ph["serve"] ?? 0,
        propose: ph["propose"] ?? 0,
        judge: ph["judge"] ?? 0,
        train: ph["train"] ?? 0,
        gate: ph["gate"] ?? 0,
        probe: ph["probe"] ?? 0,
      },
      probes: s.probes.map((p) => ({ length: p.difficulty, agreement: p.agreement })),
    };
  }
}
