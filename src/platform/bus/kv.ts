import { JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { AutodidactError, Code } from "../errors/index.js";
import type { Bus } from "./connection.js";
import { jsPipeline } from "./pipeline.js";
import { permissionDeniedError } from "./publish.js";

/** A stored value with the revision needed to update it with compare-and-set. */
export interface KvValue<T = Uint8Array> {
  key: string;
  value: T;
  /** The stream sequence of this write: pass it to `update` for compare-and-set. */
  revision: number;
  created: Date;
}

/** Result of {@link KvStore.modify}. */
export interface KvModifyResult<T> {
  /** The value now stored (the untouched current one when the function asked for no change). */
  value: T | null;
  revision: number;
  /** False when the function returned `undefined` (nothing to write). */
  changed: boolean;
  /** How many compare-and-set attempts it took. */
  attempts: number;
}

/**
 * A KV bucket with typed errors: `create` on an existing key is AlreadyExists, `update` with a
 * stale revision is Aborted (a compare-and-set conflict the caller re-reads and retries), a bad
 * key is InvalidArgument. Consensus uses it so each decision is written exactly once.
 */
export interface KvStore {
  readonly bucket: string;
  /** The underlying client bucket, for watches and anything not wrapped here. */
  readonly raw: KV;
  /** The current value, or null when absent or deleted. */
  get(key: string): Promise<KvValue | null>;
  getJson<T>(key: string): Promise<KvValue<T> | null>;
  /** Unconditional write. */
  put(key: string, value: Uint8Array): Promise<number>;
  putJson(key: string, value: unknown): Promise<number>;
  /** Writes only if the key does not exist (or was deleted); AlreadyExists otherwise. */
  create(key: string, value: Uint8Array): Promise<number>;
  createJson(key: string, value: unknown): Promise<number>;
  /** Writes only if the key is still at `revision`; Aborted (conflict) otherwise. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  updateJson(key: string, value: unknown, revision: number): Promise<number>;
  /**
   * Read-modify-write with compare-and-set, retried on conflict: `fn` gets the current value
   * (null if absent) and returns the new one, or `undefined` to leave it as it is.
   */
  modify<T>(key: string, fn: (current: T | null) => T | undefined, options?: { maxAttempts?: number }): Promise<KvModifyResult<T>>;
  delete(key: string): Promise<void>;
  /** Keys matching `filter` (NATS wildcards), sorted. */
  keys(filter?: string): Promise<string[]>;
}

/** True when `err` is a compare-and-set conflict from {@link KvStore.update} or `modify`. */
export function isKvConflict(err: unknown): boolean {
  return err instanceof AutodidactError && err.code === Code.Aborted && err.details["kvConflict"] === true;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);
}

function wrap(bucket: string, key: string, op: string, err: unknown): AutodidactError {
  if (err instanceof AutodidactError) return err;
  const denied = permissionDeniedError(err, `KV ${op} ${bucket}/${key}`);
  if (denied !== undefined) return denied;
  const msg = err instanceof Error ? err.message : String(err);
  if (/invalid key/i.test(msg)) {
    return new AutodidactError(`invalid KV key "${key}" in ${bucket}: use letters, digits and -/_=.`, Code.InvalidArgument, {
      cause: err,
      details: { bucket, key },
    });
  }
  return new AutodidactError(`KV ${op} ${bucket}/${key} failed: ${msg}`, Code.Unavailable, {
    cause: err,
    details: { bucket, key },
  });
}

function parseJson<T>(bucket: string, entry: KvValue): KvValue<T> {
  try {
    return { ...entry, value: JSON.parse(decoder.decode(entry.value)) as T };
  } catch (err) {
    throw new AutodidactError(`KV ${bucket}/${entry.key} does not hold valid JSON`, Code.DataLoss, {
      cause: err,
      details: { bucket, key: entry.key, revision: entry.revision },
    });
  }
}

const json = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));

