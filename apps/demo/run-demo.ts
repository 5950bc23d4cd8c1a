import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import { DeliverPolicy } from "@nats-io/jetstream";
import { connectBus, type Bus } from "../../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../../src/platform/nats-auth/index.js";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../cli/local-mesh.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { frontierOf } from "../experiment/index.js";
import { ConsensusKind, DecisionSchema, TimeoutOutcome, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { GetEvaluationResponseSchema, MonitorService, type GetEvaluationResponse } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { TrainerService } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { AdaptationMode, DataMix } from "../../src/gen/autodidact/v1/training_pb.js";
import { CriticService } from "../../src/gen/autodidact/v1/critic_pb.js";
import { createRegistry, listCheckpointFiles, type Registry } from "../../src/domain/registry/index.js";
import { DecisionAudit, type DecisionAuditReport } from "../../services/consensus/index.js";
import type { DemoRound, DemoRun, LineageRound } from "../report/types.js";
import { createClient, type RpcClient } from "../../src/platform/rpc/index.js";
import { lineageName, type DemoConfig } from "./config.js";
import { createProgressBar, pct, type DemoOutput } from "./progress.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";

/** Which variant of the experiment a run is: the default or one of the ablations. */
export interface RunVariant {
  readonly name: string;
  readonly description: string;
  /** false: every proposed sample is accepted (an accept-all critic, no model critics). */
  readonly consensus: boolean;
  readonly data: "accumulate" | "replace";
}

/** The three runs the report compares. */
export const VARIANTS: Readonly<Record<"default" | "no-consensus" | "replace", RunVariant>> = Object.freeze({
  default: { name: "default", description: "consensus of model critics + length filter + novelty; accepted data accumulates", consensus: true, data: "accumulate" },
  "no-consensus": { name: "no-consensus", description: "every proposed sample accepted (no filtering); data accumulates", consensus: false, data: "accumulate" },
  replace: { name: "replace", description: "consensus on; each round's accepted data replaces the previous rounds'", consensus: true, data: "replace" },
});

/** Options of {@link runDemo}. */
export interface RunDemoOptions {
  readonly config: DemoConfig;
  readonly variant: RunVariant;
  /** Base model folder per seed (see ensureBaseModels). */
  readonly baseDirs: ReadonlyMap<number, string>;
  /** The run's state (NATS store, logs, trainer data, caches). */
  readonly stateDir: string;
  readonly out: DemoOutput;
  readonly signal?: AbortSignal;
  /** Use this NATS (JetStream on) instead of starting a nats-server. */
  readonly natsUrl?: string;
  /** Called once the monitor's dashboard is up. */
  readonly onDashboard?: (url: string) => void;
  /** Called with the run so far after every round (the CLI rewrites the report as it goes). */
  readonly onRound?: (run: DemoRun) => void | Promise<void>;
}

/** A finished run and the mesh it ran on, still up (so the dashboard stays browsable) until `stop`. */
export interface DemoRunResult {
  readonly run: DemoRun;
  readonly dashboardUrl: string | undefined;
  stop(): Promise<void>;
}

type Accuracy = { length: number; accuracy: number }[];

/** The monitor's evaluation of a checkpoint with its gate outcome, as its GetEvaluation RPC gives it. */
type StoredEvaluationView = GetEvaluationResponse;

interface RoundStatsView {
  proposed: number;
  accepted: number;
  correctProposed: number;
  correctAccepted: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it gives a value, the deadline passes (DeadlineExceeded naming `what`) or the signal aborts. */
async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string, signal?: AbortSignal, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new AutodidactError(`interrupted while waiting for ${what}`, Code.Canceled);
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new AutodidactError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`, Code.DeadlineExceeded);
    await sleep(everyMs);
  }
}

const accuracyOf = (e: StoredEvaluationView): Accuracy =>
  (e.evaluation?.perDifficulty ?? []).map((d) => ({ length: d.difficulty, accuracy: d.accuracy })).sort((a, b) => a.length - b.length);

/**
 * Follows every decision of the run (an ephemeral ordered consumer on `decisions.<task>` from the
 * start of the stream) and indexes them by round. A second decision of a sample would not reach
 * the stream (same msg id, dropped inside its duplicate window), so a DecisionAudit counts every
 * publish on a core subscription: the demo reports it rather than trusting the consensus worker.
 */
async function followDecisions(bus: Bus, task: string): Promise<{ byRound: Map<number, Map<string, Decision>>; audit: () => DecisionAuditReport; stop: () => Promise<void> }> {
  const byRound = new Map<number, Map<string, Decision>>();
  const audit = await DecisionAudit.start(bus, Subjects.decisions(task));
  const consumer = await bus.js.consumers.get(Streams.Decisions, { filter_subjects: Subjects.decisions(task), deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      let d: Decision;
      try {
        d = fromBinary(DecisionSchema, m.data);
      } catch {
        continue;
      }
      const round = d.sample?.round ?? 0;
      const seen = byRound.get(round) ?? new Map<string, Decision>();
      byRound.set(round, seen);
      if (!seen.has(d.sampleId)) seen.set(d.sampleId, d);
    }
  })();
  return {
    byRound,
    audit: () => audit.report(),
    async stop() {
      await audit.stop();
      await messages.close();
      await done.catch(() => undefined);
    },
  };
}

/** Registers a base model folder as version 1 of its lineage and promotes it (the root every round trains from). */
async function registerBase(registry: Registry, lineage: string, dir: string, task: string, baseDigits: number): Promise<void> {
  const promoted = await registry.getPromoted(lineage);
  if (promoted !== undefined) return;
  const version = await registry.allocateVersion(lineage, `demo:base:${lineage}`);
  await registry.putCheckpoint(
    {
      lineage,
      version,
      parentVersion: 0,
      round: 0,
      status: "candidate",
      statusReason: "",
      files: await listCheckpointFiles(dir),
      manifest: { task, base: true, baseDigits, rounds: [], sampleCount: 0, source: dir },
      metrics: {},
      createdAt: new Date().toISOString(),
    },
    dir,
  );
  await registry.setStatus(lineage, version, "promoted", `base model trained on real 1..${baseDigits}-digit problems`);
  await registry.setPromoted(lineage, version);
}

/** The mesh members of a run: generator, critics (model critics per other lineage, rules, novelty; or one accept-all), trainer, monitor. */
export function demoMembers(config: DemoConfig, variant: RunVariant, stateDir: string): MeshMember[] {
  const r = config.recipe;
  const task = r.task;
  const lineages = r.seeds.map(lineageName);
  const [generatorLineage, ...criticLineages] = lineages;
  const maxLength = r.baseDigits + r.rounds + 1;
  const cache = (name: string): string[] => ["--cache-dir", join(stateDir, "cache", name)];
  const critics: MeshMember[] = variant.consensus
    ? [
        ...criticLineages.map((l) => ({
          name: `critic-${l}`,
          kind: "critic" as const,
          args: [
            ...["--task", task, "--kind", "model", "--critic-id", `model-${l}`, "--lineage", l, "--follow-promoted", "--max-in-flight", "64"],
            ...(config.modelMinLogprob === null ? [] : ["--min-logprob", String(config.modelMinLogprob)]),
            ...cache(`critic-${l}`),
          ],
        })),
        ...(config.rulesCritic ? [{ name: "critic-rules", kind: "critic" as const, args: ["--task", task, "--kind", "rules", "--critic-id", "rules"] }] : []),
        ...(config.noveltyCritic
          ? [{ name: "critic-novelty", kind: "critic" as const, args: ["--task", task, "--kind", "novelty", "--critic-id", "novelty", "--threshold", String(config.noveltyThreshold), "--novelty-window", "4000"] }]
          : []),
      ]
    : [{ name: "critic-accept-all", kind: "critic" as const, args: ["--task", task, "--kind", "accept-all", "--critic-id", "accept-all"] }];
  return [
    {
      name: "generator",
      kind: "generator",
      args: ["--task", task, "--lineage", generatorLineage!, "--temperature", "0", "--batch-size", "256", "--max-lag", "100000", ...cache("generator")],
    },
    ...critics,
    // One trainer per lineage (its own durable intake and data dir), so the lineages train side by side.
    ...lineages.map((l) => ({
      name: `trainer-${l}`,
      kind: "trainer" as const,
      args: [
        "--task", task,
        "--lineages", l,
        "--durable", `trainer-${l}`,
        "--mode", r.mode,
        "--mix", variant.data,
        "--anchor-ratio", String(r.anchorShare),
        "--anchor-min-difficulty", "1",
        "--anchor-max-difficulty", String(r.baseDigits),
        "--batch-size", String(r.round.batchSize),
        "--steps", String(r.round.steps),
        "--lr", String(r.round.lr),
        "--max-reuse", "1000000",
        "--train-threads", String(r.threads),
        "--data-dir", join(stateDir, `trainer-${l}`),
      ],
    })),
    {
      name: "monitor",
      kind: "monitor",
      args: [
        "--task", task,
        "--lineage", generatorLineage!,
        "--eval-limit", String(r.evalSize),
        "--eval-min-difficulty", "1",
        "--eval-max-difficulty", String(maxLength),
        "--eval-samples", String(config.evalSamples),
        ...cache("monitor"),
      ],
    },
  ];
}

/**
 * Runs one self-improvement experiment on a fresh local mesh: registers the base models, sets the
 * consensus and gating policies through the monitor, then per round has the generator propose
 * problems one digit longer, waits for every decision, trains every lineage, waits for the monitor's
 * gate, and prints the round's row. Every number in the returned run was read back from what the
 * services recorded (decisions stream, registry, the monitor's evaluations and round statistics).
 */
export async function runDemo(o: RunDemoOptions): Promise<DemoRunResult> {
  const { config, variant, out, signal } = o;
  const r = config.recipe;
  const task = r.task;
  const lineages = r.seeds.map(lineageName);
  const generatorLineage = lineages[0]!;
  const started = Date.now();
  const maxLength = r.baseDigits + r.rounds + 1;
  const lengths = Array.from({ length: maxLength }, (_, i) => i + 1);

  let bus: Bus | undefined;
  let mesh: LocalMesh | undefined;
  let decisions: Awaited<ReturnType<typeof followDecisions>> | undefined;
  const clients: { close(): void }[] = [];
  const stop = async (): Promise<void> => {
    for (const c of clients) c.close();
    await decisions?.stop().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await mesh?.stop().catch(() => undefined);
  };

  try {
    const members = demoMembers(config, variant, o.stateDir);
    const registerBases = async (admin: Bus): Promise<void> => {
      const reg = createRegistry(admin, { cacheDir: join(o.stateDir, "cache", "demo") });
      for (const seed of r.seeds) await registerBase(reg, lineageName(seed), o.baseDirs.get(seed)!, task, r.baseDigits);
    };
    out.write(
      `starting the mesh (${variant.name}): nats-server${o.natsUrl === undefined ? " with per-service credentials" : ""}, generator, ` +
        `${variant.consensus ? `${lineages.length - 1} model critics${config.rulesCritic ? " + rules" : ""}${config.noveltyCritic ? " + novelty" : ""}` : "an accept-all critic"}, ` +
        `consensus, a trainer per lineage, monitor\n`,
    );
    mesh = await startLocalMesh({
      stateDir: o.stateDir,
      // Its own nats-server with generated least-privilege credentials, unless the user gave a NATS.
      ...(o.natsUrl !== undefined ? { natsUrl: o.natsUrl, auth: false } : { auth: true }),
      members,
      // The base models must be registered and promoted before generator and critics start.
      beforeServices: registerBases,
      // Services log at info into their files (the dashboard's address is read from there).
      env: { AUTODIDACT_LOG_LEVEL: "info" },
      readyTimeoutMs: 120_000,
      ...(signal ? { signal } : {}),
    });
    // The demo drives the run as the operator (the admin identity when the mesh has credentials).
    const adminSeed = mesh.secrets?.seedFileOf("admin");
    bus = await connectBus({
      servers: mesh.natsUrl,
      name: `autodidact-demo-${variant.name}`,
      ...(adminSeed !== undefined ? { credentials: (await resolveNatsCredentials({ natsNkeyFile: adminSeed }))! } : {}),
    });
    const registry = createRegistry(bus, { cacheDir: join(o.stateDir, "cache", "demo") });
    const monitor: RpcClient<typeof MonitorService> = createClient(MonitorService, mesh.address("monitor"), { deadlineMs: 600_000 });
    const generator: RpcClient<typeof GeneratorService> = createClient(GeneratorService, mesh.address("generator"), { deadlineMs: Infinity });
    const trainers = new Map<string, RpcClient<typeof TrainerService>>(lineages.map((l) => [l, createClient(TrainerService, mesh!.address(`trainer-${l}`), { deadlineMs: Infinity })]));
    clients.push(monitor, generator, ...trainers.values());
    const criticMembers = members.filter((m) => m.kind === "critic");
    const criticClients = criticMembers.map((m) => {
      const c = createClient(CriticService, mesh!.address(m.name), { deadlineMs: 30_000 });
      clients.push(c);
      return { member: m, client: c };
    });

    const dashboardUrl = await dashboardAddress(o.stateDir);
    if (dashboardUrl) o.onDashboard?.(dashboardUrl);

    // Policies through the monitor's API, as an operator would set them.
    const modelCritics = criticMembers.filter((m) => m.args?.includes("model")).map((m) => m.args![m.args!.indexOf("--critic-id") + 1]!);
    const vetoCritics = [...(config.rulesCritic ? ["rules"] : []), ...(config.noveltyCritic ? ["novelty"] : [])];
    await monitor.setConsensusPolicy({
      policy: variant.consensus
        ? {
            name: task,
            kind: ConsensusKind.K_OF_N,
            critics: [...modelCritics, ...vetoCritics],
            requiredCritics: vetoCritics,
            k: config.modelApprovals + vetoCritics.length,
            timeoutMs: BigInt(config.decisionTimeoutSec * 1000),
            onTimeout: TimeoutOutcome.REJECT,
            note: `demo ${variant.name}: length filter and novelty veto; ${config.modelApprovals} of ${modelCritics.length} model critics must give the generator's answer`,
          }
        : {
            name: task,
            kind: ConsensusKind.K_OF_N,
            critics: ["accept-all"],
            k: 1,
            timeoutMs: BigInt(config.decisionTimeoutSec * 1000),
            onTimeout: TimeoutOutcome.ACCEPT_ALL,
            note: `demo ${variant.name}: no filtering (ablation)`,
          },
    });
    await monitor.setPolicy({
      policy: {
        minAccuracyDelta: config.minAccuracyDelta,
        maxDifficultyRegression: config.maxLengthRegression,
        maxCalibrationEce: 1,
        maxOverconfidentWrongRate: 1,
        minDiversityRatio: 0,
        minTailCoverage: 0,
        maxDriftKl: 1000,
        autoPromote: true,
        autoRollback: false,
        note: `demo ${variant.name}: promote unless held-out accuracy drops (overall by more than ${-config.minAccuracyDelta}, any length by more than ${config.maxLengthRegression})`,
      },
    });

    decisions = await followDecisions(bus, task);

    // Round 0: the base models on held-out real problems.
    // The monitor's evaluations through its RPCs: the stored one, else a fresh one (Evaluate's reply).
    const evaluated = async (lineage: string, version: number): Promise<StoredEvaluationView> => {
      try {
        return await monitor.getEvaluation({ lineage, version: BigInt(version) });
      } catch (err) {
        if (!(err instanceof AutodidactError && err.code === Code.NotFound)) throw err;
      }
      return create(GetEvaluationResponseSchema, { evaluation: await monitor.evaluate({ lineage, version: BigInt(version) }) });
    };
    const evalBar = createProgressBar(out, "evaluating base models", lineages.length);
    const baseAcc: Accuracy[] = [];
    for (const [i, l] of lineages.entries()) {
      baseAcc.push(accuracyOf(await evaluated(l, 1)));
      evalBar.update(i + 1);
    }
    evalBar.done();
    const baseFrontiers = baseAcc.map((a) => frontierOf(a, r.frontierThreshold, r.frontierFrom));
    const baseFrontier = baseFrontiers[0]!;
    const run: { -readonly [K in keyof DemoRun]: DemoRun[K] } = {
      name: variant.name,
      description: variant.description,
      consensus: variant.consensus,
      data: variant.data,
      generatorLineage,
      base: { frontier: baseFrontier, accuracyByLength: baseAcc[0]! },
      rounds: [],
      seconds: 0,
      stateDir: o.stateDir,
    };
    printHeader(out, lengths);
    printRow(out, lengths, { round: 0, labelLength: null, proposed: null, accepted: null, acc: null, propAcc: null, accuracy: baseAcc[0]!, frontier: baseFrontier, status: `base (lineage frontiers ${baseFrontiers.join(",")})` });

    // The first round labels one digit past what the base models were trained on, or past what every
    // lineage has mastered if more (a length only some lineages master gets no agreeing votes).
    let labelLength = Math.max(Math.min(...baseFrontiers), r.baseDigits) + 1;
    let longestAccepted = r.baseDigits;
    let pool = 0;
    for (let round = 1; round <= r.rounds; round++) {
      if (signal?.aborted) throw new AutodidactError("interrupted", Code.Canceled);
      const roundStart = Date.now();
      let phaseStart = roundStart;
      const lap = (): number => {
        const now = Date.now();
        const s = (now - phaseStart) / 1000;
        phaseStart = now;
        return s;
      };
      labelLength = Math.min(labelLength, maxLength);
      // Generator and critics must serve the promoted versions before proposing.
      await waitForServing(registry, generator, criticClients, lineages, signal);
      const serveSeconds = lap();

      // Propose.
      const proposeBar = createProgressBar(out, `round ${round}: proposing ${labelLength}-digit`, r.samplesPerRound);
      let proposed = 0;
      for await (const _ of generator.generate(
        { task, count: r.samplesPerRound, difficulty: labelLength, temperature: 0, publish: true, round, seed: BigInt(1000 * round + r.seeds[0]!) },
        signal ? { signal } : {},
      )) {
        proposed++;
        proposeBar.update(proposed);
      }
      proposeBar.done();
      const proposeSeconds = lap();

      // Judge: wait for every decision of the round.
      const judgeBar = createProgressBar(out, `round ${round}: critics judging`, proposed);
      const roundDecisions = await waitFor(
        async () => {
          const seen = decisions!.byRound.get(round)?.size ?? 0;
          judgeBar.update(seen);
          return seen >= proposed ? decisions!.byRound.get(round)! : undefined;
        },
        config.decisionTimeoutSec * 1000 + 60_000,
        `the decisions of round ${round}`,
        signal,
      );
      const accepted = [...roundDecisions.values()].filter((d) => d.accepted).length;
      judgeBar.done(`${accepted} accepted`);
      pool = variant.data === "accumulate" ? pool + accepted : accepted;

      // Label accuracy from the monitor's verifier-judged round statistics (critics never see the verifier).
      const stats = await waitFor(
        async () => {
          const e = await monitor.getRoundStats({ task, round });
          const view: RoundStatsView = { proposed: Number(e.proposed), accepted: Number(e.accepted), correctProposed: Number(e.correctProposed), correctAccepted: Number(e.correctAccepted) };
          return view.proposed >= proposed ? view : undefined;
        },
        60_000,
        `the monitor's statistics of round ${round}`,
        signal,
      );
      const judgeSeconds = lap();

      // Train every lineage (when there is anything to train on), then wait for the monitor's gate.
      const lineageRounds: LineageRound[] = [];
      let trainSeconds = 0;
      if (pool > 0) {
        // The recipe's proportional mix: a pool smaller than half a round's proposals gets a proportionally
        // smaller synthetic share of every batch (the rest is real data), so a handful of accepted labels is
        // never repeated into most of every batch.
        const fill = Math.min(1, pool / Math.max(1, r.samplesPerRound / 2));
        const anchorRatio = Math.min((r.round.batchSize - 1) / r.round.batchSize, Math.max(r.anchorShare, 1 - (1 - r.anchorShare) * fill));
        // Every lineage trains at once (a trainer each), each from its own promoted parent.
        const bar = createProgressBar(out, `round ${round}: training ${lineages.length} lineages`, lineages.length * r.round.steps);
        const stepsDone = new Map<string, number>();
        const losses = new Map<string, number>();
        await Promise.all(
          lineages.map(async (lineage) => {
            const stream = trainers.get(lineage)!.startRound(
              {
                round,
                lineage,
                task,
                training: {
                  steps: BigInt(r.round.steps),
                  batchSize: r.round.batchSize,
                  learningRate: r.round.lr,
                  weightDecay: r.round.weightDecay,
                  warmupSteps: r.round.warmupSteps,
                  decayShare: r.round.decayShare,
                  maxGradNorm: 1,
                  hardestShare: config.hardestShare,
                  mode: r.mode === "full" ? AdaptationMode.FULL : AdaptationMode.LORA,
                  mix: variant.data === "replace" ? DataMix.REPLACE : DataMix.ACCUMULATE,
                  seed: `demo:${variant.name}`,
                  anchor: { ratio: anchorRatio },
                },
              },
              signal ? { signal } : {},
            );
            try {
              for await (const ev of stream) {
                if (ev.event.case !== "progress" || ev.event.value.phase !== "train") continue;
                stepsDone.set(lineage, Number(ev.event.value.step));
                losses.set(lineage, ev.event.value.loss);
                bar.update(
                  [...stepsDone.values()].reduce((a, b) => a + b, 0),
                  `loss ${lineages.map((l) => (losses.has(l) ? losses.get(l)!.toFixed(3) : "-")).join(" / ")}`,
                );
              }
            } catch (cause) {
              const why = cause instanceof AutodidactError ? cause.rawMessage : String(cause);
              throw new AutodidactError(`round ${round}: training ${lineage} failed: ${why} (see ${join(o.stateDir, "logs", `trainer-${lineage}.log`)})`, cause instanceof AutodidactError ? cause.code : Code.Internal, { cause });
            }
          }),
        );
        bar.done(`loss ${lineages.map((l) => (losses.has(l) ? losses.get(l)!.toFixed(3) : "-")).join(" / ")}`);
        trainSeconds = lap();
        for (const lineage of lineages) {
          const candidate = (await registry.listCheckpoints(lineage)).find((c) => c.round === round && c.parentVersion > 0);
          const curve = ((candidate?.manifest["lossCurve"] ?? []) as { step: number; loss: number }[]).map((c) => [c.step, c.loss] as [number, number]);
          lineageRounds.push(await gateOutcome(registry, lineage, candidate?.version ?? 0, curve, evaluated, r, signal));
        }
      } else {
        for (const lineage of lineages) {
          const promoted = (await registry.getPromoted(lineage))!.version;
          lineageRounds.push({ lineage, candidateVersion: 0, promotedVersion: promoted, status: "no_candidate", reasons: ["nothing accepted yet: no training"], accuracyByLength: accuracyOf(await evaluated(lineage, promoted)), frontier: 0, loss: [] });
        }
      }
      const mine = lineageRounds[0]!;
      const promotedEval = accuracyOf(await evaluated(generatorLineage, mine.promotedVersion));
      const frontier = frontierOf(promotedEval, r.frontierThreshold, r.frontierFrom);
      const gateSeconds = lap();
      const row: DemoRound = {
        round,
        labelLength,
        proposed,
        accepted,
        acceptedLabelAccuracy: stats.accepted > 0 ? stats.correctAccepted / stats.accepted : null,
        proposedLabelAccuracy: stats.proposed > 0 ? stats.correctProposed / stats.proposed : null,
        poolSize: pool,
        accuracyByLength: promotedEval,
        frontier,
        status: mine.status,
        lineages: lineageRounds,
        seconds: (Date.now() - roundStart) / 1000,
        phaseSeconds: { serve: serveSeconds, propose: proposeSeconds, judge: judgeSeconds, train: trainSeconds, gate: gateSeconds },
      };
      run.rounds = [...run.rounds, row];
      run.seconds = (Date.now() - started) / 1000;
      printRow(out, lengths, {
        round,
        labelLength,
        proposed,
        accepted,
        acc: row.acceptedLabelAccuracy,
        propAcc: row.proposedLabelAccuracy,
        accuracy: promotedEval,
        frontier,
        status:
          lineageRounds.map((l) => `${l.status === "promoted" ? "P" : l.status === "rejected" ? "R" : "-"}`).join("") +
          ` ${row.seconds.toFixed(0)}s (train ${trainSeconds.toFixed(0)}, gate ${gateSeconds.toFixed(0)})`,
      });
      await o.onRound?.({ ...run });
      // The length curriculum (Lee et al.): one digit past what every lineage (the generator and the model
      // critics whose answers vote) has mastered, or past the longest length whose labels were mostly accepted.
      if (config.advance === "mastered") {
        const frontiers = await Promise.all(lineageRounds.map(async (l) => frontierOf(accuracyOf(await evaluated(l.lineage, l.promotedVersion)), r.frontierThreshold, r.frontierFrom)));
        labelLength = Math.max(Math.min(...frontiers), r.baseDigits) + 1;
      } else if (proposed > 0 && accepted / proposed >= r.minAcceptedShare) {
        longestAccepted = Math.max(longestAccepted, labelLength);
        labelLength = longestAccepted + 1;
      }
    }
    const audited = decisions.audit();
    out.write(`${audited.decidedTwice > 0 ? "warning: " : ""}decisions published: ${audited.samples} samples, ${audited.decidedTwice} decided more than once\n`);
    run.seconds = (Date.now() - started) / 1000;
    return { run: { ...run }, dashboardUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits for a candidate's gate outcome and reads its evaluation back from the monitor's records. */
async function gateOutcome(
  registry: Registry,
  lineage: string,
  candidateVersion: number,
  loss: [number, number][],
  evaluated: (lineage: string, version: number) => Promise<StoredEvaluationView>,
  r: DemoConfig["recipe"],
  signal: AbortSignal | undefined,
): Promise<LineageRound> {
  if (candidateVersion === 0) {
    const promoted = (await registry.getPromoted(lineage))!.version;
    return { lineage, candidateVersion: 0, promotedVersion: promoted, status: "no_candidate", reasons: ["the round produced no candidate"], accuracyByLength: accuracyOf(await evaluated(lineage, promoted)), frontier: 0, loss };
  }
  const record = await waitFor(
    async () => {
      const rec = await registry.getCheckpoint(lineage, candidateVersion);
      return rec !== undefined && rec.status !== "candidate" ? rec : undefined;
    },
    600_000,
    `the monitor's gate on ${lineage}@${candidateVersion}`,
    signal,
    300,
  );
  // The monitor moves the promoted pointer before it writes the status, so this is the gate's outcome.
  const promotedVersion = (await registry.getPromoted(lineage))!.version;
  const evaluation = await evaluated(lineage, candidateVersion);
  const accuracy = accuracyOf(evaluation);
  return {
    lineage,
    candidateVersion,
    promotedVersion,
    status: record.status === "promoted" ? "promoted" : record.status === "rolled_back" ? "rolled_back" : "rejected",
    reasons: evaluation.gate?.reasons ?? (record.status === "rejected" ? [record.statusReason] : []),
    accuracyByLength: accuracy,
    frontier: frontierOf(accuracy, r.frontierThreshold, r.frontierFrom),
    loss,
  };
}

/** Waits until the generator and every model critic serve their lineage's promoted version. */
async function waitForServing(
  registry: Registry,
  generator: RpcClient<typeof GeneratorService>,
  critics: { member: MeshMember; client: RpcClient<typeof CriticService> }[],
  lineages: readonly string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const want = new Map<string, number>();
  for (const l of lineages) want.set(l, (await registry.getPromoted(l))!.version);
  const serves = async (info: { models: { lineage: string; checkpointVersion: bigint }[] }): Promise<boolean> =>
    info.models.every((m) => m.lineage === "" || want.get(m.lineage) === undefined || Number(m.checkpointVersion) === want.get(m.lineage));
  await waitFor(
    async () => {
      if (!(await serves(await generator.getInfo({})))) return undefined;
      for (const c of critics) if (!(await serves(await c.client.getInfo({})))) return undefined;
      return true;
    },
    120_000,
    "the generator and critics to serve the promoted models",
    signal,
    200,
  );
}

/** The monitor's dashboard address, from the line it logs when the dashboard is up. */
async function dashboardAddress(stateDir: string): Promise<string | undefined> {
  for (let i = 0; i < 40; i++) {
    const log = await readFile(join(stateDir, "logs", "monitor.log"), "utf8").catch(() => "");
    const m = /"msg":"dashboard".*?"url":"([^"]+)"/.exec(log);
    if (m) return m[1];
    await sleep(250);
  }
  return undefined;
}

