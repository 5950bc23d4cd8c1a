import type { ServiceRole } from "./roles.js";
import { Streams, type StreamName } from "./streams.js";
import { Subjects } from "./subjects.js";

/** Who publishes to a subject pattern of a stream. */
export interface Publication {
  readonly subject: string;
  readonly stream: StreamName;
  readonly publishers: readonly ServiceRole[];
  /** No other role may publish it, not even if an allow list is widened by mistake. */
  readonly exclusive: boolean;
  readonly purpose: string;
}

/** Every publication of the mesh: the data each role produces. */
export const PUBLICATIONS: readonly Publication[] = [
  { subject: Subjects.allProposed, stream: Streams.Samples, publishers: ["generator"], exclusive: true, purpose: "proposed samples" },
  { subject: Subjects.allVerdicts, stream: Streams.Verdicts, publishers: ["critic"], exclusive: true, purpose: "verdicts" },
  { subject: Subjects.allDecisions, stream: Streams.Decisions, publishers: ["consensus"], exclusive: true, purpose: "decisions: only consensus decides" },
  {
    subject: Subjects.checkpoints("candidate"),
    stream: Streams.Checkpoints,
    publishers: ["trainer"],
    exclusive: false,
    purpose: "a registered candidate checkpoint for the monitor to gate (work: the monitor's durable consumes it)",
  },
  { subject: Subjects.checkpoints("round"), stream: Streams.Checkpoints, publishers: ["trainer"], exclusive: false, purpose: "round progress and reports" },
  {
    subject: Subjects.allPromotionAudits,
    stream: Streams.Checkpoints,
    publishers: ["monitor"],
    exclusive: true,
    purpose:
      "audit records of promotions and rollbacks, published after the promoted pointer moved; nothing acts on them " +
      "(the promotion signal is the registry's promoted pointer)",
  },
  { subject: Subjects.allRunEvents, stream: Streams.Runs, publishers: ["conductor"], exclusive: true, purpose: "the events of runs of the loop" },
];

/** A core (non-JetStream) subscription a role makes. */
export interface Subscription {
  readonly subject: string;
  readonly subscribers: readonly ServiceRole[];
  readonly purpose: string;
}

/** Every core subscription of the mesh besides request replies. */
export const SUBSCRIPTIONS: readonly Subscription[] = [
  { subject: Subjects.allDecisions, subscribers: ["critic"], purpose: "agreement metrics: a critic watches decisions (read-only)" },
];
