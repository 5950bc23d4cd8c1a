import type { StreamDeclaration } from "../../platform/bus/index.js";
import type { ServiceRole } from "./roles.js";
import { Subjects } from "./subjects.js";

/** Stream names, in one place so no service spells them differently. */
export const Streams = {
  /** Samples proposed by the generator, one subject per task. */
  Samples: "SAMPLES",
  /** One verdict per (sample, critic). */
  Verdicts: "VERDICTS",
  /** One consensus decision per sample. */
  Decisions: "DECISIONS",
  /** Checkpoint work (candidates, round events) and the monitor's promotion audit records. */
  Checkpoints: "CHECKPOINTS",
  /** Messages a consumer gave up on (malformed or retries exhausted), kept for inspection. */
  Poison: "POISON",
  /** The events of every run of the loop, one subject per run (the conductor's). */
  Runs: "RUNS",
} as const;
/** A stream name of the mesh. */
export type StreamName = (typeof Streams)[keyof typeof Streams];

/** A stream of the mesh. */
export interface MeshStream extends StreamDeclaration {
  readonly name: StreamName;
  /**
   * Roles that read single messages by sequence (and the next one on a subject from a sequence), with
   * no consumer: read-only, and unlike an ordered consumer's grant it cannot pull from a durable.
   */
  readonly messageReaders?: readonly ServiceRole[];
  /**
   * Roles that read the stream with ephemeral ordered consumers. Their grant covers consumers of any
   * name, so only a stream without declared durables may list readers (permissions.test.ts checks it).
   */
  readonly readers?: readonly ServiceRole[];
}

/** The streams of the mesh: name, what each captures, and why it exists. */
export const STREAMS: readonly MeshStream[] = [
  {
    name: Streams.Samples,
    subjects: [Subjects.allProposed],
    purpose: "samples proposed by the generator (samples.proposed.<task>), judged once per critic id",
  },
  { name: Streams.Verdicts, subjects: [Subjects.allVerdicts], purpose: "one verdict per (sample, critic) (verdicts.<task>), for consensus" },
  {
    name: Streams.Decisions,
    subjects: [Subjects.allDecisions],
    purpose: "one consensus decision per sample (decisions.<task>): the trainer's intake and the monitor's round statistics",
    // The conductor counts a round's decisions (never pulls from a durable).
    messageReaders: ["conductor"],
  },
  {
    name: Streams.Checkpoints,
    subjects: [Subjects.allCheckpoints],
    purpose:
      "checkpoint work: candidates the monitor gates (checkpoints.candidate) and round events (checkpoints.round); " +
      "plus the monitor's audit records of promotions and rollbacks (checkpoints.audit.<event>), which nothing acts on",
  },
  { name: Streams.Poison, subjects: [Subjects.allPoison], purpose: "messages a consumer terminated (poison.<stream>), kept for inspection" },
  {
    name: Streams.Runs,
    subjects: [Subjects.allRunEvents],
    purpose: "the events of each run of the loop (runs.<id>.events, message id <id>:<seq>): what WatchRun replays and follows",
    readers: ["conductor"],
  },
];
