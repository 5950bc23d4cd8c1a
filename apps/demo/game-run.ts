// One game demo run on a local mesh, driven through the conductor: a random-weights policy/value base
// model is imported, then round after round the generator plays itself (search-guided self-play), the
// rules critic replays every game, consensus decides, the trainer learns from the window of recent
// games, and the monitor's arena gate promotes or rejects each candidate and rates it against fixed
// opponents. The run's rows come from the conductor's round summaries and the monitor's evaluations.
import { create } from "@bufbuild/protobuf";
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../cli/local-mesh.js";
import { connectBus, type Bus } from "../../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../../src/platform/nats-auth/index.js";
import { createClient, type RpcClient } from "../../src/platform/rpc/index.js";
import { initPolicyValueParams, savePolicyValueModel } from "../../src/engine/index.js";
import { getGamePack, policyValueConfigFor } from "../../src/domain/games/index.js";
import { openMonitorRecords, type GatePolicyRecordKey } from "../../src/domain/registry/index.js";
import { ConductorService, CurriculumPolicy_Kind, RunSpecSchema, RunStatus, type RoundSummary, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, TimeoutOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { AdaptationMode } from "../../src/gen/autodidact/v1/training_pb.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { GameEvaluation, StoredEvaluation } from "../../services/monitor/index.js";
import type { GameDemoConfig } from "./game-config.js";

/** One round of a game run, as the table and the report show it. */
export interface GameRoundRow {
  readonly round: number;
  readonly candidateVersion: number;
  /** promoted, rejected, no_candidate… */
  readonly status: string;
  readonly promotedVersion: number;
  readonly reasons: readonly string[];
  /** The candidate's evaluation (Elo, anchors, arena), when the monitor stored one. */
  readonly candidate?: GameEvaluation;
  readonly proposed: number;
  readonly accepted: number;
  /** Self-play games and positions per second of the round (the PROPOSE phase, measured by the generator). */
  readonly gamesPerSecond: number;
  readonly positionsPerSecond: number;
  readonly seconds: number;
  readonly phaseSeconds: Readonly<Record<string, number>>;
  /** Wall time since the run started, at the end of this round. */
  readonly elapsed: number;
}

/** What a game demo run produced. */
export interface GameRunResult {
  readonly runId: string;
  readonly status: string;
  readonly message: string;
  /** The base model's evaluation (round 0: random weights with search). */
  readonly base?: GameEvaluation;
  readonly rows: readonly GameRoundRow[];
  readonly wallSeconds: number;
  readonly dashboardUrl?: string;
}

/** Options of {@link runGameDemo}. */
export interface RunGameDemoOptions {
  readonly config: GameDemoConfig;
  readonly stateDir: string;
  readonly natsUrl?: string;
  /** Called with each finished round (the live table). */
  readonly onRound?: (row: GameRoundRow) => void;
  readonly onLine?: (line: string) => void;
  readonly signal?: AbortSignal;
}

const LINEAGE = "main";

/** The mesh of a game run: one generator, the rules critic, consensus (added by the mesh), one trainer, the monitor, the conductor. */
export function gameMembers(c: GameDemoConfig, dashboard: boolean): MeshMember[] {
  const quiet = ["--log-level", "info"];
  return [
    { name: "generator", kind: "generator", args: ["--task", c.task, "--lineage", LINEAGE, "--simulations", String(c.simulations), "--game-concurrency", String(c.concurrency), "--temperature-moves", String(c.temperatureMoves), ...quiet] },
    { name: "critic-rules", kind: "critic", args: ["--task", c.task, "--kind", "rules", "--critic-id", "rules", ...quiet] },
    { name: "trainer", kind: "trainer", args: ["--task", c.task, "--lineages", LINEAGE, "--mode", "full", "--game-window", String(c.windowGames), "--train-threads", "1", ...quiet] },
    {
      name: "monitor",
      kind: "monitor",
      args: [
        "--task", c.task,
        "--arena-rule", c.arenaRule,
        "--arena-games", String(c.arenaGames),
        "--arena-threshold", String(c.arenaThreshold),
        "--arena-simulations", String(c.arenaSimulations),
        "--elo-games", String(c.eloGames),
        "--elo-simulations", String(c.eloSimulations),
        "--anchor-depths", c.anchorDepths.join(","),
        "--calibration-games", String(c.calibrationGames),
        "--dashboard-port", dashboard ? "0" : "-1",
        ...quiet,
      ],
    },
    { name: "conductor", kind: "conductor", args: ["--poll-interval", "100ms", "--progress-every", "1s", "--retry-delay", "500ms", ...quiet] },
  ];
}

/** The run spec of a game run: no difficulty curriculum (fixed at 1), the rules critic alone decides, full training. */
export function gameRunSpec(c: GameDemoConfig, name: string, baseModel: string): RunSpec {
  return create(RunSpecSchema, {
    name,
    task: c.task,
    lineages: [{ name: LINEAGE, baseModel }],
    curriculum: { kind: CurriculumPolicy_Kind.FIXED_STEP, start: 1, max: 1 },
    proposalsPerRound: c.gamesPerRound,
    stop: { maxRounds: c.rounds },
    critics: [{ id: "rules", kind: "rules" }],
    consensus: { kind: ConsensusKind.K_OF_N, critics: ["rules"], k: 1, timeoutMs: 120_000n, onTimeout: TimeoutOutcome.REJECT },
    training: {
      mode: AdaptationMode.FULL,
      steps: BigInt(c.steps),
      batchSize: c.batchSize,
      learningRate: c.lr,
      weightDecay: c.weightDecay,
      maxGradNorm: c.maxGradNorm,
      seed: String(c.seed),
    },
    // The labelled-task gate does not apply to games (the monitor's arena gate decides); it must auto-promote.
    gate: { minAccuracyDelta: -1, maxDifficultyRegression: 1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 1, minDiversityRatio: 0, minTailCoverage: 0, maxDriftKl: 1e9, autoPromote: true },
    labels: { test: { min: 1, max: 1 } },
    seed: BigInt(c.seed),
    decisionTimeoutSeconds: 600,
  });
}

/** Writes the random-weights base model of the run into the conductor's models directory. */
async function writeBase(c: GameDemoConfig, modelsDir: string): Promise<string> {
  const pack = getGamePack(c.task);
  const config = policyValueConfigFor(pack.game, c.network ?? pack.network);
  const name = `${c.task}-base-${c.seed}`;
  await savePolicyValueModel(join(modelsDir, name), { config, params: initPolicyValueParams(config, c.seed), extra: { game: pack.game.name }, metadata: { name } });
  return name;
}

const terminal = new Set([RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED]);

/** Runs one game demo: mesh up, the run created and followed round by round, the mesh down. */
export async function runGameDemo(o: RunGameDemoOptions): Promise<GameRunResult> {
  const c = o.config;
  const started = Date.now();
  const line = o.onLine ?? (() => undefined);
  let mesh: LocalMesh | undefined;
  let bus: Bus | undefined;
  const clients: { close(): void }[] = [];
  try {
    const modelsDir = join(o.stateDir, "models");
    await mkdir(modelsDir, { recursive: true });
    const base = await writeBase(c, modelsDir);
    line(`starting the mesh: nats-server, generator (${c.simulations} simulations), rules critic, consensus, trainer, monitor (arena ${c.arenaRule}), conductor`);
    mesh = await startLocalMesh({
      stateDir: o.stateDir,
      ...(o.natsUrl !== undefined ? { natsUrl: o.natsUrl, auth: false } : { auth: true }),
      members: gameMembers(c, c.minutes > 0),
      modelsDir,
      readyTimeoutMs: 900_000, // seven processes starting on a loaded machine can take minutes
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const adminSeed = mesh.secrets?.seedFileOf("admin");
    bus = await connectBus({
      servers: mesh.natsUrl,
      name: "autodidact-game-demo",
      ...(adminSeed !== undefined ? { credentials: (await resolveNatsCredentials({ natsNkeyFile: adminSeed }))! } : {}),
    });
    const records = openMonitorRecords<StoredEvaluation, GatePolicyRecordKey>(bus);
    const conductor: RpcClient<typeof ConductorService> = createClient(ConductorService, mesh.address("conductor"), { deadlineMs: Infinity });
    const generator: RpcClient<typeof GeneratorService> = createClient(GeneratorService, mesh.address("generator"), { deadlineMs: 30_000 });
    clients.push(conductor, generator);
    const runId = `${c.task}-${c.arenaRule === "none" ? "nogate" : "gate"}-${c.seed}-${Date.now().toString(36)}`;
    const run = await conductor.createRun({ spec: gameRunSpec(c, runId, base) });
    line(`run ${run.id}: ${c.rounds} rounds of ${c.gamesPerRound} games${c.minutes > 0 ? ` within ${c.minutes} minutes` : ""}`);
    const selfPlay = async (): Promise<{ positions: number; seconds: number; games: number }> => {
      const a = (await generator.getInfo({})).attributes;
      return { positions: Number(a["selfPlayPositions"] ?? 0), seconds: Number(a["selfPlaySeconds"] ?? 0), games: Number(a["selfPlayGames"] ?? 0) };
    };
    const rows: GameRoundRow[] = [];
    let before = await selfPlay();
    let cancelled = false;
    let final = run;
    let baseEval: GameEvaluation | undefined;
    for await (const ev of conductor.watchRun({ id: run.id })) {
      if (ev.event.case === "status") {
        final = ev.event.value;
        if (terminal.has(final.status)) break;
        continue;
      }
      if (ev.event.case !== "roundDone") continue;
      baseEval ??= (await records.getEvaluation(LINEAGE, 1))?.game;
      const s: RoundSummary = ev.event.value;
      const l = s.lineages[0];
      const after = await selfPlay();
      const sp = { positions: after.positions - before.positions, seconds: after.seconds - before.seconds, games: after.games - before.games };
      before = after;
      const candidate = l && l.candidateVersion > 0n ? (await records.getEvaluation(LINEAGE, Number(l.candidateVersion)))?.game : undefined;
      const row: GameRoundRow = {
        round: s.round,
        candidateVersion: Number(l?.candidateVersion ?? 0n),
        status: l?.status ?? "",
        promotedVersion: Number(l?.promotedVersion ?? 0n),
        reasons: [...(l?.reasons ?? [])],
        ...(candidate ? { candidate } : {}),
        proposed: Number(s.proposed),
        accepted: Number(s.accepted),
        gamesPerSecond: sp.seconds > 0 ? sp.games / sp.seconds : 0,
        positionsPerSecond: sp.seconds > 0 ? sp.positions / sp.seconds : 0,
        seconds: s.seconds,
        phaseSeconds: { ...s.phaseSeconds },
        elapsed: (Date.now() - started) / 1000,
      };
      rows.push(row);
      o.onRound?.(row);
      // A time budget: stop before a round that would end after it (the run is cancelled between phases).
      const perRound = rows.reduce((a, r) => a + r.seconds, 0) / rows.length;
      if (!cancelled && c.minutes > 0 && (Date.now() - started) / 1000 + perRound > c.minutes * 60) {
        cancelled = true;
        line(`time budget of ${c.minutes} minutes: cancelling the run after round ${s.round}`);
        await conductor.cancelRun({ id: run.id });
      }
    }
    if (final.status === RunStatus.FAILED) throw new AutodidactError(`run ${run.id} failed: ${final.message}`, Code.Aborted);
    return {
      runId: run.id,
      status: RunStatus[final.status] ?? String(final.status),
      message: final.message,
      ...(baseEval ? { base: baseEval } : {}),
      rows,
      wallSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const cl of clients) cl.close();
    await bus?.close().catch(() => undefined);
    await mesh?.stop();
  }
}
