import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { Subscription } from "@nats-io/transport-node";
import { consume, type Bus, type BusMessage, type ConsumerHandle } from "../../src/platform/bus/index.js";
import { Durables, Subjects } from "../../src/domain/topology/index.js";
import { agreementReport, judgedSampleFromDecision, type JudgedSample } from "../../src/domain/consensus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { CriticAgreementSchema, DecisionSchema, PairwiseAgreementSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { GetAgreementResponseSchema, type GetAgreementResponse } from "../../src/gen/autodidact/v1/critic_pb.js";
import { SampleSchema, VerdictSchema, type Sample, type Verdict } from "../../src/gen/autodidact/v1/sample_pb.js";
import { getTaskPack, type TaskPack } from "../../src/domain/tasks/index.js";
import { getGamePack, isGameTask } from "../../src/domain/games/index.js";
import { createLogger, getMeter, type Logger } from "../../src/platform/telemetry/index.js";
import type { Judge } from "./judges.js";

const SAMPLE_ID = /^[A-Za-z0-9_-]{1,200}$/;
const TASK = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Longest completion judged, in characters: far above any task's answers (tens of characters) yet a
 * bound on what a forged sample can make a model critic tokenize and run.
 */
export const MAX_COMPLETION_CHARS = 4096;
const MALFORMED = new Set<Code>([Code.InvalidArgument, Code.OutOfRange, Code.NotFound]);

/** Options of {@link createCritic}. */
export interface CriticOptions {
  readonly bus: Bus;
  /** Stable critic id: one vote per critic per sample; replicas of one critic share it. */
  readonly criticId: string;
  readonly judge: Judge;
  /** Durable on the samples stream; default `Durables.critic.name(criticId)` so replicas share the work. */
  readonly durable?: string;
  /** Samples judged at once by this process (default 16). */
  readonly maxInFlight?: number;
  /** Deliveries before a sample that keeps failing is terminated as poison (default 5). */
  readonly maxDeliver?: number;
  /** AckWait of the durable, in ms (default 30 s). */
  readonly ackWaitMs?: number;
  /** Decisions kept per task for GetAgreement (default 1000). */
  readonly agreementWindow?: number;
  readonly logger?: Logger;
}

/** Counters of a running critic, for tests and status. */
export interface CriticStats {
  judged: number;
  approved: number;
  /** Samples rejected because they were malformed for this critic. */
  malformed: number;
  /** Verdicts published to `verdicts.<task>`. */
  published: number;
  decisionsSeen: number;
}

/** A critic instance: judges samples from the bus and on demand, and watches decisions for agreement. */
export interface Critic {
  readonly id: string;
  readonly kind: string;
  readonly durable: string;
  /** Judges one sample now without publishing (the Score RPC). InvalidArgument when it has no usable id. */
  score(sample: Sample): Promise<Verdict>;
  /** Starts consuming `samples.proposed.>` and watching `decisions.>`. */
  start(): Promise<void>;
  /** Agreement over the last `window` decisions of `task` ("" = every task) this critic observed. */
  agreement(task: string, window?: number): GetAgreementResponse;
  stats(): Readonly<CriticStats>;
  /** Stops consuming (in-flight samples finish and ack) and watching. */
  stop(): Promise<void>;
}

