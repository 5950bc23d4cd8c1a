// The owner of the `conductor` KV bucket: run records (`run.<id>`) and leases (`lease.<id>`), every
// write a compare-and-set. A run write carries the events it produced; they are published after the
// write lands and kept in the record until this process published them, so a conductor that dies in
// between leaves them for the next one to publish (their message ids make a repeat harmless).
import { clone, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isKvConflict, openKv, type Bus, type KvStore } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import { ConductorKeySpaces, KvBuckets } from "../../src/domain/topology/index.js";
import { PhaseProgressSchema, RunEventSchema, RunSchema, StoredRunSchema, type RoundPhase, type Run, type RunEvent, type StoredRun } from "../../src/gen/autodidact/v1/conductor_pb.js";
import type { RunEventLog } from "./run-events.js";
import { RUN_ID } from "./run-spec.js";

/** One event a write produces: what happened (the store numbers it and stamps run id and time). */
export interface EventInit {
  readonly event: RunEvent["event"];
  /** Round it concerns (default: the run's round after the write). */
  readonly round?: number;
}

/** Mutates a copy of the run; returns the events of the change, or undefined to write nothing. */
export type RunChange = (run: Run) => EventInit[] | undefined;

/** Who drives a run, until when (ms since the epoch). */
export interface LeaseRecord {
  readonly holder: string;
  readonly expiresAt: number;
}

const runKey = (id: string): string => `${ConductorKeySpaces.run.prefix}.${id}`;
const leaseKey = (id: string): string => `${ConductorKeySpaces.lease.prefix}.${id}`;
const checkId = (id: string): string => {
  if (!RUN_ID.test(id)) throw new AutodidactError(`invalid run id ${JSON.stringify(id.slice(0, 80))}: use 1-64 letters, digits, "-" or "_"`, Code.InvalidArgument);
  return id;
};
const isConflict = (err: unknown): boolean => isKvConflict(err) || (err instanceof AutodidactError && err.code === Code.AlreadyExists);

/** Run records and leases, with compare-and-set on every write. */
export class RunStore {
  readonly #kv: KvStore;
  readonly #events: RunEventLog;
  readonly #logger: Logger;
  /** Highest event sequence this process published, per run (older unpublished events are dropped from the record on its next write). */
  readonly #published = new Map<string, bigint>();

  private constructor(kv: KvStore, events: RunEventLog, logger: Logger) {
    this.#kv = kv;
    this.#events = events;
    this.#logger = logger;
  }

  /** Opens the bucket (created by the mesh topology). */
  static async open(bus: Bus, events: RunEventLog, logger: Logger): Promise<RunStore> {
    return new RunStore(await openKv(bus, KvBuckets.Conductor), events, logger);
  }

  /** The stored run with its revision, or null. */
  async get(id: string): Promise<{ stored: StoredRun; revision: number } | null> {
    const entry = await this.#kv.get(runKey(checkId(id)));
    if (entry === null) return null;
    try {
      return { stored: fromBinary(StoredRunSchema, entry.value), revision: entry.revision };
    } catch (cause) {
      throw new AutodidactError(`run ${id} is stored unreadably`, Code.DataLoss, { cause });
    }
  }

  /** The run, or NOT_FOUND. */
  async getRun(id: string): Promise<Run> {
    const found = await this.get(id);
    if (found?.stored.run === undefined) throw new AutodidactError(`no run ${id}`, Code.NotFound);
    return found.stored.run;
  }

  /** Every run (unordered). */
  async list(): Promise<Run[]> {
    const keys = await this.#kv.keys(`${ConductorKeySpaces.run.prefix}.*`);
    const runs: Run[] = [];
    for (const key of keys) {
      const found = await this.get(key.slice(ConductorKeySpaces.run.prefix.length + 1)).catch(() => null);
      if (found?.stored.run !== undefined) runs.push(found.stored.run);
    }
    return runs;
  }

