import { openKv, openObjectStore, type Bus, type KvStore, type ObjectStoreClient } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { KvBuckets, ObjectBuckets, RegistryKeySpaces } from "../topology/index.js";

// Internal to src/domain/registry: the one place that opens the `registry` KV bucket and the
// `checkpoints` object store, and the one place concrete registry keys are built.

/** Opens the registry's bucket and object store once per client, on first use. */
export class RegistryStores {
  readonly #bus: Bus;
  #kv: Promise<KvStore> | undefined;
  #objects: Promise<ObjectStoreClient> | undefined;

  constructor(bus: Bus) {
    this.#bus = bus;
  }

  /** The `registry` KV bucket (created by the topology). A failed open is retried on the next call. */
  kv(): Promise<KvStore> {
    this.#kv ??= openKv(this.#bus, KvBuckets.Registry).catch((err: unknown) => {
      this.#kv = undefined;
      throw err;
    });
    return this.#kv;
  }

  /** The `checkpoints` object store. */
  objects(): Promise<ObjectStoreClient> {
    this.#objects ??= openObjectStore(this.#bus, ObjectBuckets.Checkpoints).catch((err: unknown) => {
      this.#objects = undefined;
      throw err;
    });
    return this.#objects;
  }
}

/** At most 128 characters: a token becomes part of KV keys and subject filters, which NATS caps in length. */
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** Checks one value that becomes a single key token (a lineage, task or policy name). */
export function checkKeyToken(kind: string, value: string): string {
  if (!TOKEN.test(value)) {
    throw new AutodidactError(
      `invalid ${kind} ${JSON.stringify(value.slice(0, 80))}${value.length > 80 ? `… (${value.length} characters)` : ""}: use 1 to 128 letters, digits, "-" and "_"`,
      Code.InvalidArgument,
    );
  }
  return value;
}

/** Checks a checkpoint version (versions start at 1). */
export function checkVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new AutodidactError(`invalid checkpoint version ${version}: versions start at 1`, Code.InvalidArgument);
  }
  return version;
}

const K = RegistryKeySpaces;

/** Concrete keys of the registry bucket, built from the topology's key spaces. Callers validate tokens first. */
export const registryKeys = {
  checkpoint: (lineage: string, version: number): string => `${K.checkpoint.prefix}.${lineage}.${version}`,
  /** Filter over checkpoint records: one lineage's, or all. */
  checkpoints: (lineage?: string): string => (lineage === undefined ? `${K.checkpoint.prefix}.>` : `${K.checkpoint.prefix}.${lineage}.*`),
  versionCounter: (lineage: string): string => `${K.versionCounter.prefix}.${lineage}`,
  promoted: (lineage: string): string => `${K.promoted.prefix}.${lineage}`,
  consensusPolicy: (name: string): string => `${K.consensusPolicy.prefix}.${name}`,
  gatePolicy: (): string => K.gatePolicy.prefix,
  arenaPolicy: (): string => K.arenaPolicy.prefix,
  evaluation: (lineage: string, version: number): string => `${K.evaluation.prefix}.${lineage}.${version}`,
  roundStats: (task: string, round: number): string => `${K.roundStats.prefix}.${task}.${round}`,
  /** Filter over one task's round statistics. */
  roundStatsOf: (task: string): string => `${K.roundStats.prefix}.${task}.*`,
} as const;

/** Object name prefix of a checkpoint's files in the object store: `<lineage>/<version>/`. */
export const objectPrefix = (lineage: string, version: number): string => `${lineage}/${version}/`;
/** Object name of one checkpoint file. */
export const objectName = (lineage: string, version: number, file: string): string => `${objectPrefix(lineage, version)}${file}`;
