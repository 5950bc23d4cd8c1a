import { create, fromBinary } from "@bufbuild/protobuf";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { consume, type ConsumerHandle } from "../../src/platform/bus/index.js";
import { Durables, MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { openPolicyStore, policyFromProto, policyToProto, policyToSpec } from "../../src/domain/consensus/index.js";
import { createModelWorker, type ModelWorker } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { CheckpointRefSchema } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import { ConsensusPolicySchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import type { ServiceSpec } from "../../src/platform/host/index.js";
import { createRegistry } from "../../src/domain/registry/index.js";
import { createInfoHandler, implement } from "../../src/platform/rpc/index.js";
import { getTaskPack, startTaskModules, taskIdentities } from "../../src/domain/tasks/index.js";
import { startDashboard, type DashboardServer } from "./dashboard/index.js";
import { fromGatingPolicy, refWithEvaluation, toEvaluation, toGateResult, toGatingPolicy, toLineageEntry, toRoundStats } from "./convert.js";
import { createMonitor, type Monitor } from "./monitor.js";
import { isGameTask } from "../../src/domain/games/index.js";
import { startArena } from "./arena/start-arena.js";
import { followRoundStats, readRoundStat, readRoundStats, roundRates } from "./round-stats.js";

/** Flags of the monitor service beyond the ones every service takes. */
export const monitorOptions = {
  task: { type: "list", help: "task packs this instance handles (the first one evaluates checkpoints whose manifest names none)", env: "AUTODIDACT_TASKS", default: ["addition"] },
  lineage: { type: "string", help: "checkpoint lineage it gates by default", env: "AUTODIDACT_LINEAGE", default: "main" },
  cacheDir: { type: "string", help: "where registry checkpoints are downloaded", env: "AUTODIDACT_CACHE_DIR" },
  evalLimit: { type: "int", help: "held-out problems per difficulty and split evaluated for each checkpoint when the gating policy sets no size (0 = the whole split)", env: "AUTODIDACT_EVAL_LIMIT", default: 32, min: 0 },
  evalSamples: { type: "int", help: "temperature-1 answers sampled per difficulty for diversity and drift (0 = one per evaluated problem)", env: "AUTODIDACT_EVAL_SAMPLES", default: 0, min: 0 },
  evalMinDifficulty: { type: "int", help: "lowest difficulty evaluated when the gating policy sets no range", env: "AUTODIDACT_EVAL_MIN_DIFFICULTY", default: 1, min: 1 },
  evalMaxDifficulty: { type: "int", help: "highest difficulty evaluated when the gating policy sets no range (0 = the task's maximum)", env: "AUTODIDACT_EVAL_MAX_DIFFICULTY", default: 8, min: 0 },
  dashboardPort: { type: "int", help: "HTTP port of the dashboard (0 = ephemeral, -1 = off)", env: "AUTODIDACT_DASHBOARD_PORT", default: 0, min: -1, max: 65535 },
  dashboardHost: { type: "string", help: "interface the dashboard binds", env: "AUTODIDACT_DASHBOARD_HOST", default: "127.0.0.1" },
  roundStats: { type: "bool", help: "measure acceptance, label accuracy (verifier) and critic agreement per round from decisions.>", default: true },
  consumeCandidates: { type: "bool", help: "evaluate and gate every checkpoints.candidate event", default: true },
  liveCheck: { type: "duration", help: "re-evaluate the promoted checkpoint this often and roll back on regression (0 = off)", default: 0, min: 0 },
  arenaRule: { type: "enum", values: ["threshold", "sprt", "none"], help: "game tasks: the arena gate (threshold: score over N games; sprt: sequential test; none: every candidate promoted, the ablation)", default: "threshold" },
  arenaGames: { type: "int", help: "game tasks: arena games (the cap of an SPRT)", default: 40, min: 1, max: 100_000 },
  arenaThreshold: { type: "float", help: "game tasks: score the candidate needs under the threshold rule", default: 0.55, min: 0.01, max: 1 },
  arenaSimulations: { type: "int", help: "game tasks: search simulations per arena move", default: 64, min: 1, max: 100_000 },
  arenaPlay: { type: "enum", values: ["search", "policy"], help: "game tasks: arena players search (PUCT at --arena-simulations) or play the raw policy's most probable move", default: "search" },
  arenaSprtElo1: { type: "float", help: "game tasks: the SPRT's H1 (Elo over the promoted model; H0 is 0)", default: 35, min: 1 },
  eloGames: { type: "int", help: "game tasks: games of every evaluated model against each fixed opponent", default: 20, min: 2, max: 10_000 },
  eloSimulations: { type: "int", help: "game tasks: search simulations per move against the fixed opponents", default: 64, min: 1, max: 100_000 },
  anchorDepths: { type: "list", help: "game tasks: alpha-beta depths of the fixed opponents (beside random play and the random/depth-1 mix)", default: ["1", "2", "4"] },
  calibrationGames: { type: "int", help: "game tasks: games per pair of fixed opponents when their Elo ladder is calibrated (random = 0)", default: 40, min: 2, max: 10_000 },
} as const;

const version = (v: bigint): number => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new AutodidactError(`version ${v} is too large`, Code.InvalidArgument);
  return Number(v);
};

/** The difficulties evaluated: the flags' range clipped to the task's. */
function evalDifficulties(task: string, min: number, max: number): number[] {
  const range = getTaskPack(task).difficulty;
  const lo = Math.max(range.min, min);
  const hi = max === 0 ? range.max : Math.min(range.max, max);
  if (lo > hi) throw new AutodidactError(`evaluation difficulties ${min}..${max} are outside task ${task}'s ${range.min}..${range.max}`, Code.InvalidArgument);
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** The monitor service: evaluates checkpoints on real data, detects collapse, promotes and rolls back */
export const monitorService: ServiceSpec<typeof monitorOptions> = {
  name: "monitor",
  description: "evaluates checkpoints on real data, detects collapse, promotes and rolls back",
  options: monitorOptions,
  topology: MESH_TOPOLOGY,
  async start(ctx) {
    const cfg = ctx.config;
    const log = ctx.logger;
    await startTaskModules(cfg, log);
    const registry = createRegistry(ctx.bus, { cacheDir: cfg.cacheDir ?? join(tmpdir(), "autodidact-cache", `monitor-${ctx.instanceId}`) });
    const worker: ModelWorker = createModelWorker({ name: "monitor-eval" });
    let dashboard: DashboardServer | undefined;
    const defaultTask = cfg.task[0] ?? "addition";
    const games = cfg.task.some(isGameTask) ? await startArena(ctx.bus, registry, worker, cfg, log) : undefined;
    const monitor: Monitor = await createMonitor({
      bus: ctx.bus,
      registry,
      host: worker,
      defaultTask,
      limitPerDifficulty: cfg.evalLimit,
      ...(cfg.evalSamples > 0 ? { samplesPerDifficulty: cfg.evalSamples } : {}),
      ...(isGameTask(defaultTask) ? {} : { difficulties: evalDifficulties(defaultTask, cfg.evalMinDifficulty, cfg.evalMaxDifficulty) }),
      ...(games !== undefined ? { games } : {}),
      logger: log,
      onChange: () => dashboard?.notify(),
    });
    const policies = await openPolicyStore(ctx.bus);
    const lineageOf = (l: string): string => (l === "" ? cfg.lineage : l);
    /** A request's version, 0 meaning the lineage's promoted one (FailedPrecondition when none is). */
    const versionOrPromoted = async (lineage: string, requested: bigint): Promise<number> => {
      const v = version(requested);
      if (v !== 0) return v;
      const p = await registry.getPromoted(lineage);
      if (p === undefined) throw new AutodidactError(`lineage ${lineage} has no promoted version`, Code.FailedPrecondition);
      return p.version;
    };

    let consumer: ConsumerHandle | undefined;
    if (cfg.consumeCandidates) {
      consumer = await consume(
        ctx.bus,
        { ...Durables.monitorCandidates.spec(), ackWaitMs: 120_000, maxDeliver: 3 },
        async (msg) => {
          let ref;
          try {
            ref = fromBinary(CheckpointRefSchema, msg.data);
          } catch (cause) {
            throw new AutodidactError("checkpoints.candidate carries no CheckpointRef", Code.InvalidArgument, { cause });
          }
          const lineage = lineageOf(ref.lineage);
          const v = version(ref.version);
          const record = await registry.getCheckpoint(lineage, v);
          if (record === undefined) throw new AutodidactError(`candidate ${lineage}@${v} is not in the registry`, Code.NotFound);
          if (record.status !== "candidate") return; // already judged (redelivery or a manual Promote)
          const policy = await monitor.getPolicy();
          try {
            if (policy.autoPromote) await monitor.promote(lineage, v);
            else await monitor.evaluate(lineage, v);
          } catch (err) {
            // A checkpoint that cannot be fetched, verified or loaded will never pass: reject it with
            // the reason instead of leaving it a candidate forever. Transient failures are retried.
            if (err instanceof AutodidactError && [Code.InvalidArgument, Code.FailedPrecondition, Code.DataLoss, Code.NotFound].includes(err.code)) {
              await registry.setStatus(lineage, v, "rejected", `could not be evaluated: ${err.rawMessage}`);
              dashboard?.notify();
              return;
            }
            throw err;
          }
        },
        { logger: log },
      );
    }

    const statsConsumer = cfg.roundStats ? await followRoundStats(ctx.bus, { logger: log, onChange: () => dashboard?.notify() }) : undefined;

    let liveTimer: NodeJS.Timeout | undefined;
    if (cfg.liveCheck > 0) {
      liveTimer = setInterval(() => {
        monitor.checkPromoted(cfg.lineage).catch((err: unknown) => log.warn("live check failed", { error: String(err) }));
      }, cfg.liveCheck);
      liveTimer.unref();
    }

    if (cfg.dashboardPort >= 0) {
      const task = cfg.task[0] ?? "addition";
      const source = {
        history: monitor.history,
        getEvaluation: monitor.getEvaluation,
        lineage: monitor.lineage,
        roundRates: async () => new Map([...(await readRoundStats(ctx.bus, task))].map(([round, s]) => [round, roundRates(s)])),
      };
      dashboard = await startDashboard({ monitor: source, lineage: cfg.lineage, port: cfg.dashboardPort, host: cfg.dashboardHost });
      log.info("dashboard", { url: dashboard.url });
      process.stdout.write(`${JSON.stringify({ event: "dashboard", url: dashboard.url })}\n`);
    }

    const info = createInfoHandler(MonitorService, {
      instanceId: ctx.instanceId,
      tasks: cfg.task,
      taskIdentities: taskIdentities(cfg.task),
      attributes: { lineage: cfg.lineage, ...(dashboard ? { dashboardUrl: dashboard.url } : {}) },
    });

    return {
      services: [
        implement(MonitorService, {
          getInfo: () => info(),
          async evaluate(req) {
            const lineage = lineageOf(req.lineage);
            const v = await versionOrPromoted(lineage, req.version);
            const e = await monitor.evaluate(lineage, v, { force: true, ...(req.limitPerDifficulty > 0 ? { limitPerDifficulty: req.limitPerDifficulty } : {}) });
            return toEvaluation(e);
          },
          async getEvaluation(req) {
            const lineage = lineageOf(req.lineage);
            const v = await versionOrPromoted(lineage, req.version);
            const e = await monitor.getEvaluation(lineage, v);
            if (e === undefined) throw new AutodidactError(`${lineage}@${v} was never evaluated (Evaluate evaluates it)`, Code.NotFound);
            return { evaluation: toEvaluation(e), ...(e.gate ? { gate: toGateResult(e.gate) } : {}) };
          },
          async getRoundStats(req) {
            if (req.task === "") throw new AutodidactError("GetRoundStats needs a task", Code.InvalidArgument);
            return toRoundStats(await readRoundStat(ctx.bus, req.task, req.round));
          },
          async promote(req) {
            const lineage = lineageOf(req.lineage);
            const out = await monitor.promote(lineage, version(req.version), { force: req.force, reason: req.reason });
            return {
              promoted: out.promoted,
              checkpoint: refWithEvaluation(out.record, out.evaluation),
              evaluation: toEvaluation(out.evaluation),
              gate: toGateResult(out.gate),
              previousVersion: BigInt(out.previousVersion),
            };
          },
          async rollback(req) {
            const lineage = lineageOf(req.lineage);
            const out = await monitor.rollback(lineage, version(req.toVersion), req.reason);
            return { previous: refWithEvaluation(out.previous), current: refWithEvaluation(out.current) };
          },
          async history(req) {
            const lineage = lineageOf(req.lineage);
            const h = await monitor.history(lineage, req.limit);
            const refs = await Promise.all(h.records.map(async (r) => refWithEvaluation(r, await monitor.getEvaluation(lineage, r.version))));
            return { checkpoints: refs, promotedVersion: BigInt(h.promotedVersion) };
          },
          async lineage(req) {
            const lineage = lineageOf(req.lineage);
            let v = version(req.version);
            if (v === 0) v = (await registry.getPromoted(lineage))?.version ?? 0;
            if (v === 0) throw new AutodidactError(`lineage ${lineage} has no promoted version; name one`, Code.InvalidArgument);
            const chain = await monitor.lineage(lineage, v);
            return { chain: chain.map((r) => refWithEvaluation(r)), entries: chain.map(toLineageEntry) };
          },
          async getPolicy() {
            return toGatingPolicy(await monitor.getPolicy());
          },
          async setPolicy(req) {
            if (req.policy === undefined) throw new AutodidactError("SetPolicy needs a policy", Code.InvalidArgument);
            return toGatingPolicy(await monitor.setPolicy(fromGatingPolicy(req.policy), version(req.expectedVersion)));
          },
          async getConsensusPolicy(req) {
            const name = req.name === "" ? "default" : req.name;
            const p = await policies.get(name);
            if (p === null) throw new AutodidactError(`consensus policy ${name} was never set`, Code.NotFound);
            return policyToProto(p);
          },
          async setConsensusPolicy(req) {
            if (req.policy === undefined) throw new AutodidactError("SetConsensusPolicy needs a policy", Code.InvalidArgument);
            const parsed = policyFromProto(create(ConsensusPolicySchema, { ...req.policy, version: req.policy.version || 1n }));
            const exp = version(req.expectedVersion);
            const stored = await policies.set(policyToSpec(parsed), exp > 0 ? { expectedVersion: exp } : {});
            return policyToProto(stored);
          },
        }),
      ],
      async stop() {
        if (liveTimer) clearInterval(liveTimer);
        await consumer?.stop();
        await statsConsumer?.stop();
        await dashboard?.close();
        await worker.close();
      },
    };
  },
};
