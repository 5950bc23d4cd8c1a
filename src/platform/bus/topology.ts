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
import { permissionViolation } from "./permission.js";
import { backoffMs, isTransientBusError } from "./retry.js";

// Generic JetStream topology machinery: what a declaration lists (streams, KV buckets, object
// stores) is created or verified here. Which streams a system has is the caller's declaration;
// the mesh's lives in src/domain/topology.

/** One stream of a declaration. */
export interface StreamDeclaration {
  readonly name: string;
  /** Subject patterns the stream captures. */
  readonly subjects: readonly string[];
  /** Why the stream exists (documentation, shown by tools). */
  readonly purpose: string;
}

/** One KV bucket of a declaration. */
export interface KvBucketDeclaration {
  readonly name: string;
  /** Revisions kept per key. */
  readonly history: number;
  readonly purpose: string;
}

/** One object store of a declaration. */
export interface ObjectStoreDeclaration {
  readonly name: string;
  readonly purpose: string;
}

/** What {@link ensureTopology} creates or verifies. */
export interface TopologyDeclaration {
  readonly streams: readonly StreamDeclaration[];
  readonly kvBuckets: readonly KvBucketDeclaration[];
  readonly objectStores: readonly ObjectStoreDeclaration[];
}

/** The JetStream stream behind a KV bucket (nats.js and nats-server convention). */
export const kvStreamName = (bucket: string): string => `KV_${bucket}`;
/** The JetStream stream behind an object store (nats.js and nats-server convention). */
export const objectStreamName = (bucket: string): string => `OBJ_${bucket}`;