interface RowView {
  round: number;
  labelLength: number | null;
  proposed: number | null;
  accepted: number | null;
  acc: number | null;
  propAcc: number | null;
  accuracy: Accuracy;
  frontier: number;
  status: string;
}

function printHeader(out: DemoOutput, lengths: readonly number[]): void {
  const head = ["round", "len", "proposed", "accepted", "label acc % (acc/prop)", ...lengths.map((l) => `${l}d`), "frontier", "gate"];
  out.write(`\n${head.map((h, i) => (i === 4 ? h.padEnd(22) : h.padStart(i < 4 ? 8 : 4))).join(" ")}\n`);
}

function printRow(out: DemoOutput, lengths: readonly number[], v: RowView): void {
  const acc = new Map(v.accuracy.map((a) => [a.length, a.accuracy]));
  const cells = [
    String(v.round).padStart(8),
    (v.labelLength === null ? "-" : String(v.labelLength)).padStart(8),
    (v.proposed === null ? "-" : String(v.proposed)).padStart(8),
    (v.accepted === null ? "-" : String(v.accepted)).padStart(8),
    (v.acc === null && v.propAcc === null ? "-" : `${pct(v.acc)} / ${pct(v.propAcc)}`).padEnd(22),
    ...lengths.map((l) => pct(acc.get(l)).padStart(4)),
    String(v.frontier).padStart(4),
    v.status,
  ];
  out.write(`${cells.join(" ")}\n`);
}
