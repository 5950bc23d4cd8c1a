import { KvBuckets, ObjectBuckets, Streams, Subjects } from "../bus/index.js";
import { AutodidactError, Code } from "../errors/index.js";

/**
 * The identities of the mesh. Each process connects to NATS as one of them; the server enforces
 * what it may publish and subscribe to, so a compromised or misconfigured process cannot write
 * what its role does not produce (DESIGN.md: only consensus decides, only the monitor promotes).
 */
export const MESH_ROLES = ["generator", "critic", "consensus", "trainer", "monitor", "admin"] as const;
/** One of {@link MESH_ROLES}. */
export type MeshRole = (typeof MESH_ROLES)[number];

/** One NATS user of the mesh: a role, plus the names that narrow its grants (durables). */
export interface MeshIdentity {
  /** User name, unique in the mesh (`critic-a`); also the credentials file name. */
  name: string;
  role: MeshRole;
  /**
   * critic: the critic id whose durable (`critic-<id>`) this user may consume with; when absent,
   * any durable on SAMPLES (`*`), for deployments where one credential serves several critics.
   */
  criticId?: string;
  /** trainer: its durable on DECISIONS (default `trainer`, the trainer's `--durable`). */
  trainerDurable?: string;
}

/** Allow / deny subject lists for one direction, as nats-server's `permissions` block takes them. */
export interface SubjectRules {
  allow: string[];
  deny: string[];
}

/** The NATS permissions of one identity. */
export interface NatsPermissions {
  publish: SubjectRules;
  subscribe: SubjectRules;
}

/** Durable consumer names the services bind; permissions name them exactly. */
export const Durables = {
  /** services/critic: `critic-<criticId>` (criticDurable). */
  critic: (criticId: string): string => `critic-${criticId.replace(/[^A-Za-z0-9_-]/g, "_")}`,
  consensusVerdicts: "consensus-verdicts",
  consensusSamples: "consensus-samples",
  trainer: "trainer",
  monitorCandidates: "monitor-candidates",
  monitorRoundStats: "monitor-round-stats",
} as const;

/**
 * Registry KV key spaces (`$KV.registry.<key>`), by who writes them. Kept beside the permissions so
 * a new key space is a deliberate grant; tests check that the services' key builders match.
 */
export const RegistryKeys = {
  /** `promoted.<lineage>`: the promoted pointer. Only the monitor moves it. */
  promoted: "promoted.>",
  /** `version.<lineage>`: the version counter the trainer allocates from. */
  versionCounter: "version.>",
  /** `checkpoint.<lineage>.<version>`: records (trainer creates, monitor sets the status). */
  checkpoint: "checkpoint.>",
  /** `consensus-policy.<name>`: consensus policies (the monitor's SetConsensusPolicy). */
  consensusPolicy: "consensus-policy.>",
  /** `monitor.…`: evaluations, gating policy, round statistics. */
  monitor: "monitor.>",
} as const;

const API = "$JS.API";
const kvStream = (bucket: string): string => `KV_${bucket}`;
const objStream = (bucket: string): string => `OBJ_${bucket}`;
const kvSubject = (bucket: string, keys: string): string => `$KV.${bucket}.${keys}`;

/** Every stream the services verify at start (ensureTopology: stream info only, never create). */
function topologyStreams(): string[] {
  return [
    ...Object.values(Streams),
    ...Object.values(KvBuckets).map(kvStream),
    ...Object.values(ObjectBuckets).map(objStream),
  ];
}

/** What every service needs: account info, verifying the topology, and replies on its inbox. */
function base(): NatsPermissions {
  return {
    publish: { allow: [`${API}.INFO`, ...topologyStreams().map((s) => `${API}.STREAM.INFO.${s}`)], deny: [] },
    subscribe: { allow: ["_INBOX.>"], deny: [] },
  };
}

/**
 * A durable pull consumer: look it up, create / update it (both API forms nats.js may use), pull
 * from it, acknowledge, and record a poison message on `poison.<stream>`.
 */