  /** Stores a new run with its first events; ALREADY_EXISTS when a run with its id exists. */
  async create(run: Run, events: readonly EventInit[]): Promise<Run> {
    const stored = create(StoredRunSchema, { run: clone(RunSchema, run) });
    const fresh = this.#number(stored.run!, events);
    stored.unpublished = fresh;
    try {
      await this.#kv.create(runKey(checkId(run.id)), toBinary(StoredRunSchema, stored));
    } catch (err) {
      if (isConflict(err)) throw new AutodidactError(`run ${run.id} already exists`, Code.AlreadyExists, { cause: err });
      throw err;
    }
    await this.#publish(run.id, fresh);
    return stored.run!;
  }

  /**
   * Applies `change` to the current run with compare-and-set (re-reading and re-applying on a
   * conflict), then publishes the events it produced. Returns the run as written (or as it is, when
   * `change` wrote nothing). `change` may throw to refuse (nothing is written).
   */
  async update(id: string, change: RunChange): Promise<Run> {
    for (let attempt = 1; ; attempt++) {
      const found = await this.get(id);
      if (found?.stored.run === undefined) throw new AutodidactError(`no run ${id}`, Code.NotFound);
      const run = clone(RunSchema, found.stored.run);
      const inits = change(run);
      if (inits === undefined) return found.stored.run;
      run.updatedAt = timestampFromDate(new Date());
      const fresh = this.#number(run, inits);
      const done = this.#published.get(id) ?? 0n;
      const stored = create(StoredRunSchema, { run, unpublished: [...found.stored.unpublished.filter((e) => e.seq > done), ...fresh] });
      try {
        await this.#kv.update(runKey(id), toBinary(StoredRunSchema, stored), found.revision);
      } catch (err) {
        if (isConflict(err) && attempt < 50) continue;
        throw err;
      }
      await this.#publish(id, stored.unpublished);
      return run;
    }
  }

  /** Publishes the events a run's record still holds (a conductor taking a run over does it first). */
  async republish(id: string): Promise<void> {
    const found = await this.get(id);
    if (found !== null) await this.#publish(id, found.stored.unpublished);
  }

  /** The lease of a run with its revision, or null. */
  async getLease(id: string): Promise<{ lease: LeaseRecord; revision: number } | null> {
    const entry = await this.#kv.getJson<LeaseRecord>(leaseKey(checkId(id)));
    return entry === null ? null : { lease: entry.value, revision: entry.revision };
  }

  /** Writes a lease if it is still at `revision` (0: if there is none); a conflict is Aborted/AlreadyExists. */
  async putLease(id: string, lease: LeaseRecord, revision: number): Promise<number> {
    const key = leaseKey(checkId(id));
    return revision === 0 ? await this.#kv.createJson(key, lease) : await this.#kv.updateJson(key, lease, revision);
  }

  /** Numbers a write's events after the run's last one and stamps them. */
  #number(run: Run, inits: readonly EventInit[]): RunEvent[] {
    const at = timestampFromDate(new Date());
    return inits.map((init) => {
      run.lastEventSeq += 1n;
      return create(RunEventSchema, { runId: run.id, seq: run.lastEventSeq, at, round: init.round ?? run.round, event: init.event });
    });
  }

  async #publish(id: string, events: readonly RunEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.#events.publish(events);
      const last = events[events.length - 1]!.seq;
      if (last > (this.#published.get(id) ?? 0n)) this.#published.set(id, last);
    } catch (err) {
      // Kept in the record: the next write (or the next conductor) publishes them.
      this.#logger.warn("could not publish run events; they stay in the run record", { run: id, error: String(err) });
    }
  }
}

/** A progress event inside a phase. */
export function progressEvent(phase: RoundPhase, done: number, total: number, detail: string): EventInit {
  return { event: { case: "progress", value: create(PhaseProgressSchema, { phase, done: BigInt(done), total: BigInt(total), detail }) } };
}

/** A status event's snapshot of the run: without its finished rounds (each has its own event). */
export function statusSnapshot(run: Run): EventInit {
  const snapshot = clone(RunSchema, run);
  snapshot.rounds = [];
  return { event: { case: "status", value: snapshot } };
}
