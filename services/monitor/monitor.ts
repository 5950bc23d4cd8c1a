import { toBinary } from "@bufbuild/protobuf";
import { CheckpointRefSchema } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import { isKvConflict, type Bus } from "../../src/platform/bus/index.js";
import { Subjects, type PromotionAuditEvent } from "../../src/domain/topology/index.js";
import type { SessionHost, TextGenerator } from "../../src/engine/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import {
  applyGate,
  checkGatePolicy,
  DEFAULT_GATE_POLICY,
  emptyEvaluation,
  evaluateModel,
  labelAccuracy,
  AnswerCache,
  measureLabelFree,
  signalsOf,
  thresholdsOf,
  type EvaluationReport,
  type GateOutcome,
  type GatePolicy,
  type LabelFreeDifficulty,
  type LabelFreeModel,
} from "./evaluation/index.js";
import { checkpointRefOf, openMonitorRecords, type CheckpointRecord, type MonitorRecords, type Registry, type RoundStats } from "../../src/domain/registry/index.js";
import { summarizeManifest } from "./evaluation/index.js";
import { loadDecoderModel } from "../../src/domain/serving/index.js";
import { getTaskPack } from "../../src/domain/tasks/index.js";
import { evaluationPlan, labelFreeDifficulties } from "./evaluation-plan.js";
import { isGameTask, type ArenaPolicy } from "../../src/domain/games/index.js";
import type { ArenaGate } from "./arena/arena-gate.js";
import { gameReport, type GameEvaluation } from "./arena/game-evaluation.js";
import { createLogger, getMeter, type Logger } from "../../src/platform/telemetry/index.js";

/** The results part of an evaluation: one split's per-difficulty accuracy and frontier. */
export type SplitReport = Pick<EvaluationReport, "split" | "perDifficulty" | "accuracy" | "evalSetDigest" | "frontier">;

/**
 * An evaluation as the monitor stores it. The report fields it extends are the gate's: the validation
 * split within the gating policy's validation range (empty when the policy allows none). `test` holds
 * the results, which no decision reads; `labelFree` what the gate compared beyond the validation range.
 */
export interface StoredEvaluation extends EvaluationReport {
  /** The test split: per-difficulty accuracy and frontier, reported as results only. */
  readonly test: SplitReport;
  /** Label-free signals the gate compared (empty until the checkpoint is gated, or when none apply). */
  readonly labelFree: readonly LabelFreeDifficulty[];
  /** What was evaluated (split difficulties and sizes): a cached evaluation under another plan is stale. */
  readonly plan: string;
  readonly lineage: string;
  readonly version: number;
  readonly baselineVersion: number;
  /** Verifier-judged accuracy of the accepted synthetic labels that trained it (NaN-free: -1 = unknown). */
  readonly labelAccuracy: number;
  /** Same for every proposed sample of the round, when the manifest lists them (-1 = unknown). */
  readonly labelAccuracyProposed: number;
  readonly evaluatedAt: string;
  readonly gate?: GateOutcome;
  /** A game checkpoint's evaluation: Elo against fixed opponents, the arena, the alarms (arena/). */
  readonly game?: GameEvaluation;
}

/** Outcome of {@link Monitor.promote}. */
export interface PromoteOutcome {
  readonly promoted: boolean;
  readonly record: CheckpointRecord;
  readonly evaluation: StoredEvaluation;
  readonly gate: GateOutcome;
  readonly previousVersion: number;
}

/** Options of {@link createMonitor}. */
export interface MonitorOptions {
  readonly bus: Bus;
  readonly registry: Registry;
  /** Where candidate models are loaded for evaluation (a model worker). */
  readonly host: SessionHost;
  /** Task evaluated when a manifest names none. */
  readonly defaultTask: string;
  /** Cap on held-out problems per difficulty (0 = all). */
  readonly limitPerDifficulty?: number;
  /** Difficulties evaluated (default the task's whole range). */
  readonly difficulties?: readonly number[];
  /** Temperature-1 answers sampled per difficulty for diversity and drift (default: one per problem). */
  readonly samplesPerDifficulty?: number;
  readonly logger?: Logger;
  /** Called after every change (evaluation, promotion, rollback): the dashboard's live feed. */
  readonly onChange?: () => void;
  /** Game tasks: the arena gate and the arena policy in force (without them game checkpoints are refused). */
  readonly games?: { readonly gate: ArenaGate; policy(): Promise<ArenaPolicy> };
}

