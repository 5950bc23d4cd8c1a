import type { ConsumerSpec } from "../../platform/bus/index.js";
import type { MeshIdentity, ServiceRole } from "./roles.js";
import { Streams, type StreamName } from "./streams.js";
import { Subjects } from "./subjects.js";

/**
 * A durable consumer of the mesh: which stream it reads, with which filter, and which role binds
 * it. Permissions grant each role exactly the durables declared for it (permissions.ts), so a
 * service cannot bind a durable nobody declared without the permission test failing.
 */
export interface DurableDeclaration {
  /** Key in {@link Durables}. */
  readonly key: string;
  readonly stream: StreamName;
  readonly filterSubject: string;
  /** The role whose processes bind it. */
  readonly role: ServiceRole;
  /** Roles that list and read this stream's consumers (lag) without consuming. */
  readonly observers: readonly ServiceRole[];
  readonly purpose: string;
  /** The durable name an identity of `role` is granted (`*` = any durable on the stream). */
  grantedName(identity: MeshIdentity): string;
}

/** A durable with one fixed name (or a configurable name with this default). */
export interface NamedDurable extends DurableDeclaration {
  /** The name; for a configurable durable, the default. */
  readonly name: string;
  /** The consumer spec services pass to `consume` (stream, durable, filter from the declaration). */
  spec(name?: string): ConsumerSpec & { filterSubject: string };
}

/** A durable whose name is derived from a parameter (a critic id). */
export interface ParametricDurable extends DurableDeclaration {
  /** The name of the durable for a parameter. */
  name(param: string): string;
  /** Whether a consumer name is one of this family (e.g. to watch every critic's lag). */
  matches(consumerName: string): boolean;
  spec(param: string): ConsumerSpec & { filterSubject: string };
}

function named(
  key: string,
  d: { name: string; stream: StreamName; filterSubject: string; role: ServiceRole; purpose: string; observers?: readonly ServiceRole[] },
  grantedName: (identity: MeshIdentity, name: string) => string = (_identity, name) => name,
): NamedDurable {
  return {
    key,
    name: d.name,
    stream: d.stream,
    filterSubject: d.filterSubject,
    role: d.role,
    observers: d.observers ?? [],
    purpose: d.purpose,
    grantedName: (identity) => grantedName(identity, d.name),
    spec: (name = d.name) => ({ stream: d.stream, durable: name, filterSubject: d.filterSubject }),
  };
}

const CRITIC_PREFIX = "critic-";
const criticName = (criticId: string): string => `${CRITIC_PREFIX}${criticId.replace(/[^A-Za-z0-9_-]/g, "_")}`;

const critic: ParametricDurable = {
  key: "critic",
  stream: Streams.Samples,
  filterSubject: Subjects.allProposed,
  role: "critic",
  // The generator backs off on the critics' backlog.
  observers: ["generator"],
  purpose: "one per critic id (`critic-<id>`): every replica of a critic shares it, so each sample is judged once per critic",
  name: criticName,
  matches: (consumerName) => consumerName.startsWith(CRITIC_PREFIX),
  spec: (criticId) => ({ stream: Streams.Samples, durable: criticName(criticId), filterSubject: Subjects.allProposed }),
  grantedName: (identity) => (identity.criticId === undefined ? "*" : criticName(identity.criticId)),
};

/** The durable consumers of the mesh; services take names, streams and filters only from here. */
export const Durables = {
  critic,
  consensusVerdicts: named("consensusVerdicts", {
    name: "consensus-verdicts",
    stream: Streams.Verdicts,
    filterSubject: Subjects.allVerdicts,
    role: "consensus",
    purpose: "every verdict, shared by the consensus workers",
  }),
  consensusSamples: named("consensusSamples", {
    name: "consensus-samples",
    stream: Streams.Samples,
    filterSubject: Subjects.allProposed,
    role: "consensus",
    purpose: "every proposed sample (a decision carries its sample), shared by the consensus workers",
  }),
  trainer: named(
    "trainer",
    {
      name: "trainer",
      stream: Streams.Decisions,
      filterSubject: Subjects.allDecisions,
      role: "trainer",
      purpose: "the trainer's intake of decisions (name configurable with the trainer's --durable)",
      // The conductor trains a round once the intake has acknowledged the round's decisions.
      observers: ["conductor"],
    },
    (identity, name) => identity.trainerDurable ?? name,
  ),
  monitorCandidates: named("monitorCandidates", {
    name: "monitor-candidates",
    stream: Streams.Checkpoints,
    filterSubject: Subjects.checkpoints("candidate"),
    role: "monitor",
    purpose: "candidate checkpoints the monitor evaluates and gates",
  }),
  monitorRoundStats: named("monitorRoundStats", {
    name: "monitor-round-stats",
    stream: Streams.Decisions,
    filterSubject: Subjects.allDecisions,
    role: "monitor",
    purpose: "decisions the monitor judges against the verifier for per-round statistics",
  }),
} as const;

/** Every durable of the mesh. */
export const DURABLES: readonly DurableDeclaration[] = Object.values(Durables);
