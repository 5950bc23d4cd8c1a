import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, sep } from "node:path";
import { sha256Hex, type Bus } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createLogger } from "../../platform/telemetry/index.js";
import { checkKeyToken, checkVersion, objectName, registryKeys, RegistryStores } from "./bucket.js";

/** Where a checkpoint stands in its life: the monitor moves it out of `candidate`. */
export type CheckpointStatus = "candidate" | "promoted" | "rejected" | "rolled_back";

/** One file of a checkpoint folder, by its path inside the folder. */
export interface CheckpointFile {
  name: string;
  sha256: string;
  size: number;
}

/**
 * The registry's record of one checkpoint version of one lineage: enough to fetch, verify and
 * explain it (what trained it, from which parent, with which data) without opening its files.
 */
export interface CheckpointRecord {
  lineage: string;
  /** Contiguous per lineage: 1, 2, 3… */
  version: number;
  /** 0 = none (a base model). */
  parentVersion: number;
  round: number;
  status: CheckpointStatus;
  statusReason: string;
  files: CheckpointFile[];
  /** The trainer's manifest: hyperparameters, mix counts, sample-id digest, loss curve… */
  manifest: Record<string, unknown>;
  metrics: Record<string, number>;
  createdAt: string;
}

/** The promoted pointer of a lineage with its KV revision (for compare-and-set moves). */
export interface PromotedPointer {
  version: number;
  revision: number;
}

/** Options of {@link createRegistry}. */
export interface RegistryOptions {
  /** Local folder where fetched checkpoints are kept (`<lineage>/<version>/`). */
  cacheDir: string;
}

/**
 * The checkpoint registry shared by the trainer (writes candidates), the monitor (promotes, rejects,
 * rolls back) and the generator and critics (serve the promoted version). Records and pointers
 * live in the `registry` KV bucket, files in the `checkpoints` object store.
 */
export interface Registry {
  /**
   * Reserves the next version of a lineage (compare-and-set counter: versions are contiguous).
   * With `owner` (e.g. a trainer's round), a repeated call by the same owner returns the version it
   * already got as long as nobody allocated since: a crash between allocating and recording the
   * allocation does not leave a gap.
   */
  allocateVersion(lineage: string, owner?: string): Promise<number>;
  /** The last version allocated in a lineage (0 when none): with the records, shows whether versions were lost. */
  lastAllocatedVersion(lineage: string): Promise<number>;
  /** Uploads `dir`'s files listed in `record.files` (verified against their digests), then writes the record. */
  putCheckpoint(record: CheckpointRecord, dir: string): Promise<void>;
  getCheckpoint(lineage: string, version: number): Promise<CheckpointRecord | undefined>;
  /** Every record, or one lineage's, ordered by lineage then version. */
  listCheckpoints(lineage?: string): Promise<CheckpointRecord[]>;
  setStatus(lineage: string, version: number, status: CheckpointStatus, reason: string): Promise<CheckpointRecord>;
  /** The promoted pointer of a lineage: the version the mesh serves (the promotion signal). */
  getPromoted(lineage: string): Promise<PromotedPointer | undefined>;
  /**
   * Moves the promoted pointer (only the monitor may): this IS the promotion or rollback, every
   * watcher swaps to it. With `expectedRevision`, only if nobody moved it since (else Aborted).
   */
  setPromoted(lineage: string, version: number, expectedRevision?: number): Promise<number>;
  /**
   * Calls `onChange` with each new promoted version of a lineage; returns a stop function. This
   * watch is how generator and critics follow promotions and rollbacks (no event stream is needed).
   */
  watchPromoted(lineage: string, onChange: (version: number) => void): () => void;
  /** A local folder holding every file of the checkpoint, each verified by its SHA-256. */
  materialize(lineage: string, version: number): Promise<string>;
}

function checkLineage(lineage: string): void {
  checkKeyToken("lineage", lineage);
}

/**
 * Checks a file name from a record before it touches the disk: relative, normalized, inside the
 * checkpoint folder (no `..`, no absolute path), so a forged record cannot write or read elsewhere.
 */
