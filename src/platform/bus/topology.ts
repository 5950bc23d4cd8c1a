import {
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { AutodidactError, Code } from "../errors/index.js";
import type { Bus } from "./connection.js";
import { permissionViolation } from "./publish.js";

/** Stream names, in one place so no service spells them differently. */
export const Streams = {
  /** Samples proposed by the generator, one subject per task. */
  Samples: "SAMPLES",
  /** One verdict per (sample, critic). */
  Verdicts: "VERDICTS",
  /** One consensus decision per sample. */
  Decisions: "DECISIONS",
  /** Checkpoint lifecycle events: candidate, promoted, rolled back, round events. */
  Checkpoints: "CHECKPOINTS",
  /** Messages a consumer gave up on (malformed or retries exhausted), kept for inspection. */
  Poison: "POISON",
} as const;
/** A stream name of the topology. */
export type StreamName = (typeof Streams)[keyof typeof Streams];

/** KV bucket names: consensus state and the registry. */
export const KvBuckets = {
  /** Per-sample vote state, updated with compare-and-set so each decision happens once. */
  Consensus: "consensus",
  /** Promoted checkpoint per lineage, critic → model mapping, policies, history. */
  Registry: "registry",
} as const;
/** A KV bucket name of the topology. */
export type KvBucketName = (typeof KvBuckets)[keyof typeof KvBuckets];

/** Object store bucket names. */
export const ObjectBuckets = {
  /** Checkpoint files (safetensors, adapters, configs), chunked with a SHA-256 digest. */
  Checkpoints: "checkpoints",
} as const;
/** An object store bucket name of the topology. */
export type ObjectBucketName = (typeof ObjectBuckets)[keyof typeof ObjectBuckets];

/** Checkpoint lifecycle event kinds, the last token of `checkpoints.<event>`. */
export type CheckpointEvent = "candidate" | "promoted" | "rolled_back" | "round";

const TOKEN = /^[A-Za-z0-9_-]+$/;

function token(kind: string, value: string): string {
  if (!TOKEN.test(value)) {
    throw new AutodidactError(
      `invalid ${kind} "${value}" for a subject token: use letters, digits, "_" or "-"`,
      Code.InvalidArgument,
      { details: { [kind]: value } },
    );
  }
  return value;
}

/**
 * Subject builders: every publisher and consumer takes subjects from here, so a typo cannot
 * send work into a subject no stream captures (which would fail with "no responders").
 */
export const Subjects = {
  /** `samples.proposed.<task>` */
  proposed: (task: string): string => `samples.proposed.${token("task", task)}`,
  /** All proposed samples, any task. */
  allProposed: "samples.proposed.>",
  /** `verdicts.<task>` */
  verdicts: (task: string): string => `verdicts.${token("task", task)}`,
  /** All verdicts. */
  allVerdicts: "verdicts.>",
  /** `decisions.<task>` */
  decisions: (task: string): string => `decisions.${token("task", task)}`,
  /** All decisions. */
  allDecisions: "decisions.>",
  /** `checkpoints.<event>` */
  checkpoints: (event: CheckpointEvent): string => `checkpoints.${event}`,
  /** All checkpoint events. */
  allCheckpoints: "checkpoints.>",
  /** `poison.<stream>`: where a consumer records a message it terminated. */
  poison: (stream: string): string => `poison.${token("stream", stream)}`,
  /** All poison records. */
  allPoison: "poison.>",
} as const;

/** Tunables of {@link ensureTopology}. */
export interface TopologyOptions {
  /** Stream / bucket replicas: 1 locally, 3 in clusters. */
  replicas?: number;
  /** Duplicate window for publish de-duplication by `Nats-Msg-Id`; 2 minutes by default. */
  duplicateWindowMs?: number;
  /** Maximum age of stream messages; 0 (default) keeps them until limits say otherwise. */
  maxAgeMs?: number;
  /** Storage kind; file by default (work must survive restarts). Memory is for benchmarks. */
  storage?: "file" | "memory";
}

/** What {@link ensureTopology} did, so callers and tests can see it was idempotent. */
export interface TopologyReport {
  created: string[];
  updated: string[];
  unchanged: string[];
}

/** The desired configuration of every stream of the topology. */
export function streamConfigs(options: TopologyOptions = {}): Array<Partial<StreamConfig> & { name: string; subjects: string[] }> {
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new AutodidactError(`replicas must be an integer in [1, 5], got ${replicas}`, Code.InvalidArgument);
  }
  const base = {
    retention: RetentionPolicy.Limits,
    storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
    duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
    max_age: nanos(options.maxAgeMs ?? 0),
  };
  return [
    { ...base, name: Streams.Samples, subjects: [Subjects.allProposed] },
    { ...base, name: Streams.Verdicts, subjects: [Subjects.allVerdicts] },
    { ...base, name: Streams.Decisions, subjects: [Subjects.allDecisions] },
    { ...base, name: Streams.Checkpoints, subjects: [Subjects.allCheckpoints] },
    { ...base, name: Streams.Poison, subjects: [Subjects.allPoison] },
  ];
}

