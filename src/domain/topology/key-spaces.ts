import { KvBuckets, type KvBucketName } from "./buckets.js";
import type { ServiceRole } from "./roles.js";

/**
 * A family of keys in one KV bucket: `prefix` is the key's leading token(s); a key space with
 * `single` is exactly one key, any other is `prefix.<more tokens>` (shape says which). Only the
 * bucket's owner builds concrete keys from it; permissions grant `writers` the key pattern.
 */
export interface KeySpace {
  readonly bucket: KvBucketName;
  /** Leading token(s) of every key; "" for a space that is the whole bucket. */
  readonly prefix: string;
  /** The key's full shape, for documentation (`checkpoint.<lineage>.<version>`). */
  readonly shape: string;
  /** Exactly one key (the prefix itself). */
  readonly single?: boolean;
  readonly writers: readonly ServiceRole[];
  /** No other role may write it, not even if an allow list is widened by mistake. */
  readonly exclusive: boolean;
  readonly purpose: string;
}

/** The NATS key pattern of a key space (`checkpoint.>`, `monitor.gating-policy`, `>`). */
export function keyPattern(space: KeySpace): string {
  if (space.prefix === "") return ">";
  return space.single === true ? space.prefix : `${space.prefix}.>`;
}

/**
 * The key spaces of the `registry` bucket. Key names are those of existing deployments. Only
 * src/domain/registry builds keys from them (tests/architecture.test.ts checks it).
 */
export const RegistryKeySpaces = {
  checkpoint: {
    bucket: KvBuckets.Registry,
    prefix: "checkpoint",
    shape: "checkpoint.<lineage>.<version>",
    writers: ["trainer", "monitor", "conductor"],
    exclusive: false,
    purpose: "checkpoint records: the trainer creates them (the conductor a lineage's imported base), the monitor sets their status",
  },
  versionCounter: {
    bucket: KvBuckets.Registry,
    prefix: "version",
    shape: "version.<lineage>",
    writers: ["trainer", "conductor"],
    exclusive: false,
    purpose: "the version counter of a lineage, allocated by compare-and-set (contiguous versions)",
  },
  promoted: {
    bucket: KvBuckets.Registry,
    prefix: "promoted",
    shape: "promoted.<lineage>",
    writers: ["monitor"],
    exclusive: true,
    purpose:
      "THE promotion signal: the version of a lineage the mesh serves. Generator and critics watch it and swap " +
      "models when it moves (promotion or rollback); only the monitor moves it, by compare-and-set",
  },
  consensusPolicy: {
    bucket: KvBuckets.Registry,
    prefix: "consensus-policy",
    shape: "consensus-policy.<name>",
    writers: ["monitor"],
    exclusive: false,
    purpose: "versioned consensus policies (wire form), set through the monitor's SetConsensusPolicy, read by consensus workers",
  },
  gatePolicy: {
    bucket: KvBuckets.Registry,
    prefix: "monitor.gating-policy",
    shape: "monitor.gating-policy",
    single: true,
    writers: ["monitor"],
    exclusive: false,
    purpose: "the monitor's versioned gating policy",
  },
  arenaPolicy: {
    bucket: KvBuckets.Registry,
    prefix: "monitor.arena-policy",
    shape: "monitor.arena-policy",
    single: true,
    writers: ["monitor"],
    exclusive: false,
    purpose: "the monitor's versioned arena policy: how game candidates are gated against the promoted model",
  },
  evaluation: {
    bucket: KvBuckets.Registry,
    prefix: "monitor.evaluation",
    shape: "monitor.evaluation.<lineage>.<version>",
    writers: ["monitor"],
    exclusive: false,
    purpose: "the monitor's stored evaluation of a checkpoint (with its gate outcome); clients read it through the monitor's RPCs",
  },
  roundStats: {
    bucket: KvBuckets.Registry,
    prefix: "monitor.rounds",
    shape: "monitor.rounds.<task>.<round>",
    writers: ["monitor"],
    exclusive: false,
    purpose: "verifier-judged statistics of one round's decisions; clients read them through the monitor's GetRoundStats",
  },
} as const satisfies Record<string, KeySpace>;

/** The key spaces of the `consensus` bucket (the consensus ledger). */
export const ConsensusLedgerKeySpaces = {
  sample: {
    bucket: KvBuckets.Consensus,
    prefix: "",
    shape: "<sampleId>",
    writers: ["consensus"],
    exclusive: true,
    purpose: "one record per sample: its votes, then its decision, created or updated by compare-and-set",
  },
} as const satisfies Record<string, KeySpace>;

/** The key spaces of the `conductor` bucket. Only services/conductor builds keys from them. */
export const ConductorKeySpaces = {
  run: {
    bucket: KvBuckets.Conductor,
    prefix: "run",
    shape: "run.<id>",
    writers: ["conductor"],
    exclusive: true,
    purpose: "one record per run: spec, status, phase, the round in progress and the finished rounds",
  },
  lease: {
    bucket: KvBuckets.Conductor,
    prefix: "lease",
    shape: "lease.<id>",
    writers: ["conductor"],
    exclusive: true,
    purpose: "which conductor drives a run, until when (renewed by compare-and-set; an expired lease may be taken over)",
  },
} as const satisfies Record<string, KeySpace>;

/** Every key space of the mesh, for permissions and checks. */
export const KEY_SPACES: readonly KeySpace[] = [...Object.values(RegistryKeySpaces), ...Object.values(ConsensusLedgerKeySpaces), ...Object.values(ConductorKeySpaces)];