function durableConsumer(stream: string, durable: string): string[] {
  return [
    `${API}.CONSUMER.INFO.${stream}.${durable}`,
    `${API}.CONSUMER.CREATE.${stream}.${durable}`,
    `${API}.CONSUMER.CREATE.${stream}.${durable}.>`,
    `${API}.CONSUMER.DURABLE.CREATE.${stream}.${durable}`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.${durable}`,
    `$JS.ACK.${stream}.${durable}.>`,
    Subjects.poison(stream),
  ];
}

/**
 * Reading a KV or object store stream: stream info, message get (direct and API), and the
 * ephemeral ordered consumers nats.js uses for `keys`, `watch` and object reads (with flow control).
 * Read-only: none of these subjects stores or removes a message.
 */
function streamReader(stream: string): string[] {
  return [
    `${API}.STREAM.INFO.${stream}`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
    `${API}.CONSUMER.CREATE.${stream}`,
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.INFO.${stream}.>`,
    `${API}.CONSUMER.DELETE.${stream}.>`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

const registryRead = (): string[] => streamReader(kvStream(KvBuckets.Registry));
const checkpointsRead = (): string[] => streamReader(objStream(ObjectBuckets.Checkpoints));

/**
 * Subjects only one role may publish to. Every other role gets them as explicit denies, so the
 * rule "only consensus decides" holds even if an allow list is later widened by mistake.
 */
const EXCLUSIVE: ReadonlyArray<{ owner: MeshRole; subjects: string[] }> = [
  { owner: "generator", subjects: [Subjects.allProposed] },
  { owner: "critic", subjects: [Subjects.allVerdicts] },
  { owner: "consensus", subjects: [Subjects.allDecisions, kvSubject(KvBuckets.Consensus, ">")] },
  { owner: "monitor", subjects: [kvSubject(KvBuckets.Registry, RegistryKeys.promoted), Subjects.checkpoints("promoted"), Subjects.checkpoints("rolled_back")] },
];

function grants(identity: MeshIdentity): { publish: string[]; subscribe: string[] } {
  switch (identity.role) {
    case "generator":
      return {
        // Proposes samples; backs off on the critics' backlog (lists and reads SAMPLES consumers);
        // follows the promoted checkpoint (registry and checkpoint files, read-only).
        publish: [
          Subjects.allProposed,
          `${API}.CONSUMER.LIST.${Streams.Samples}`,
          `${API}.CONSUMER.NAMES.${Streams.Samples}`,
          `${API}.CONSUMER.INFO.${Streams.Samples}.*`,
          ...registryRead(),
          ...checkpointsRead(),
        ],
        subscribe: [],
      };
    case "critic": {
      const durable = identity.criticId === undefined ? "*" : Durables.critic(identity.criticId);
      return {
        // Consumes samples with its own durable, publishes verdicts, watches decisions (core
        // subscription, read-only) for its agreement metrics, loads models from the registry.
        publish: [...durableConsumer(Streams.Samples, durable), Subjects.allVerdicts, ...registryRead(), ...checkpointsRead()],
        subscribe: [Subjects.allDecisions],
      };
    }
    case "consensus":
      return {
        // Consumes verdicts and samples, keeps vote state in the consensus KV, publishes decisions,
        // reads consensus policies from the registry.
        publish: [
          ...durableConsumer(Streams.Verdicts, Durables.consensusVerdicts),
          ...durableConsumer(Streams.Samples, Durables.consensusSamples),
          Subjects.allDecisions,
          ...streamReader(kvStream(KvBuckets.Consensus)),
          kvSubject(KvBuckets.Consensus, ">"),
          ...registryRead(),
        ],
        subscribe: [],
      };
    case "trainer":
      return {
        // Consumes decisions, allocates versions and registers checkpoint records, uploads
        // checkpoint files (purge: nats.js removes the chunks of a replaced or failed upload),
        // announces rounds and candidates. It never moves the promoted pointer.
        publish: [
          ...durableConsumer(Streams.Decisions, identity.trainerDurable ?? Durables.trainer),
          Subjects.checkpoints("round"),
          Subjects.checkpoints("candidate"),
          ...registryRead(),
          kvSubject(KvBuckets.Registry, RegistryKeys.versionCounter),
          kvSubject(KvBuckets.Registry, RegistryKeys.checkpoint),
          ...checkpointsRead(),
          `$O.${ObjectBuckets.Checkpoints}.>`,
          `${API}.STREAM.PURGE.${objStream(ObjectBuckets.Checkpoints)}`,
        ],
        subscribe: [],
      };
    case "monitor":
      return {
        // Consumes candidates and decisions (round statistics), sets checkpoint statuses, moves the
        // promoted pointer, stores evaluations and policies, announces promotions and rollbacks.
        publish: [
          ...durableConsumer(Streams.Checkpoints, Durables.monitorCandidates),
          ...durableConsumer(Streams.Decisions, Durables.monitorRoundStats),
          Subjects.checkpoints("promoted"),
          Subjects.checkpoints("rolled_back"),
          ...registryRead(),
          kvSubject(KvBuckets.Registry, RegistryKeys.promoted),
          kvSubject(KvBuckets.Registry, RegistryKeys.checkpoint),
          kvSubject(KvBuckets.Registry, RegistryKeys.consensusPolicy),
          kvSubject(KvBuckets.Registry, RegistryKeys.monitor),
          ...checkpointsRead(),
        ],
        subscribe: [],
      };
    case "admin":
      // Operators and `autodidact up`: creates the topology, inspects anything.
      return { publish: [">"], subscribe: [">"] };
  }
}

/**
 * The NATS permissions of one identity: what its service actually does on the bus and nothing
 * more (derived from src/platform/bus/topology.ts and the services' publish / consume / KV calls), plus
 * explicit denies of the subjects another role owns.
 */
export function natsPermissions(identity: MeshIdentity): NatsPermissions {
  if (!(MESH_ROLES as readonly string[]).includes(identity.role)) {
    throw new AutodidactError(`unknown mesh role "${String(identity.role)}": use one of ${MESH_ROLES.join(", ")}`, Code.InvalidArgument);
  }
  const perms = base();
  const own = grants(identity);
  const unique = (xs: string[]): string[] => [...new Set(xs)];
  perms.publish.allow = unique([...perms.publish.allow, ...own.publish]);
  perms.subscribe.allow = unique([...perms.subscribe.allow, ...own.subscribe]);
  if (identity.role !== "admin") {
    perms.publish.deny = unique(EXCLUSIVE.filter((e) => e.owner !== identity.role).flatMap((e) => e.subjects));
  }
  return perms;
}

/** NATS subject matching: `*` matches one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * Whether `perms` let a connection publish (or subscribe) to a concrete subject, as nats-server
 * decides it: some allow matches and no deny does. Tests and `autodidact` docs use it to check
 * the role table without a server.
 */
export function permits(perms: NatsPermissions, op: "publish" | "subscribe", subject: string): boolean {
  const r = perms[op];
  return r.allow.some((a) => subjectMatches(a, subject)) && !r.deny.some((d) => subjectMatches(d, subject));
}