/**
 * The monitor's logic over the registry: evaluate checkpoints on real held-out data, gate and
 * promote, roll back, and explain history and lineage. The gRPC service and the dashboard sit on it.
 */
export interface Monitor {
  evaluate(lineage: string, version: number, options?: { limitPerDifficulty?: number; force?: boolean }): Promise<StoredEvaluation>;
  getEvaluation(lineage: string, version: number): Promise<StoredEvaluation | undefined>;
  /** Evaluates, gates against the promoted version, and promotes (or rejects, keeping the reason). */
  promote(lineage: string, version: number, options?: { force?: boolean; reason?: string; rejectOnFail?: boolean }): Promise<PromoteOutcome>;
  /** Serves `toVersion` again (0 = the promoted version before the current one); the current one becomes rolled_back. */
  rollback(lineage: string, toVersion: number, reason: string): Promise<{ previous: CheckpointRecord; current: CheckpointRecord }>;
  /** Re-evaluates the promoted version; rolls back when it fails the gate against its predecessor and the policy says so. */
  checkPromoted(lineage: string): Promise<{ rolledBack: boolean; reasons: string[] }>;
  history(lineage: string, limit?: number): Promise<{ records: CheckpointRecord[]; promotedVersion: number }>;
  /** Root first, the version last. */
  lineage(lineage: string, version: number): Promise<CheckpointRecord[]>;
  getPolicy(): Promise<GatePolicy>;
  setPolicy(policy: Omit<GatePolicy, "version" | "updatedAt">, expectedVersion?: number): Promise<GatePolicy>;
}

