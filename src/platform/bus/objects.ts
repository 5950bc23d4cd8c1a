import { createHash } from "node:crypto";
import { Objm, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import { AutodidactError, Code } from "../errors/index.js";
import type { Bus } from "./connection.js";
import { permissionDeniedError } from "./permission.js";
import { isAmbiguousWriteError, retryBudget, withBusRetry, type RetryBudget } from "./retry.js";

/** Description of a stored object, with the digest as lowercase hex (what registries record). */
export interface StoredObject {
  bucket: string;
  name: string;
  size: number;
  chunks: number;
  /** SHA-256 of the content, lowercase hex. */
  sha256: string;
  mtime: string;
  revision: number;
  metadata: Record<string, string>;
}

/** Options of {@link ObjectStoreClient.get}. */
export interface GetObjectOptions {
  /** Hex SHA-256 the caller expects (e.g. from the registry); DataLoss when the content differs. */
  expectSha256?: string;
}

/**
 * An object store bucket for checkpoint files. Every read is verified against SHA-256 (the
 * digest stored with the object, and optionally the one the caller recorded), so a corrupt
 * checkpoint is a clear DataLoss error instead of a silently broken model.
 *
 * Every operation rides out a JetStream leader election or a restart (transient failures retried
 * with bounded backoff for `retryForMs`, see {@link OpenObjectStoreOptions}). A put whose attempt
 * failed ambiguously (its reply lost) first asks whether that attempt landed (the object is there
 * with this content, description and metadata) and writes again only when it did not: a retried
 * put stores the object once.
 */
export interface ObjectStoreClient {
  readonly bucket: string;
  readonly raw: ObjectStore;
  put(name: string, data: Uint8Array, options?: { description?: string; metadata?: Record<string, string> }): Promise<StoredObject>;
  get(name: string, options?: GetObjectOptions): Promise<{ data: Uint8Array; info: StoredObject }>;
  /** The description of `name`, or null when absent. */
  info(name: string): Promise<StoredObject | null>;
  delete(name: string): Promise<void>;
  list(): Promise<StoredObject[]>;
}

/** Lowercase hex SHA-256 of `data`. */
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function digestToHex(digest: string): string {
  const prefix = "SHA-256=";
  if (!digest.startsWith(prefix)) return "";
  return Buffer.from(digest.slice(prefix.length), "base64url").toString("hex");
}

const EMPTY_SHA256 = sha256Hex(new Uint8Array(0));

function describe(info: ObjectInfo): StoredObject {
  return {
    bucket: info.bucket,
    name: info.name,
    size: info.size,
    chunks: info.chunks,
    sha256: info.size === 0 && info.digest === "" ? EMPTY_SHA256 : digestToHex(info.digest),
    mtime: info.mtime,
    revision: info.revision,
    metadata: { ...(info.metadata ?? {}) },
  };
}

function wrap(bucket: string, name: string, op: string, err: unknown): AutodidactError {
  if (err instanceof AutodidactError) return err;
  const denied = permissionDeniedError(err, `object store ${op} ${bucket}/${name}`);
  if (denied !== undefined) return denied;
  const msg = err instanceof Error ? err.message : String(err);
  if (/digest|corrupt/i.test(msg)) {
    return new AutodidactError(`object ${bucket}/${name} is corrupt: ${msg}`, Code.DataLoss, { cause: err });
  }
  return new AutodidactError(`object store ${op} ${bucket}/${name} failed: ${msg}`, Code.Unavailable, { cause: err });
}

/** Options of {@link openObjectStore}. */
export interface OpenObjectStoreOptions {
  /** How long one operation keeps retrying transient failures, in ms (default 20 s; 0 fails at once). */
  retryForMs?: number;
}

function sameMetadata(a: Record<string, string>, b: Record<string, string> | undefined): boolean {
  const bb = b ?? {};
  const keys = Object.keys(a);
  return keys.length === Object.keys(bb).length && keys.every((k) => a[k] === bb[k]);
}

/** Opens an object store bucket created by ensureTopology. */
export async function openObjectStore(bus: Bus, bucket: string, options: OpenObjectStoreOptions = {}): Promise<ObjectStoreClient> {
  const retryForMs = options.retryForMs ?? 20_000;
  const budget = (): RetryBudget => retryBudget(retryForMs, bus.timeoutMs, () => bus.nc.isClosed());
  let os: ObjectStore;
  try {
    os = await new Objm(bus.js).open(bucket);
    await withBusRetry(budget(), () => os.status());
  } catch (err) {
    const denied = permissionDeniedError(err, `opening object store ${bucket}`);
    if (denied !== undefined) throw denied;
    throw new AutodidactError(`object store ${bucket} is not available (run ensureTopology): ${String(err)}`, Code.FailedPrecondition, {
      cause: err,
    });
  }
  const client: ObjectStoreClient = {
    bucket,
    raw: os,
    async put(name, data, options = {}) {
      try {
        const meta: Parameters<ObjectStore["putBlob"]>[0] = { name };
        if (options.description !== undefined) meta.description = options.description;
        if (options.metadata !== undefined) meta.metadata = options.metadata;
        const local = sha256Hex(data);
        let ambiguous = false;
        const info = await withBusRetry(budget(), async () => {
          if (ambiguous) {
            // The earlier attempt's reply was lost: it may have stored the object already.
            const there = await os.info(name);
            if (
              there !== null &&
              !there.deleted &&
              describe(there).sha256 === local &&
              there.size === data.byteLength &&
              (there.description ?? "") === (options.description ?? "") &&
              sameMetadata(options.metadata ?? {}, there.metadata)
            ) {
              return there;
            }
          }
          try {
            return await os.putBlob(meta, data);
          } catch (err) {
            if (isAmbiguousWriteError(err)) ambiguous = true;
            throw err;
          }
        });
        const stored = describe(info);
        if (stored.sha256 !== local) {
          throw new AutodidactError(`object ${bucket}/${name} stored with digest ${stored.sha256}, expected ${local}`, Code.DataLoss);
        }
        return stored;
      } catch (err) {
        throw wrap(bucket, name, "put", err);
      }
    },
    async get(name, options = {}) {
      let read: { info: StoredObject; data: Buffer } | null;
      try {
        // The whole read again after a transient failure: a read cut by an election starts over.
        read = await withBusRetry(budget(), async () => {
          const result = await os.get(name);
          if (result === null) return null;
          const parts: Uint8Array[] = [];
          const reader = result.data.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            parts.push(value);
          }
          const streamErr = await result.error;
          if (streamErr) throw streamErr;
          return { info: describe(result.info), data: Buffer.concat(parts) };
        });
      } catch (err) {
        throw wrap(bucket, name, "get", err);
      }
      if (read === null) {
        throw new AutodidactError(`object ${bucket}/${name} not found`, Code.NotFound, { details: { bucket, name } });
      }
      const { info, data } = read;
      const actual = sha256Hex(data);
      if (data.byteLength !== info.size || actual !== info.sha256) {
        throw new AutodidactError(
          `object ${bucket}/${name} is corrupt: got ${data.byteLength} bytes with sha256 ${actual}, ` +
            `stored ${info.size} bytes with sha256 ${info.sha256}`,
          Code.DataLoss,
          { details: { bucket, name } },
        );
      }
      if (options.expectSha256 !== undefined && options.expectSha256.toLowerCase() !== actual) {
        throw new AutodidactError(
          `object ${bucket}/${name} has sha256 ${actual}, expected ${options.expectSha256.toLowerCase()}`,
          Code.DataLoss,
          { details: { bucket, name } },
        );
      }
      return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info };
    },
    async info(name) {
      try {
        const i = await withBusRetry(budget(), () => os.info(name));
        return i === null || i.deleted ? null : describe(i);
      } catch (err) {
        throw wrap(bucket, name, "info", err);
      }
    },
    async delete(name) {
      try {
        await withBusRetry(budget(), () => os.delete(name));
      } catch (err) {
        throw wrap(bucket, name, "delete", err);
      }
    },
    async list() {
      try {
        return (await withBusRetry(budget(), () => os.list())).filter((i) => !i.deleted).map(describe);
      } catch (err) {
        throw wrap(bucket, "*", "list", err);
      }
    },
  };
  return client;
}