/** Opens an existing KV bucket (created by ensureTopology) with the typed helpers. */
export async function openKv(bus: Bus, bucket: string): Promise<KvStore> {
  let kv: KV;
  try {
    kv = await new Kvm(bus.js).open(bucket);
    await kv.status();
  } catch (err) {
    const denied = permissionDeniedError(err, `opening KV bucket ${bucket}`);
    if (denied !== undefined) throw denied;
    throw new AutodidactError(`KV bucket ${bucket} is not available (run ensureTopology): ${String(err)}`, Code.FailedPrecondition, {
      cause: err,
    });
  }

  // Creates and compare-and-set updates go through the connection's publish pipeline (one reply
  // subscription, batched writes) as the same JetStream publish the client would make: the key's
  // subject with an expected last subject sequence. Anything unusual falls back to the client.
  const impl = kv as unknown as { encodeKey(k: string): string; validateKey(k: string): void; subjectForKey(k: string, edit: boolean): string };
  const timeoutMs = (bus.js as unknown as { timeout?: number }).timeout ?? bus.timeoutMs;
  const casPut = async (key: string, value: Uint8Array, previousSeq: number): Promise<number> => {
    const ek = impl.encodeKey(key);
    impl.validateKey(ek);
    const h = natsHeaders();
    h.set("Nats-Expected-Last-Subject-Sequence", String(previousSeq));
    return (await jsPipeline(bus.nc).publish(impl.subjectForKey(ek, true), value, h, timeoutMs)).seq;
  };

  const store: KvStore = {
    bucket,
    raw: kv,
    async get(key) {
      try {
        const e = await kv.get(key);
        if (e === null || e.operation !== "PUT") return null;
        return { key, value: e.value, revision: e.revision, created: e.created };
      } catch (err) {
        throw wrap(bucket, key, "get", err);
      }
    },
    async getJson<T>(key: string) {
      const e = await store.get(key);
      return e === null ? null : parseJson<T>(bucket, e);
    },
    async put(key, value) {
      try {
        return await kv.put(key, value);
      } catch (err) {
        throw wrap(bucket, key, "put", err);
      }
    },
    putJson: (key, value) => store.put(key, json(value)),
    async create(key, value) {
      try {
        try {
          return await casPut(key, value, 0);
        } catch (err) {
          // Taken, or a deleted key (whose delete marker the client's create writes over).
          if (!isWrongLastSequence(err)) throw err;
        }
        return await kv.create(key, value);
      } catch (err) {
        if (isWrongLastSequence(err)) {
          throw new AutodidactError(`KV ${bucket}/${key} already exists`, Code.AlreadyExists, {
            cause: err,
            details: { bucket, key },
          });
        }
        throw wrap(bucket, key, "create", err);
      }
    },
    createJson: (key, value) => store.create(key, json(value)),
    async update(key, value, revision) {
      if (!Number.isInteger(revision) || revision <= 0) {
        throw new AutodidactError(`KV update of ${bucket}/${key} needs a positive revision, got ${revision}`, Code.InvalidArgument);
      }
      try {
        return await casPut(key, value, revision);
      } catch (err) {
        if (isWrongLastSequence(err)) {
          throw new AutodidactError(
            `KV ${bucket}/${key} changed since revision ${revision} (compare-and-set conflict): re-read and retry`,
            Code.Aborted,
            { cause: err, details: { bucket, key, expectedRevision: revision, kvConflict: true } },
          );
        }
        throw wrap(bucket, key, "update", err);
      }
    },
    updateJson: (key, value, revision) => store.update(key, json(value), revision),
    async modify<T>(key: string, fn: (current: T | null) => T | undefined, options: { maxAttempts?: number } = {}) {
      const maxAttempts = options.maxAttempts ?? 20;
      for (let attempt = 1; ; attempt++) {
        const current = await store.getJson<T>(key);
        const next = fn(current === null ? null : current.value);
        if (next === undefined) {
          return { value: current?.value ?? null, revision: current?.revision ?? 0, changed: false, attempts: attempt };
        }
        try {
          const revision =
            current === null ? await store.createJson(key, next) : await store.updateJson(key, next, current.revision);
          return { value: next, revision, changed: true, attempts: attempt };
        } catch (err) {
          const conflict = isKvConflict(err) || (err instanceof AutodidactError && err.code === Code.AlreadyExists);
          if (!conflict) throw err;
          if (attempt >= maxAttempts) {
            throw new AutodidactError(`KV ${bucket}/${key}: gave up after ${attempt} conflicting updates`, Code.Aborted, {
              cause: err,
              details: { bucket, key, kvConflict: true },
            });
          }
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 5 * 2 ** attempt)));
        }
      }
    },
    async delete(key) {
      try {
        await kv.delete(key);
      } catch (err) {
        throw wrap(bucket, key, "delete", err);
      }
    },
    async keys(filter) {
      try {
        const out: string[] = [];
        for await (const k of await kv.keys(filter)) out.push(k);
        return out.sort();
      } catch (err) {
        throw wrap(bucket, filter ?? ">", "keys", err);
      }
    },
  };
  return store;
}
