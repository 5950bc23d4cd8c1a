/**
 * A consensus worker in a process of its own, for the crash test (worker-crash.test.ts): it can be
 * SIGKILLed while it holds messages in memory. Prints its stats as one JSON line every 50 ms.
 * Usage: `node --import tsx worker-crash-child.ts <nats-url> <options-json>`, where the options are
 * `{ id, policy, tasks, verdictsDurable, samplesDurable, ackWaitMs, flushAfterMs, hangDecisionPublish? }`;
 * with `hangDecisionPublish`, publishes to `decisions.>` never complete (a worker that dies after
 * storing a decision and before publishing it).
 */
import { connectBus, type Bus } from "../../src/platform/bus/index.js";
import { createConsensusPolicy, type ConsensusPolicySpec } from "../../src/domain/consensus/index.js";
import { createConsensusWorker } from "./worker.js";

interface ChildOptions {
  id: string;
  policy: ConsensusPolicySpec;
  tasks: string[];
  verdictsDurable: string;
  samplesDurable: string;
  ackWaitMs: number;
  flushAfterMs: number;
  hangDecisionPublish?: boolean;
}

const [url, json] = process.argv.slice(2);
if (url === undefined || json === undefined) throw new Error("usage: worker-crash-child.ts <nats-url> <options-json>");
const opts = JSON.parse(json) as ChildOptions;
const connected = await connectBus({ servers: url, name: opts.id });
const bus: Bus = opts.hangDecisionPublish
  ? { ...connected, publish: (subject, data, o) => (subject.startsWith("decisions.") ? new Promise(() => undefined) : connected.publish(subject, data, o)) }
  : connected;
const policy = createConsensusPolicy(opts.policy);
const worker = await createConsensusWorker({ ...opts, bus, policyProvider: () => policy, sweepIntervalMs: 100 });
setInterval(() => process.stdout.write(`${JSON.stringify(worker.stats())}\n`), 50);