function errorMessage(err: unknown): string {
  if (err instanceof AutodidactError) return err.rawMessage;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates a critic around one {@link Judge}. Exists so that every critic kind shares the same
 * guarantees: each proposed sample is judged once per critic id (replicas share a durable), the
 * verdict goes to `verdicts.<task>` with message id `<sampleId>:<criticId>` (a redelivery after a
 * crash publishes a duplicate the server drops), a malformed sample is rejected with a reason, and a
 * message that cannot even be decoded is terminated as poison instead of being retried forever.
 */
export function createCritic(options: CriticOptions): Critic {
  const { bus, criticId, judge } = options;
  const logger = options.logger ?? createLogger("critic");
  const durable = options.durable ?? Durables.critic.name(criticId);
  const capacity = options.agreementWindow ?? 1000;
  const stats: CriticStats = { judged: 0, approved: 0, malformed: 0, published: 0, decisionsSeen: 0 };
  const meter = getMeter("autodidact.critic");
  const verdictCounter = meter.createCounter("autodidact.critic.verdicts", { description: "verdicts by outcome" });
  const latency = meter.createHistogram("autodidact.critic.latency", { description: "time to judge one sample", unit: "ms" });
  /** A decision seen on `decisions.>`, decoded only when needed (GetAgreement, or a judge that learns from accepted samples). */
  interface Observed {
    data: Uint8Array;
    /** Null: undecodable. */
    judged?: (JudgedSample & { kinds: Map<string, { kind: string; version: string }> }) | null;
  }
  const windows = new Map<string, Observed[]>();
  const judgedOf = (o: Observed, decision?: Decision): Observed["judged"] => {
    if (o.judged !== undefined) return o.judged;
    try {
      const d = decision ?? fromBinary(DecisionSchema, o.data);
      o.judged = { ...judgedSampleFromDecision(d), kinds: new Map(d.votes.map((v) => [v.criticId, { kind: v.criticKind, version: v.criticModelVersion }])) };
    } catch (err) {
      logger.debug("ignoring an undecodable decision", { error: errorMessage(err) });
      o.judged = null;
    }
    return o.judged;
  };
  let consumer: ConsumerHandle | undefined;
  let subscription: Subscription | undefined;

  const reject = (sample: Sample, reason: string, t0: number): Verdict => {
    stats.malformed++;
    return verdict(sample, { approve: false, score: 0, reason: `malformed sample: ${reason}`, modelVersion: "" }, t0);
  };

  const verdict = (sample: Sample, j: { approve: boolean; score: number; reason: string; modelVersion: string }, t0: number): Verdict => {
    const latencyMs = performance.now() - t0;
    stats.judged++;
    if (j.approve) stats.approved++;
    verdictCounter.add(1, { critic: criticId, kind: judge.kind, approve: j.approve });
    latency.record(latencyMs, { critic: criticId, kind: judge.kind });
    return create(VerdictSchema, {
      sampleId: sample.id,
      criticId,
      criticKind: judge.kind,
      criticModelVersion: j.modelVersion,
      approve: j.approve,
      score: Number.isFinite(j.score) ? Math.min(1, Math.max(0, j.score)) : 0,
      reason: j.reason,
      latencyMs,
      createdAt: timestampNow(),
      task: sample.task,
    });
  };

  const judgeSample = async (sample: Sample): Promise<Verdict> => {
    const t0 = performance.now();
    if (!SAMPLE_ID.test(sample.id)) {
      throw new AutodidactError(`sample has no usable id ${JSON.stringify(sample.id.slice(0, 80))}: use [A-Za-z0-9_-]`, Code.InvalidArgument);
    }
    if (!TASK.test(sample.task)) throw new AutodidactError(`sample ${sample.id} has an invalid task ${JSON.stringify(sample.task.slice(0, 80))}`, Code.InvalidArgument);
    if (isGameTask(sample.task)) return judgeGameSample(sample, t0);
    let task: TaskPack;
    try {
      task = getTaskPack(sample.task);
    } catch (err) {
      return reject(sample, errorMessage(err), t0);
    }
    if (sample.prompt.length === 0) return reject(sample, "empty prompt", t0);
    const maxPrompt = task.maxPromptLength(task.difficulty.max);
    if (sample.prompt.length > maxPrompt) {
      return reject(sample, `prompt has ${sample.prompt.length} characters, task ${task.name} allows at most ${maxPrompt}`, t0);
    }
    if (sample.completion.length > MAX_COMPLETION_CHARS) {
      return reject(sample, `completion has ${sample.completion.length} characters, at most ${MAX_COMPLETION_CHARS} are judged`, t0);
    }
    try {
      return verdict(sample, await judge.judge(sample, task), t0);
    } catch (err) {
      if (err instanceof AutodidactError && MALFORMED.has(err.code)) return reject(sample, errorMessage(err), t0);
      throw err;
    }
  };

  /** A game task's sample: only a judge with a game method judges it (the rules judge replays the record). */
  const judgeGameSample = async (sample: Sample, t0: number): Promise<Verdict> => {
    if (judge.judgeGame === undefined) return reject(sample, `critic kind ${judge.kind} does not judge games`, t0);
    if (sample.game === undefined) return reject(sample, `a ${sample.task} sample must carry its game record`, t0);
    try {
      return verdict(sample, await judge.judgeGame(sample, getGamePack(sample.task)), t0);
    } catch (err) {
      if (err instanceof AutodidactError && MALFORMED.has(err.code)) return reject(sample, errorMessage(err), t0);
      throw err;
    }
  };

  const handle = async (msg: BusMessage): Promise<void> => {
    let sample: Sample;
    try {
      sample = fromBinary(SampleSchema, msg.data);
    } catch (err) {
      throw new AutodidactError(`${msg.subject}#${msg.seq} is not a Sample: ${errorMessage(err)}`, Code.InvalidArgument, { cause: err });
    }
    const subjectTask = msg.subject.slice(msg.subject.lastIndexOf(".") + 1);
    let v: Verdict;
    if (sample.task !== subjectTask && SAMPLE_ID.test(sample.id) && TASK.test(subjectTask)) {
      // Route the rejection by the subject so the decider of that task sees it.
      v = reject(create(SampleSchema, { ...sample, task: subjectTask }), `task ${JSON.stringify(sample.task)} does not match subject ${msg.subject}`, performance.now());
    } else {
      v = await judgeSample(sample);
    }
    await bus.publish(Subjects.verdicts(v.task), toBinary(VerdictSchema, v), { msgId: `${v.sampleId}:${criticId}` });
    stats.published++;
  };

  // Every critic sees every decision: keep the bytes (the task is the subject's last token) and
  // decode only for a judge that learns from accepted samples, or when agreement is asked for.
  const observe = (subject: string, data: Uint8Array): void => {
    const o: Observed = { data };
    if (judge.noteAccepted !== undefined) {
      let decision: Decision;
      try {
        decision = fromBinary(DecisionSchema, data);
      } catch (err) {
        logger.debug("ignoring an undecodable decision", { error: errorMessage(err) });
        return;
      }
      judgedOf(o, decision);
      if (decision.accepted && decision.sample !== undefined) judge.noteAccepted(decision.sample);
    }
    stats.decisionsSeen++;
    for (const key of ["", subject.slice(subject.lastIndexOf(".") + 1)]) {
      let ring = windows.get(key);
      if (ring === undefined) windows.set(key, (ring = []));
      ring.push(o);
      // Trimmed in chunks: one splice per `capacity` decisions, not one per decision.
      if (ring.length > 2 * capacity) ring.splice(0, ring.length - capacity);
    }
  };

  return {
    id: criticId,
    kind: judge.kind,
    durable,
    score: judgeSample,
    async start() {
      if (consumer !== undefined) return;
      subscription = bus.nc.subscribe(Subjects.allDecisions, { callback: (err, m) => (err === null ? observe(m.subject, m.data) : undefined) });
      consumer = await consume(
        bus,
        {
          ...Durables.critic.spec(criticId),
          durable,
          maxDeliver: options.maxDeliver ?? 5,
          ackWaitMs: options.ackWaitMs ?? 30_000,
          description: `critic ${criticId} (${judge.kind})`,
        },
        handle,
        // Fast acks: verdicts are published with a msgId, so a redelivery after a lost ack is deduplicated.
        { maxInFlight: options.maxInFlight ?? 16, ackMode: "fast", logger },
      );
    },
    agreement(task, window = 0) {
      const ring = (windows.get(task) ?? []).slice(-capacity);
      const slice = (window > 0 ? ring.slice(-window) : ring).map((o) => judgedOf(o)).filter((j) => j !== null && j !== undefined);
      const report = agreementReport(slice);
      const meta = new Map<string, { kind: string; version: string }>();
      for (const s of slice) for (const [id, m] of s.kinds) meta.set(id, m);
      const accepted = slice.filter((s) => s.accepted === true).length;
      return create(GetAgreementResponseSchema, {
        critics: report.critics.map((c) =>
          create(CriticAgreementSchema, {
            criticId: c.criticId,
            criticKind: meta.get(c.criticId)?.kind ?? "",
            criticModelVersion: meta.get(c.criticId)?.version ?? "",
            votes: BigInt(c.votes),
            approvals: BigInt(c.approvals),
            approvalRate: c.approvalRate,
            agreementWithDecision: c.agreementWithDecision ?? Number.NaN,
          }),
        ),
        pairwise: report.pairs.map((p) =>
          create(PairwiseAgreementSchema, {
            criticA: p.criticA,
            criticB: p.criticB,
            bothVoted: BigInt(p.bothVoted),
            agreement: p.agreement ?? Number.NaN,
            cohenKappa: p.cohenKappa ?? Number.NaN,
          }),
        ),
        fleissKappa: report.fleissKappa ?? Number.NaN,
        decisions: BigInt(slice.length),
        acceptanceRate: slice.length === 0 ? 0 : accepted / slice.length,
      });
    },
    stats: () => ({ ...stats }),
    async stop() {
      subscription?.unsubscribe();
      subscription = undefined;
      const c = consumer;
      consumer = undefined;
      await c?.stop();
    },
  };
}