/** Every JetStream stream a declaration implies: its streams, then those behind its buckets. */
export function declaredStreamNames(declaration: TopologyDeclaration): string[] {
  return [
    ...declaration.streams.map((s) => s.name),
    ...declaration.kvBuckets.map((b) => kvStreamName(b.name)),
    ...declaration.objectStores.map((o) => objectStreamName(o.name)),
  ];
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * Checks one value that becomes a single subject token, so a value with `.`, `*` or `>` cannot
 * escape into another subject (which would fail with "no responders" or reach the wrong stream).
 */
export function subjectToken(kind: string, value: string): string {
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
 * Where the generic consumer records a message it terminated (`poison.<stream>`): a convention of
 * this bus runtime, so a declaration that wants poison records kept declares a stream capturing
 * {@link PoisonSubjects.all}.
 */
export const PoisonSubjects = {
  /** `poison.<stream>` */
  of: (stream: string): string => `poison.${subjectToken("stream", stream)}`,
  /** Every poison record. */
  all: "poison.>",
} as const;

/** Tunables of {@link ensureTopology}. */
export interface TopologyOptions {
  /**
   * Replicas of every stream, KV bucket and object store: 1 locally, 3 in clusters. An existing one
   * with fewer is scaled up (or the call fails naming it and both counts); one with more is left
   * as it is (reported as unchanged), so a process started with a lower setting never scales a
   * cluster's state down.
   */
  replicas?: number;
  /**
   * How long each stream or bucket step retries transient failures (a metadata leader election,
   * a JetStream API timeout), in ms (default 30 s).
   */
  retryForMs?: number;
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

function replicasOf(options: TopologyOptions): number {
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new AutodidactError(`replicas must be an integer in [1, 5], got ${replicas}`, Code.InvalidArgument);
  }
  return replicas;
}

/** The desired configuration of every stream of a declaration. */
export function streamConfigs(
  declaration: TopologyDeclaration,
  options: TopologyOptions = {},
): Array<Partial<StreamConfig> & { name: string; subjects: string[] }> {
  const base = {
    retention: RetentionPolicy.Limits,
    storage: options.storage === "memory" ? StorageType.Memory : StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: replicasOf(options),
    duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
    max_age: nanos(options.maxAgeMs ?? 0),
  };
  return declaration.streams.map((s) => ({ ...base, name: s.name, subjects: [...s.subjects], description: s.purpose }));
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
  // More replicas than configured are kept: never scale a cluster's state down.
  const has = current.num_replicas ?? 1;
  const replicas = Math.max(has, desired.num_replicas ?? 1);
  const drift = RECONCILED_FIELDS.filter((f) => want[f] !== undefined && !sameValue(rec[f], f === "num_replicas" ? replicas : want[f]));
  if (drift.length === 0) {
    report.unchanged.push(`stream ${desired.name}`);
    return;
  }
  try {
    await bus.jsm.streams.update(desired.name, { ...current, ...desired, num_replicas: replicas } as StreamConfig);
    report.updated.push(`stream ${desired.name} (${drift.join(", ")})`);
  } catch (err) {
    if (permissionViolation(err) !== undefined) throw err;
    if (isTransientBusError(err)) throw err; // retried by the caller, which re-reads the stream first
    const counts = drift.includes("num_replicas") ? `; it has ${has} replicas, the topology wants ${replicas}` : "";
    throw new AutodidactError(
      `stream ${desired.name} exists with a different configuration (${drift.join(", ")})${counts}, and the update ` +
        `was refused: ${err instanceof Error ? err.message : String(err)}` +
        (counts !== "" ? " (run with the existing setting, or add NATS nodes)" : ""),
      Code.FailedPrecondition,
      { cause: err, details: { stream: desired.name, fields: drift, ...(counts !== "" ? { has, want: replicas } : {}) } },
    );
  }
}

/** A bucket's settings {@link ensureBucketStream} reconciles on its backing stream. */
interface BucketReconcile {
  /** `kv <name>` or `object store <name>`, as reports and errors name it. */
  readonly label: string;
  readonly stream: string;
  readonly replicas: number;
  /** Turn off `allow_rollup_hdrs` (KV buckets: nothing purges keys). */
  readonly disallowRollup: boolean;
}

/**
 * Brings the stream behind a bucket (just created or opened by nats.js, which ignores the
 * settings of an existing one) to the declared replicas and rollup setting. A replica count the
 * server refuses to change fails with both counts named.
 */
async function reconcileBucketStream(bus: Bus, want: BucketReconcile, existed: boolean, report: TopologyReport): Promise<void> {
  const info = await bus.jsm.streams.info(want.stream);
  const changes: string[] = [];
  const config = { ...info.config };
  // More replicas than configured are kept: never scale a cluster's state down.
  if ((info.config.num_replicas ?? 1) < want.replicas) {
    changes.push("num_replicas");
    config.num_replicas = want.replicas;
  }
  // nats.js creates KV streams accepting `Nats-Rollup` headers, with which a user allowed to write
  // one key could purge the whole bucket. Nothing here purges KV keys, so KV buckets refuse
  // rollups; with NATS auth only the admin may change this.
  if (want.disallowRollup && info.config.allow_rollup_hdrs === true) {
    changes.push("allow_rollup_hdrs");
    config.allow_rollup_hdrs = false;
  }
  if (changes.length > 0) {
    try {
      await bus.jsm.streams.update(want.stream, config);
    } catch (err) {
      if (permissionViolation(err) !== undefined) throw err;
      if (isTransientBusError(err)) throw err; // retried by the caller, which re-reads the stream first
      const why = err instanceof Error ? err.message : String(err);
      const replicas = changes.includes("num_replicas")
        ? `it has ${info.config.num_replicas} replicas, the topology wants ${want.replicas}`
        : `its ${changes.join(", ")} differs`;
      throw new AutodidactError(
        `${want.label} (stream ${want.stream}) exists and ${replicas}; the server refused the update: ${why} ` +
          "(run with the existing setting, add NATS nodes, or migrate the bucket)",
        Code.FailedPrecondition,
        { cause: err, details: { bucket: want.label, has: info.config.num_replicas, want: want.replicas } },
      );
    }
  }
  if (!existed) report.created.push(want.label);
  else if (changes.length > 0) report.updated.push(`${want.label} (${changes.join(", ")})`);
  else report.unchanged.push(want.label);
}

/**
 * Creates or verifies every stream, KV bucket and object store a declaration lists, each with
 * `options.replicas`. Idempotent: the first caller creates, the others verify (and reconcile what
 * may change in place). A service host calls it at start with its service's declaration.
 */
export async function ensureTopology(bus: Bus, declaration: TopologyDeclaration, options: TopologyOptions = {}): Promise<TopologyReport> {
  try {
    return await ensureTopologyUnwrapped(bus, declaration, options);
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

/** True when JetStream is simply absent (no server answers its API): not worth waiting for. */
function jetStreamMissing(err: unknown): boolean {
  return err instanceof Error && (err.name === "JetStreamNotEnabled" || /jetstream is not enabled/i.test(err.message));
}

/**
 * Runs one step of {@link ensureTopology} (create or verify one stream or bucket), again after a
 * transient failure until `retryForMs` passed: on a cluster the metadata leader may be electing,
 * and a step that timed out may have been applied (each step re-reads what exists first).
 */
async function step(bus: Bus, retryForMs: number, run: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + retryForMs;
  for (let n = 1; ; n++) {
    try {
      return await run();
    } catch (err) {
      const transient = isTransientBusError(err) && !jetStreamMissing(err) && permissionViolation(err) === undefined;
      if (!transient || Date.now() >= deadline || bus.nc.isClosed()) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(n)));
    }
  }
}

async function ensureTopologyUnwrapped(bus: Bus, declaration: TopologyDeclaration, options: TopologyOptions): Promise<TopologyReport> {
  const report: TopologyReport = { created: [], updated: [], unchanged: [] };
  const retryForMs = options.retryForMs ?? 30_000;
  for (const cfg of streamConfigs(declaration, options)) await step(bus, retryForMs, () => ensureStream(bus, cfg, report));

  const replicas = replicasOf(options);
  const storage = options.storage === "memory" ? StorageType.Memory : StorageType.File;
  const kvm = new Kvm(bus.js);
  for (const spec of declaration.kvBuckets) {
    const stream = kvStreamName(spec.name);
    await step(bus, retryForMs, async () => {
      const existed = (await streamInfoOrNull(bus, stream)) !== null;
      try {
        await kvm.create(spec.name, { history: spec.history, replicas, storage, description: spec.purpose });
      } catch (err) {
        if (isTransientBusError(err) && !jetStreamMissing(err)) throw err;
        throw new AutodidactError(`could not create or open KV bucket ${spec.name} (${replicas} replicas): ${String(err)}`, Code.FailedPrecondition, {
          cause: err,
        });
      }
      await reconcileBucketStream(bus, { label: `kv ${spec.name}`, stream, replicas, disallowRollup: true }, existed, report);
    });
  }

  const objm = new Objm(bus.js);
  for (const spec of declaration.objectStores) {
    const stream = objectStreamName(spec.name);
    await step(bus, retryForMs, async () => {
      const existed = (await streamInfoOrNull(bus, stream)) !== null;
      try {
        await objm.create(spec.name, { replicas, storage, description: spec.purpose });
      } catch (err) {
        if (isTransientBusError(err) && !jetStreamMissing(err)) throw err;
        throw new AutodidactError(`could not create or open object store ${spec.name} (${replicas} replicas): ${String(err)}`, Code.FailedPrecondition, {
          cause: err,
        });
      }
      // The object store needs rollups to replace an object's metadata: only replicas are reconciled.
      await reconcileBucketStream(bus, { label: `object store ${spec.name}`, stream, replicas, disallowRollup: false }, existed, report);
    });
  }
  return report;
}
