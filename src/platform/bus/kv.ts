import type { StoredMsg } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { AutodidactError, Code } from "../errors/index.js";
import type { Bus } from "./connection.js";
import { permissionDeniedError } from "./permission.js";
import { retryBudget, withBusRetry, type RetryBudget } from "./retry.js";
import { kvStreamName } from "./topology.js";
import { conditionalHeaders, isWrongLastSequence, managerWithTimeout, newMsgId, writeOnce } from "./write.js";

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
 *
 * Every operation rides out a JetStream leader election or a server restart: transient failures
 * are retried with bounded backoff for `retryForMs` (see {@link OpenKvOptions}). Writes carry one
 * `Nats-Msg-Id` across their attempts, so a retried put, create or compare-and-set is stored once,
 * and a retry refused because its earlier attempt did land reports that attempt's success, never a
 * conflict (see write.ts).
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

/** Options of {@link openKv}. */
export interface OpenKvOptions {
  /**
   * How long one operation keeps retrying transient failures (a leader election, a restart), in ms
   * (default 20 s: an election after a node loss takes a few seconds). 0 fails at the first error.
   */
  retryForMs?: number;
  /** Longest wait of one attempt, in ms (default: the timeout of the bus's JetStream client). */
  attemptTimeoutMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

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

/** The last message of a key, whatever its operation (a delete marker included). */
interface LastEntry {
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  value: Uint8Array;
  created: Date;
}

/** The parts of nats.js's bucket used for key checks (kept so keys are validated as the client does). */
interface KeyCodec {
  encodeKey(k: string): string;
  validateKey(k: string): void;
  subjectForKey(k: string, edit?: boolean): string;
}

/**
 * The operations of one bucket as JetStream requests with explicit per-attempt timeouts: reads are
 * stream message gets (answered by the stream leader), writes are publishes to the key's subject
 * through the connection's publish pipeline ({@link writeOnce}).
 */
class KvRequests {
  constructor(
    private readonly bus: Bus,
    readonly bucket: string,
    private readonly codec: KeyCodec,
    private readonly retryForMs: number,
    private readonly maxAttemptMs: number,
  ) {}

  budget(): RetryBudget {
    return retryBudget(this.retryForMs, this.maxAttemptMs, () => this.bus.nc.isClosed());
  }

  /** The key's subject: the one reads look up, or (`edit`) the one writes go to (they differ under a JetStream domain prefix). */
  subject(key: string, edit = false): string {
    const ek = this.codec.encodeKey(key);
    this.codec.validateKey(ek);
    return this.codec.subjectForKey(ek, edit);
  }

  /** The key's last message (any operation), or null when it has none; retried through elections. */
  async last(key: string): Promise<LastEntry | null> {
    const subject = this.subject(key);
    const sm = await withBusRetry(this.budget(), async (_n, timeoutMs) =>
      (await managerWithTimeout(this.bus.nc, timeoutMs)).streams.getMessage(kvStreamName(this.bucket), { last_by_subj: subject }),
    );
    if (sm === null || sm.subject !== subject) return null;
    return { revision: sm.seq, operation: operationOf(sm), value: sm.data, created: sm.time };
  }

  /**
   * Publishes to the key's subject, retried through elections: unconditionally (one fresh msg id
   * across the attempts), or only if the key's last revision is `expectRevision` (0: no message),
   * as a conditional write whose id every writer with that expectation shares (see write.ts), so
   * exactly one of them is stored even where the server checks the expectation only before proposing.
   */
  async write(key: string, value: Uint8Array, expectRevision: number | undefined, extra?: (h: MsgHdrs) => void): Promise<number> {
    const subject = this.subject(key, true);
    let headers = natsHeaders();
    let writerId: string | undefined;
    if (expectRevision === undefined) headers.set("Nats-Msg-Id", newMsgId());
    else ({ headers, writerId } = conditionalHeaders(subject, expectRevision, headers));
    extra?.(headers);
    const options = { budget: this.budget(), idempotent: true, ...(writerId !== undefined ? { writerId } : {}) };
    return (await writeOnce(this.bus.nc, subject, value, headers, options)).seq;
  }
}

function operationOf(sm: StoredMsg): LastEntry["operation"] {
  const op = sm.header.get("KV-Operation");
  return op === "DEL" || op === "PURGE" ? op : "PUT";
}

/** Opens an existing KV bucket (created by ensureTopology) with the typed helpers. */
export async function openKv(bus: Bus, bucket: string, options: OpenKvOptions = {}): Promise<KvStore> {
  let kv: KV;
  try {
    kv = await new Kvm(bus.js).open(bucket);
    await withBusRetry(retryBudget(options.retryForMs ?? 20_000, bus.timeoutMs, () => bus.nc.isClosed()), () => kv.status());
  } catch (err) {
    const denied = permissionDeniedError(err, `opening KV bucket ${bucket}`);
    if (denied !== undefined) throw denied;
    throw new AutodidactError(`KV bucket ${bucket} is not available (run ensureTopology): ${String(err)}`, Code.FailedPrecondition, {
      cause: err,
    });
  }
  // The js client's timeout bounds one attempt (a caller may hand in a client with a short one).
  const maxAttemptMs = options.attemptTimeoutMs ?? (bus.js as unknown as { timeout?: number }).timeout ?? bus.timeoutMs;
  const req = new KvRequests(bus, bucket, kv as unknown as KeyCodec, options.retryForMs ?? 20_000, maxAttemptMs);

  const store: KvStore = {
    bucket,
    raw: kv,
    async get(key) {
      try {
        const e = await req.last(key);
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
        return await req.write(key, value, undefined);
      } catch (err) {
        throw wrap(bucket, key, "put", err);
      }
    },
    putJson: (key, value) => store.put(key, json(value)),
    async create(key, value) {
      try {
        try {
          return await req.write(key, value, 0);
        } catch (err) {
          // Taken, or a deleted key: its delete marker is the revision to write over.
          if (!isWrongLastSequence(err)) throw err;
          const last = await req.last(key);
          if (last === null || last.operation === "PUT") throw err;
          return await req.write(key, value, last.revision);
        }
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
        return await req.write(key, value, revision);
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
        // A delete marker, as the client writes it (an empty message with KV-Operation: DEL).
        await req.write(key, new Uint8Array(0), undefined, (h) => h.set("KV-Operation", "DEL"));
      } catch (err) {
        throw wrap(bucket, key, "delete", err);
      }
    },
    async keys(filter) {
      try {
        return await withBusRetry(req.budget(), async () => {
          const out: string[] = [];
          for await (const k of await kv.keys(filter)) out.push(k);
          return out.sort();
        });
      } catch (err) {
        throw wrap(bucket, filter ?? ">", "keys", err);
      }
    },
  };
  return store;
}