/** Fields the server refuses to change on an existing stream. */
const IMMUTABLE_FIELDS = ["storage", "retention"] as const;
/** Fields we own and reconcile when they drift. */
const RECONCILED_FIELDS = ["subjects", "duplicate_window", "num_replicas", "max_age", "discard"] as const;

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);
  }
  return a === b;
}

async function streamInfoOrNull(bus: Bus, name: string): Promise<StreamInfo | null> {
  try {
    return await bus.jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10059) return null;
    throw err;
  }
}

async function ensureStream(
  bus: Bus,
  desired: Partial<StreamConfig> & { name: string; subjects: string[] },
  report: TopologyReport,
): Promise<void> {
  const existing = await streamInfoOrNull(bus, desired.name);
  if (existing === null) {
    try {
      await bus.jsm.streams.add(desired);
      report.created.push(`stream ${desired.name}`);
      return;
    } catch (err) {
      // Another process may have created it between our info and add: fall through and verify.
      if ((await streamInfoOrNull(bus, desired.name)) === null) {
        const msg = err instanceof Error ? err.message : String(err);
        throw new AutodidactError(
          `could not create stream ${desired.name} (subjects ${desired.subjects.join(", ")}): ${msg}` +
            (/overlap/i.test(msg) ? "; another stream already captures these subjects" : ""),
          err instanceof JetStreamApiError ? Code.FailedPrecondition : Code.Unavailable,
          { cause: err, details: { stream: desired.name } },
        );
      }
      return ensureStream(bus, desired, report);
    }
  }
  const current = existing.config;
  const rec = current as unknown as Record<string, unknown>;
  const want = desired as unknown as Record<string, unknown>;
  const unsafe = IMMUTABLE_FIELDS.filter((f) => want[f] !== undefined && !sameValue(rec[f], want[f]));
  if (unsafe.length > 0) {
    throw new AutodidactError(
      `stream ${desired.name} exists with a conflicting configuration that cannot be changed in place ` +
        `(${unsafe.map((f) => `${f}: has ${String(rec[f])}, want ${String(want[f])}`).join("; ")}); ` +
        `delete or migrate the stream, or run with matching settings`,
      Code.FailedPrecondition,
      { details: { stream: desired.name, fields: unsafe } },
    );
  }
  const drift = RECONCILED_FIELDS.filter((f) => want[f] !== undefined && !sameValue(rec[f], want[f]));
  if (drift.length === 0) {
    report.unchanged.push(`stream ${desired.name}`);
    return;
  }
  try {
    await bus.jsm.streams.update(desired.name, { ...current, ...desired } as StreamConfig);
    report.updated.push(`stream ${desired.name} (${drift.join(", ")})`);
  } catch (err) {
    throw new AutodidactError(
      `stream ${desired.name} exists with a different configuration (${drift.join(", ")}) and the update ` +
        `was refused: ${err instanceof Error ? err.message : String(err)}`,
      Code.FailedPrecondition,
      { cause: err, details: { stream: desired.name, fields: drift } },
    );
  }
}

