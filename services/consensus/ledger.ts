// The ledger: the `consensus` KV bucket, one record per sample. Its create-if-absent and
// compare-and-set writes are the exactly-once gate: only the worker whose write lands publishes.
import { jetstream } from "@nats-io/jetstream";
import { isKvConflict, openKv, type Bus, type KvStore } from "../../src/platform/bus/index.js";
import { KvBuckets } from "../../src/domain/topology/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { ConsensusRecord, StoredRecord } from "./record.js";

/** A lost compare-and-set: someone else wrote the record first (update) or created it (create). */
export function isCasConflict(err: unknown): boolean {
  return isKvConflict(err) || (err instanceof AutodidactError && err.code === Code.AlreadyExists);
}

/** Attempts of {@link ConsensusLedger.markPublished} before it leaves the mark to a sweep. */
const MARK_ATTEMPTS = 20;

/**
 * The consensus records of every sample, keyed by sample id. A worker writes through it; the
 * decision audit reads it to compare what was published with what the gate let through.
 */
export class ConsensusLedger {
  private readonly kv: KvStore;

  private constructor(kv: KvStore) {
    this.kv = kv;
  }

  /**
   * Opens the bucket. KV requests get a short timeout of their own (default 3 s): a request lost
   * while NATS restarts fails fast and is retried, instead of holding its sample for the bus-wide
   * timeout.
   */
  static async open(bus: Bus, kvTimeoutMs = 3_000): Promise<ConsensusLedger> {
    return new ConsensusLedger(await openKv({ ...bus, js: jetstream(bus.nc, { timeout: kvTimeoutMs }) }, KvBuckets.Consensus));
  }

  /** The record of a sample with its revision, or null when the sample has none. */
  async read(sampleId: string): Promise<StoredRecord | null> {
    const entry = await this.kv.getJson<ConsensusRecord>(sampleId);
    return entry === null ? null : { record: entry.value, revision: entry.revision };
  }

  /** Create-if-absent, the fast path's gate: AlreadyExists (a CAS conflict) when the sample has a record. */
  create(sampleId: string, record: ConsensusRecord): Promise<number> {
    return this.kv.createJson(sampleId, record);
  }

  /** Compare-and-set from `revision` (0: create-if-absent), the merge path's gate; a conflict when someone wrote first. */
  write(sampleId: string, record: ConsensusRecord, revision: number): Promise<number> {
    return revision === 0 ? this.kv.createJson(sampleId, record) : this.kv.updateJson(sampleId, record, revision);
  }

  /**
   * Marks a stored decision published, re-reading after each conflict (`onConflict` counts them);
   * gives up quietly after a few, since the mark only spares sweepers a re-publish.
   */
  async markPublished(sampleId: string, onConflict: () => void): Promise<void> {
    for (let attempt = 0; attempt < MARK_ATTEMPTS; attempt++) {
      const current = await this.read(sampleId);
      if (current === null || current.record.published) return;
      try {
        await this.kv.updateJson(sampleId, { ...current.record, published: true }, current.revision);
        return;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        onConflict();
      }
    }
  }

  /** Every sample id with a record (a full sweep scans them). */
  keys(): Promise<string[]> {
    return this.kv.keys();
  }
}