export function safeCheckpointPath(root: string, name: string): string {
  const norm = normalize(name);
  if (name.length === 0 || isAbsolute(name) || norm.startsWith("..") || norm.split(sep).includes("..") || name.includes("\0")) {
    throw new AutodidactError(`checkpoint file name "${name}" escapes its folder`, Code.InvalidArgument);
  }
  const path = join(root, norm);
  const rel = relative(root, path);
  if (rel.startsWith("..") || isAbsolute(rel)) {
    throw new AutodidactError(`checkpoint file name "${name}" escapes its folder`, Code.InvalidArgument);
  }
  return path;
}

/** Lists every file below `dir` as paths relative to it (with `/`), for building a record's file list. */
export async function listCheckpointFiles(dir: string): Promise<CheckpointFile[]> {
  const out: CheckpointFile[] = [];
  const walk = async (sub: string): Promise<void> => {
    for (const entry of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(rel);
      else if (entry.isFile()) {
        const data = await readFile(join(dir, rel));
        out.push({ name: rel, sha256: sha256Hex(data), size: data.byteLength });
      }
    }
  };
  await walk("");
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Opens the registry on a bus (buckets must exist: `ensureTopology`). */
export function createRegistry(bus: Bus, options: RegistryOptions): Registry {
  const log = createLogger("registry");
  const stores = new RegistryStores(bus);
  const kv = () => stores.kv();
  const os = () => stores.objects();
  const materializing = new Map<string, Promise<string>>();

  const getCheckpoint = async (lineage: string, version: number): Promise<CheckpointRecord | undefined> => {
    checkLineage(lineage);
    checkVersion(version);
    const entry = await (await kv()).getJson<CheckpointRecord>(registryKeys.checkpoint(lineage, version));
    return entry?.value ?? undefined;
  };

  const requireCheckpoint = async (lineage: string, version: number): Promise<CheckpointRecord> => {
    const record = await getCheckpoint(lineage, version);
    if (!record) throw new AutodidactError(`checkpoint ${lineage}@${version} is not in the registry`, Code.NotFound);
    return record;
  };

  const download = async (record: CheckpointRecord, final: string): Promise<string> => {
    const tmp = join(options.cacheDir, record.lineage, `.tmp-${record.version}-${randomBytes(4).toString("hex")}`);
    try {
      const store = await os();
      for (const file of record.files) {
        const path = safeCheckpointPath(tmp, file.name);
        const { data } = await store.get(objectName(record.lineage, record.version, file.name), { expectSha256: file.sha256 });
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, data);
      }
      try {
        await rename(tmp, final);
      } catch (err) {
        // Another process finished the same download first: keep theirs.
        if (!(await exists(final))) throw err;
      }
      return final;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  };

  const verifyLocal = async (record: CheckpointRecord, dir: string): Promise<boolean> => {
    for (const file of record.files) {
      try {
        const data = await readFile(safeCheckpointPath(dir, file.name));
        if (sha256Hex(data) !== file.sha256) return false;
      } catch {
        return false;
      }
    }
    return true;
  };

  return {
    async allocateVersion(lineage, owner) {
      checkLineage(lineage);
      const result = await (await kv()).modify<{ last: number; owner?: string }>(registryKeys.versionCounter(lineage), (current) =>
        owner !== undefined && owner !== "" && current?.owner === owner ? undefined : { last: (current?.last ?? 0) + 1, ...(owner ? { owner } : {}) },
      );
      return result.value!.last;
    },

    async lastAllocatedVersion(lineage) {
      checkLineage(lineage);
      return (await (await kv()).getJson<{ last: number }>(registryKeys.versionCounter(lineage)))?.value.last ?? 0;
    },

    async putCheckpoint(record, dir) {
      checkLineage(record.lineage);
      checkVersion(record.version);
      const store = await os();
      for (const file of record.files) {
        const data = await readFile(safeCheckpointPath(dir, file.name));
        const digest = sha256Hex(data);
        if (digest !== file.sha256 || data.byteLength !== file.size) {
          throw new AutodidactError(
            `${join(dir, file.name)} does not match its record (sha256 ${digest}, ${data.byteLength} bytes)`,
            Code.DataLoss,
          );
        }
        await store.put(objectName(record.lineage, record.version, file.name), data);
      }
      try {
        await (await kv()).createJson(registryKeys.checkpoint(record.lineage, record.version), record);
      } catch (err) {
        if (err instanceof AutodidactError && err.code === Code.AlreadyExists) {
          throw new AutodidactError(`checkpoint ${record.lineage}@${record.version} already exists`, Code.AlreadyExists, { cause: err });
        }
        throw err;
      }
      log.info("checkpoint registered", { lineage: record.lineage, version: record.version, files: record.files.length });
    },

    getCheckpoint,

    async listCheckpoints(lineage) {
      if (lineage !== undefined) checkLineage(lineage);
      const store = await kv();
      const names = await store.keys(registryKeys.checkpoints(lineage));
      const records: CheckpointRecord[] = [];
      for (const name of names) {
        const entry = await store.getJson<CheckpointRecord>(name);
        if (entry?.value) records.push(entry.value);
      }
      return records.sort((a, b) => a.lineage.localeCompare(b.lineage) || a.version - b.version);
    },

    async setStatus(lineage, version, status, reason) {
      await requireCheckpoint(lineage, version);
      const result = await (await kv()).modify<CheckpointRecord>(registryKeys.checkpoint(lineage, version), (current) =>
        current ? { ...current, status, statusReason: reason } : undefined,
      );
      if (!result.value) throw new AutodidactError(`checkpoint ${lineage}@${version} vanished`, Code.NotFound);
      return result.value;
    },

    async getPromoted(lineage) {
      checkLineage(lineage);
      const entry = await (await kv()).getJson<{ version: number }>(registryKeys.promoted(lineage));
      if (!entry?.value) return undefined;
      return { version: entry.value.version, revision: entry.revision };
    },

    async setPromoted(lineage, version, expectedRevision) {
      await requireCheckpoint(lineage, version);
      const store = await kv();
      const value = { version, at: new Date().toISOString() };
      if (expectedRevision === undefined) return await store.putJson(registryKeys.promoted(lineage), value);
      if (expectedRevision === 0) return await store.createJson(registryKeys.promoted(lineage), value);
      return await store.updateJson(registryKeys.promoted(lineage), value, expectedRevision);
    },

    watchPromoted(lineage, onChange) {
      checkLineage(lineage);
      let stopped = false;
      let stopWatch: (() => void) | undefined;
      void (async () => {
        const store = await kv();
        const iter = await store.raw.watch({ key: registryKeys.promoted(lineage), include: "updates" });
        stopWatch = () => iter.stop();
        if (stopped) iter.stop();
        for await (const entry of iter) {
          if (entry.operation !== "PUT") continue;
          try {
            const { version } = entry.json<{ version: number }>();
            if (Number.isSafeInteger(version) && version > 0) onChange(version);
          } catch (err) {
            log.warn("ignoring a malformed promoted pointer", { lineage, error: String(err) });
          }
        }
      })().catch((err: unknown) => log.error("promoted watch ended", { lineage, error: String(err) }));
      return () => {
        stopped = true;
        stopWatch?.();
      };
    },

    async materialize(lineage, version) {
      const record = await requireCheckpoint(lineage, version);
      const final = join(options.cacheDir, lineage, String(version));
      const key = `${lineage}@${version}`;
      const pending = materializing.get(key);
      if (pending) return await pending;
      const work = (async () => {
        if (await exists(final)) {
          if (await verifyLocal(record, final)) return final;
          log.warn("cached checkpoint differs from its record; fetching it again", { lineage, version });
          await rm(final, { recursive: true, force: true });
        }
        await mkdir(join(options.cacheDir, lineage), { recursive: true });
        return await download(record, final);
      })();
      materializing.set(key, work);
      try {
        return await work;
      } finally {
        materializing.delete(key);
      }
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
