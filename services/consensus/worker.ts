// The consensus worker: its parts wired together (ledger, intake, merge and fast paths, publisher,
// sweeper, agreement metrics) behind the small ConsensusWorker interface.
import { trace } from "@opentelemetry/api";
import type { ConsumerSpec } from "../../src/platform/bus/index.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";
import { createLogger } from "../../src/platform/telemetry/index.js";
import { AgreementMetrics } from "./agreement-metrics.js";
import { DecisionBuilder } from "./decisions.js";
import { DueWork } from "./due-work.js";
import { MemoryDecider } from "./fast-path.js";
import { Intake } from "./intake.js";
import { ConsensusLedger } from "./ledger.js";
import { RecordMerger } from "./merge.js";
import type { MessageKind } from "./messages.js";
import { consensusInstruments } from "./metrics.js";
import { DecisionPublisher } from "./publisher.js";
import { Sweeper } from "./sweeper.js";
import { newCounters, workerSettings, type ConsensusWorker, type ConsensusWorkerOptions, type WorkerSettings } from "./worker-options.js";

/**
 * The durable consumers of a worker: one per kind, or one per kind and task with `tasks`. Held
 * messages count against the server's ack-pending cap, shared by the workers of a durable.
 */
function consumerSpecs(s: WorkerSettings): Record<MessageKind, ConsumerSpec[]> {
  const maxAckPending = Math.max(10_000, 4 * s.maxConcurrency);
  const spec = (stream: string, durable: string, filterSubject: string): ConsumerSpec => ({
    stream,
    durable,
    filterSubject,
    maxDeliver: s.maxDeliver,
    maxAckPending,
    ...(s.ackWaitMs === undefined ? {} : { ackWaitMs: s.ackWaitMs }),
    description: "consensus worker",
  });
  return {
    vote:
      s.tasks === undefined
        ? [spec(Streams.Verdicts, s.verdictsDurable, Subjects.allVerdicts)]
        : s.tasks.map((t) => spec(Streams.Verdicts, `${s.verdictsDurable}-${t}`, Subjects.verdicts(t))),
    sample:
      s.tasks === undefined
        ? [spec(Streams.Samples, s.samplesDurable, Subjects.allProposed)]
        : s.tasks.map((t) => spec(Streams.Samples, `${s.samplesDurable}-${t}`, Subjects.proposed(t))),
  };
}

/**
 * Starts a consensus worker: it consumes `verdicts.>` and `samples.proposed.>` from durable
 * consumers and holds each sample's messages unacked in memory. When they suffice to decide (with
 * `evaluateVotes`), the decided record is stored with ONE KV create under the sample id and the
 * Decision published to `decisions.<task>` with the sample id as message id; only then are the
 * messages acked, so a crash loses nothing (they are redelivered). When they do not suffice within
 * `flushAfterMs` (or the consumer is full, or the key already exists because the sample's messages
 * went to several workers), they are merged into the shared record with compare-and-set instead.
 * Create-if-absent and the CAS transition from pending to decided are the gate: only the worker
 * whose write lands publishes, so however many workers race over the same verdicts, each sample
 * gets one decision. A sweeper decides timed-out samples and re-publishes decisions a crashed
 * worker stored but never published.
 *
 * Sample ids must be KV- and subject-safe (`[A-Za-z0-9_-]`, e.g. UUIDs); a verdict's `score` is
 * used as sent (weighted `mean_score` policies need critics to fill it). Malformed messages go to
 * `poison.<stream>`; the worker keeps going.
 */
export async function createConsensusWorker(options: ConsensusWorkerOptions): Promise<ConsensusWorker> {
  const { bus, policyProvider } = options;
  const settings = workerSettings(options);
  const log = createLogger("consensus", { worker: settings.id });
  const tracer = trace.getTracer("autodidact.consensus");
  const instruments = consensusInstruments();
  const counters = newCounters();
  const agreement = new AgreementMetrics(instruments, settings.agreementWindow);
  const ledger = await ConsensusLedger.open(bus, settings.kvTimeoutMs);
  const due = new DueWork();
  const builder = new DecisionBuilder(settings.id);
  const publisher = new DecisionPublisher({ bus, ledger, due, agreement, counters, log, onDecision: options.onDecision });
  const merger = new RecordMerger({ ledger, builder, publisher, due, policyProvider, counters, instruments, log, republishGraceMs: settings.republishGraceMs });
  const memory = new MemoryDecider({ ledger, builder, publisher, due, counters, instruments, log });
  const intake = new Intake({ settings, policyProvider, memory, merger, counters, tracer, log }, bus);
  const specs = consumerSpecs(settings);
  try {
    await intake.start(bus, specs);
  } catch (err) {
    await intake.stopConsumers();
    throw err;
  }
  const sweeper = new Sweeper({ bus, settings, ledger, due, merger, verdictSpecs: specs.vote, tracer, log });
  agreement.register();
  sweeper.start();

  let stopped = false;
  let unregister = (): void => undefined;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    intake.beginStop();
    sweeper.halt();
    agreement.unregister();
    await intake.stopConsumers();
    await sweeper.idle();
    await publisher.settled();
  };
  unregister = bus.onClose(stop);

  return {
    id: settings.id,
    sweep: (full) => sweeper.sweep(full),
    stats: () => ({ ...counters, held: intake.windows.heldTotal }),
    agreement: (task) => agreement.report(task),
    stop,
  };
}