/** Creates the monitor logic; see {@link Monitor}. */
export async function createMonitor(options: MonitorOptions): Promise<Monitor> {
  const { bus, registry, host } = options;
  const log = options.logger ?? createLogger("monitor");
  // Evaluations, the gating policy and round statistics live in the registry, under its accessors.
  const records: MonitorRecords<StoredEvaluation, GatePolicy> = openMonitorRecords(bus);
  const meter = getMeter("autodidact.monitor");
  const evalAccuracy = meter.createHistogram("autodidact.monitor.eval_accuracy", { description: "held-out exact-match accuracy of each evaluated checkpoint (attribute split: validation, test)", unit: "1" });
  const decisions = meter.createCounter("autodidact.monitor.decisions", { description: "gate outcomes and rollbacks (attribute outcome: promoted, rejected, rolled_back)" });
  const alarmCount = meter.createCounter("autodidact.monitor.alarms", { description: "collapse alarms raised by evaluations (attributes kind, stage, severity)" });
  // Telemetry never throws into the caller.
  const measure = (fn: () => void): void => {
    try {
      fn();
    } catch {
      // ignored
    }
  };
  const changed = (): void => {
    try {
      options.onChange?.();
    } catch {
      // a listener never breaks the monitor
    }
  };

  const mustGet = async (lineage: string, version: number): Promise<CheckpointRecord> => {
    const r = await registry.getCheckpoint(lineage, version);
    if (r === undefined) throw new AutodidactError(`checkpoint ${lineage}@${version} does not exist`, Code.NotFound);
    return r;
  };
  const getEvaluation = (lineage: string, version: number): Promise<StoredEvaluation | undefined> => records.getEvaluation(lineage, version);

  // A policy stored by an older monitor lacks the newer fields: they read as their defaults.
  const getPolicy = async (): Promise<GatePolicy> => ({ ...DEFAULT_GATE_POLICY, ...(await records.getGatePolicy())?.policy });

  // One evaluation at a time: the model worker is shared and evaluations are CPU-bound.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const evaluate: Monitor["evaluate"] = (lineage, version, o = {}) =>
    serial(async () => {
      const record = await mustGet(lineage, version);
      const summary = summarizeManifest(record);
      if (isGameTask(summary.task ?? options.defaultTask)) {
        const cached = o.force ? undefined : await getEvaluation(lineage, version);
        return cached?.game !== undefined ? cached : evaluateGame(record);
      }
      const pack = getTaskPack(summary.task ?? options.defaultTask);
      const policy = await getPolicy();
      const plan = evaluationPlan(policy, pack, options.difficulties, options.limitPerDifficulty ?? 0, o.limitPerDifficulty);
      const planKey = JSON.stringify(plan);
      if (!o.force) {
        const cached = await getEvaluation(lineage, version);
        // Records of an older monitor (no test split) or of another plan are stale.
        if (cached !== undefined && cached.test !== undefined && cached.plan === planKey) return cached;
      }
      const promoted = await registry.getPromoted(lineage);
      const baselineVersion = promoted && promoted.version !== version ? promoted.version : record.parentVersion;
      const baselineRecord = baselineVersion > 0 ? await getEvaluation(lineage, baselineVersion) : undefined;
      const baseline = baselineRecord?.split === "validation" && baselineRecord.perDifficulty.length > 0 ? baselineRecord : undefined;
      const dir = await registry.materialize(lineage, version);
      const loaded = await loadDecoderModel(host, dir, `${lineage}@${version}`, { fetcher: registry });
      let report: EvaluationReport;
      let test: EvaluationReport;
      try {
        const common = {
          ...(options.samplesPerDifficulty ? { samplesPerDifficulty: options.samplesPerDifficulty } : {}),
          thresholds: thresholdsOf(policy),
          seed: `${lineage}@${version}`,
        };
        // The gate's evaluation: validation only, only where the policy allows labels.
        report =
          plan.validation.length === 0
            ? emptyEvaluation(pack, "validation")
            : await evaluateModel(loaded.model.generator, pack, {
                ...common,
                split: "validation",
                difficulties: plan.validation,
                ...(plan.validationLimit > 0 ? { limitPerDifficulty: plan.validationLimit } : {}),
                ...(baseline ? { reference: signalsOf(baseline) } : {}),
              });
        // The results: greedy accuracy on the test split, which no decision reads.
        test = await evaluateModel(loaded.model.generator, pack, {
          ...common,
          split: "test",
          accuracyOnly: true,
          difficulties: plan.test,
          ...(plan.testLimit > 0 ? { limitPerDifficulty: plan.testLimit } : {}),
        });
      } finally {
        await loaded.release();
      }
      let label = pack.verifier && summary.acceptedSamples.length > 0 ? labelAccuracy(pack, summary.acceptedSamples).accuracy : -1;
      let labelProposed = pack.verifier && summary.proposedSamples.length > 0 ? labelAccuracy(pack, summary.proposedSamples).accuracy : -1;
      if (label < 0 || labelProposed < 0) {
        // The manifest lists no samples (the trainer records ids only): use the verifier-judged
        // decisions of the rounds that formed it (see round-stats.ts).
        const stats = (await Promise.all(summary.rounds.filter((r) => Number.isSafeInteger(r) && r >= 0).map((r) => records.getRoundStats(pack.name, r)))).flatMap((e) => (e ? [e] : []));
        const sum = (f: (s: RoundStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
        if (label < 0 && sum((s) => s.accepted) > 0) label = sum((s) => s.correctAccepted) / sum((s) => s.accepted);
        if (labelProposed < 0 && sum((s) => s.proposed) > 0) labelProposed = sum((s) => s.correctProposed) / sum((s) => s.proposed);
      }
      const stored: StoredEvaluation = {
        ...report,
        durationMs: report.durationMs + test.durationMs,
        test: { split: test.split, perDifficulty: test.perDifficulty, accuracy: test.accuracy, evalSetDigest: test.evalSetDigest, frontier: test.frontier },
        labelFree: [],
        plan: planKey,
        lineage,
        version,
        baselineVersion: baseline ? baselineVersion : 0,
        labelAccuracy: label,
        labelAccuracyProposed: labelProposed,
        evaluatedAt: new Date().toISOString(),
      };
      await records.putEvaluation(stored);
      measure(() => {
        evalAccuracy.record(test.accuracy, { lineage, task: pack.name, split: "test" });
        if (report.perDifficulty.length > 0) evalAccuracy.record(report.accuracy, { lineage, task: pack.name, split: "validation" });
        for (const a of report.alarms) alarmCount.add(1, { kind: a.kind, stage: a.stage, severity: a.severity });
      });
      log.info("evaluated", { lineage, version, validationAccuracy: report.accuracy, testAccuracy: test.accuracy, testFrontier: test.frontier, alarms: report.alarms.length });
      changed();
      return stored;
    });

  /** A game checkpoint: the arena gate against the promoted version and Elo against the fixed opponents. */
  const evaluateGame = async (record: CheckpointRecord): Promise<StoredEvaluation> => {
    if (options.games === undefined) throw new AutodidactError(`this monitor gates no games (${record.lineage}@${record.version})`, Code.FailedPrecondition);
    const { lineage, version } = record;
    const t0 = performance.now();
    const promoted = await registry.getPromoted(lineage);
    const incumbent = promoted !== undefined && promoted.version !== version ? { version: promoted.version, evaluation: (await getEvaluation(lineage, promoted.version))?.game } : undefined;
    const g = await options.games.gate.evaluate(record, await options.games.policy(), incumbent);
    const report = gameReport(g, performance.now() - t0);
    const stored: StoredEvaluation = {
      ...report,
      test: { split: "test", perDifficulty: [], accuracy: report.accuracy, evalSetDigest: report.evalSetDigest, frontier: 0 },
      labelFree: [],
      plan: "game",
      lineage,
      version,
      baselineVersion: incumbent?.version ?? 0,
      labelAccuracy: -1,
      labelAccuracyProposed: -1,
      evaluatedAt: new Date().toISOString(),
      gate: { passed: g.passed, reasons: [...g.reasons], policyVersion: g.arenaPolicyVersion },
    };
    await records.putEvaluation(stored);
    log.info("game checkpoint evaluated", { lineage, version, elo: Math.round(g.elo), arena: g.arena ? `${g.arena.tally.wins}-${g.arena.tally.draws}-${g.arena.tally.losses}` : "-", passed: g.passed });
    changed();
    return stored;
  };

  /**
   * Records what the monitor did on the promotion audit subject, after the promoted pointer moved
   * (the pointer is the signal generator and critics follow; this record drives nothing).
   */
  const publishAudit = async (event: PromotionAuditEvent, record: CheckpointRecord): Promise<void> => {
    const ref = checkpointRefOf(record);
    await bus.publish(Subjects.promotionAudit(event), toBinary(CheckpointRefSchema, ref), { msgId: `${event}-${record.lineage}-${record.version}-${Date.now()}` });
  };

  /** Moves the promoted pointer with CAS, retrying when someone else moved it meanwhile. */
  const movePointer = async (lineage: string, version: number): Promise<number> => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await registry.getPromoted(lineage);
      try {
        await registry.setPromoted(lineage, version, current?.revision ?? 0);
        return current?.version ?? 0;
      } catch (err) {
        // Aborted: moved meanwhile; AlreadyExists: a first pointer created meanwhile (a repeated base import).
        const conflict = isKvConflict(err) || (err instanceof AutodidactError && (err.code === Code.Aborted || err.code === Code.AlreadyExists));
        if (!conflict || attempt === 4) throw err;
      }
    }
    throw new AutodidactError("unreachable", Code.Internal);
  };

  // Greedy answers of label-free checks, shared by the candidates of a round (see AnswerCache).
  const answers = new AnswerCache();

  /**
   * Measures the label-free check of a candidate (nothing when the policy asks for none). Prompts are
   * seeded by the task and the candidate's round, so every lineage's candidate of a round is compared
   * on the same prompts and each model answers them once; models load only when an answer is missing.
   */
  const measureLabelFreeOf = async (record: CheckpointRecord, incumbentVersion: number, policy: GatePolicy): Promise<LabelFreeDifficulty[]> => {
    const pack = getTaskPack(summarizeManifest(record).task ?? options.defaultTask);
    const difficulties = labelFreeDifficulties(policy, pack, record);
    if (difficulties.length === 0) return [];
    const loaded: { release(): Promise<void> }[] = [];
    const model = (lineage: string, version: number): LabelFreeModel => {
      let generator: Promise<TextGenerator> | undefined;
      return {
        key: `${lineage}@${version}`,
        generator: () =>
          (generator ??= (async () => {
            const m = await loadDecoderModel(host, await registry.materialize(lineage, version), `${lineage}@${version}`, { fetcher: registry });
            loaded.push(m);
            return m.model.generator;
          })()),
      };
    };
    try {
      const peers: LabelFreeModel[] = [];
      for (const peer of policy.peerLineages) {
        if (peer === record.lineage) continue;
        const p = await registry.getPromoted(peer);
        if (p !== undefined) peers.push(model(peer, p.version));
      }
      const models = { candidate: model(record.lineage, record.version), ...(incumbentVersion > 0 ? { incumbent: model(record.lineage, incumbentVersion) } : {}), peers };
      return await measureLabelFree(models, pack, { difficulties, probeSize: policy.labelFreeProbeSize, seed: `${pack.name}:round-${record.round}`, cache: answers });
    } finally {
      for (const m of loaded) await m.release();
    }
  };

  const promote: Monitor["promote"] = async (lineage, version, o = {}) => {
    const record = await mustGet(lineage, version);
    const promoted = await registry.getPromoted(lineage);
    const evaluated = await evaluate(lineage, version);
    const policy = await getPolicy();
    const incumbentVersion = promoted && promoted.version !== version ? promoted.version : 0;
    let evaluation: StoredEvaluation;
    let gate: GateOutcome;
    if (evaluated.game !== undefined && evaluated.gate !== undefined) {
      // A game candidate: its arena decided (arena/), stored with its evaluation.
      gate = evaluated.gate;
      evaluation = evaluated;
    } else {
      // evaluate() returns the cached evaluation when it was made under the current plan, else evaluates again.
      const incumbent = incumbentVersion > 0 ? await evaluate(lineage, incumbentVersion) : undefined;
      const labelFree = await serial(() => measureLabelFreeOf(record, incumbentVersion, policy));
      gate = applyGate(policy, evaluated, incumbent, labelFree);
      evaluation = { ...evaluated, labelFree, gate };
      await records.putEvaluation(evaluation);
    }
    if (!gate.passed && !o.force) {
      let updated = record;
      if (o.rejectOnFail ?? true) {
        updated = await registry.setStatus(lineage, version, "rejected", `gate (policy v${gate.policyVersion}) failed vs ${incumbentVersion ? `v${incumbentVersion}` : "no incumbent"}: ${gate.reasons.join("; ")}`);
      }
      measure(() => decisions.add(1, { outcome: "rejected", lineage }));
      log.info("candidate rejected", { lineage, version, reasons: gate.reasons.join("; ") });
      changed();
      return { promoted: false, record: updated, evaluation, gate, previousVersion: promoted?.version ?? 0 };
    }
    const reason = gate.passed
      ? `passed gate (policy v${gate.policyVersion}) vs ${incumbentVersion ? `v${incumbentVersion}` : "no incumbent"}${o.reason ? `: ${o.reason}` : ""}`
      : `forced past failed gate: ${gate.reasons.join("; ")}${o.reason ? ` (${o.reason})` : ""}`;
    // Pointer first, then status: a record that says "promoted" is always the one served, and a crash in
    // between leaves the candidate status, so the redelivered announcement promotes it again.
    const previousVersion = await movePointer(lineage, version);
    const updated = await registry.setStatus(lineage, version, "promoted", reason);
    await publishAudit("promoted", updated);
    measure(() => decisions.add(1, { outcome: "promoted", lineage }));
    log.info("promoted", { lineage, version, previousVersion });
    changed();
    return { promoted: true, record: updated, evaluation, gate, previousVersion };
  };

  const rollback: Monitor["rollback"] = async (lineage, toVersion, reason) => {
    const current = await registry.getPromoted(lineage);
    if (current === undefined) throw new AutodidactError(`lineage ${lineage} has no promoted version to roll back`, Code.FailedPrecondition);
    let target = toVersion;
    if (target === 0) {
      // The promoted version before the current one: newest earlier record that was promoted at some point.
      const earlier = (await registry.listCheckpoints(lineage)).filter((r) => r.version < current.version && (r.status === "promoted" || r.status === "rolled_back")).sort((a, b) => b.version - a.version);
      const found = earlier.find((r) => r.status === "promoted") ?? earlier[0];
      if (found === undefined) throw new AutodidactError(`lineage ${lineage} has no earlier promoted version than v${current.version}`, Code.FailedPrecondition);
      target = found.version;
    }
    if (target === current.version) throw new AutodidactError(`${lineage}@${target} is already the promoted version`, Code.FailedPrecondition);
    await mustGet(lineage, target); // NotFound before anything moves
    const why = reason || "rollback";
    await movePointer(lineage, target);
    const previous = await registry.setStatus(lineage, current.version, "rolled_back", `rolled back to v${target}: ${why}`);
    const restored = await registry.setStatus(lineage, target, "promoted", `restored by rollback from v${current.version}: ${why}`);
    await publishAudit("rolled_back", restored);
    measure(() => decisions.add(1, { outcome: "rolled_back", lineage }));
    log.info("rolled back", { lineage, from: current.version, to: target });
    changed();
    return { previous, current: restored };
  };

  return {
    evaluate,
    getEvaluation,
    promote,
    rollback,
    async checkPromoted(lineage) {
      const current = await registry.getPromoted(lineage);
      if (current === undefined) return { rolledBack: false, reasons: [] };
      const policy = await getPolicy();
      const record = await mustGet(lineage, current.version);
      const live = await evaluate(lineage, current.version, { force: true });
      // A game's live evaluation is its arena gate's (it has no validation split to compare).
      const parentEval = live.game === undefined && record.parentVersion > 0 ? await evaluate(lineage, record.parentVersion) : undefined;
      const gate = live.game !== undefined && live.gate !== undefined ? live.gate : applyGate(policy, live, parentEval);
      if (gate.passed || !policy.autoRollback) return { rolledBack: false, reasons: gate.reasons };
      const before = (await registry.listCheckpoints(lineage)).some((r) => r.version < current.version && (r.status === "promoted" || r.status === "rolled_back"));
      if (!before) return { rolledBack: false, reasons: gate.reasons };
      await rollback(lineage, 0, `automatic: live evaluation regressed (${gate.reasons.join("; ")})`);
      return { rolledBack: true, reasons: gate.reasons };
    },
    async history(lineage, limit = 0) {
      const records = (await registry.listCheckpoints(lineage)).sort((a, b) => b.version - a.version);
      const promoted = await registry.getPromoted(lineage);
      return { records: limit > 0 ? records.slice(0, limit) : records, promotedVersion: promoted?.version ?? 0 };
    },
    async lineage(lineage, version) {
      const chain: CheckpointRecord[] = [];
      const seen = new Set<number>();
      let v = version;
      while (v > 0) {
        if (seen.has(v)) throw new AutodidactError(`lineage ${lineage} has a parent cycle at v${v}`, Code.DataLoss);
        seen.add(v);
        const r = await registry.getCheckpoint(lineage, v);
        if (r === undefined) {
          if (v === version) throw new AutodidactError(`checkpoint ${lineage}@${version} does not exist`, Code.NotFound);
          break;
        }
        chain.unshift(r);
        v = r.parentVersion;
      }
      return chain;
    },
    getPolicy,
    async setPolicy(p, expectedVersion) {
      for (let attempt = 0; ; attempt++) {
        const entry = await records.getGatePolicy();
        const currentVersion = entry?.policy.version ?? 0;
        if (expectedVersion !== undefined && expectedVersion !== 0 && expectedVersion !== currentVersion) {
          throw new AutodidactError(`gating policy is at version ${currentVersion}, not ${expectedVersion}: re-read it and retry`, Code.Aborted);
        }
        const next = checkGatePolicy({ ...DEFAULT_GATE_POLICY, ...p, version: currentVersion + 1, updatedAt: new Date().toISOString() });
        try {
          await records.putGatePolicy(next, entry?.revision ?? 0);
          changed();
          return next;
        } catch (err) {
          const lost = isKvConflict(err) || (err instanceof AutodidactError && (err.code === Code.AlreadyExists || err.code === Code.Aborted));
          if (!lost || attempt >= 4 || expectedVersion !== undefined) throw err;
        }
      }
    },
  };
}