/** Turns off `allow_rollup_hdrs` on a stream; true when it had to. */
async function disallowRollup(bus: Bus, stream: string): Promise<boolean> {
  const info = await bus.jsm.streams.info(stream);
  if (info.config.allow_rollup_hdrs !== true) return false;
  try {
    await bus.jsm.streams.update(stream, { ...info.config, allow_rollup_hdrs: false });
  } catch (err) {
    if (permissionViolation(err) !== undefined) throw err;
    throw new AutodidactError(`could not turn off rollup headers on ${stream}: ${String(err)}`, Code.FailedPrecondition, { cause: err });
  }
  return true;
}

/**
 * Creates or verifies every stream, KV bucket and object store of the mesh. Every service calls
 * it at start; it is idempotent, so the first one creates and the others verify.
 */
export async function ensureTopology(bus: Bus, options: TopologyOptions = {}): Promise<TopologyReport> {
  try {
    return await ensureTopologyUnwrapped(bus, options);
  } catch (err) {
    const pv = permissionViolation(err);
    if (pv !== undefined) {
      throw new AutodidactError(
        `the JetStream topology is missing or differs, and this NATS user may not ${pv.operation} to "${pv.subject}" to fix it: ` +
          "create it once with the admin identity (`autodidact topology --nats-nkey-file <admin seed>`)",
        Code.PermissionDenied,
        { cause: err, details: { operation: pv.operation, subject: pv.subject } },
      );
    }
    if (err instanceof AutodidactError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new AutodidactError(
      `JetStream is not available on ${bus.nc.getServer()}: ${msg} (is nats-server running with JetStream enabled, ` +
        "e.g. `nats-server -js`, and does this account have JetStream?)",
      Code.Unavailable,
      { cause: err },
    );
  }
}

async function ensureTopologyUnwrapped(bus: Bus, options: TopologyOptions): Promise<TopologyReport> {
  const report: TopologyReport = { created: [], updated: [], unchanged: [] };
  for (const cfg of streamConfigs(options)) await ensureStream(bus, cfg, report);

  const replicas = options.replicas ?? 1;
  const storage = options.storage === "memory" ? StorageType.Memory : StorageType.File;
  const kvm = new Kvm(bus.js);
  const kvSpecs: Array<{ name: KvBucketName; history: number; description: string }> = [
    { name: KvBuckets.Consensus, history: 1, description: "per-sample vote state (compare-and-set)" },
    { name: KvBuckets.Registry, history: 64, description: "promoted checkpoints, critic models, policies" },
  ];
  for (const spec of kvSpecs) {
    const existed = (await streamInfoOrNull(bus, `KV_${spec.name}`)) !== null;
    try {
      await kvm.create(spec.name, { history: spec.history, replicas, storage, description: spec.description });
    } catch (err) {
      throw new AutodidactError(`could not create or open KV bucket ${spec.name}: ${String(err)}`, Code.FailedPrecondition, {
        cause: err,
      });
    }
    // nats.js creates KV streams accepting `Nats-Rollup` headers, with which a user allowed to write
    // one key could purge the whole bucket (the registry's promoted pointers with it). Nothing here
    // purges KV keys, so both buckets refuse rollups; with NATS auth only the admin may change this.
    const rollup = await disallowRollup(bus, `KV_${spec.name}`);
    (existed ? (rollup ? report.updated : report.unchanged) : report.created).push(`kv ${spec.name}${existed && rollup ? " (allow_rollup_hdrs)" : ""}`);
  }

  const objm = new Objm(bus.js);
  for (const name of Object.values(ObjectBuckets)) {
    const existed = (await streamInfoOrNull(bus, `OBJ_${name}`)) !== null;
    try {
      await objm.create(name, { replicas, storage, description: "checkpoint files" });
    } catch (err) {
      throw new AutodidactError(`could not create or open object store ${name}: ${String(err)}`, Code.FailedPrecondition, {
        cause: err,
      });
    }
    (existed ? report.unchanged : report.created).push(`object store ${name}`);
  }
  return report;
}
