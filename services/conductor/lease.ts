// One conductor drives a run at a time: the holder of its lease (`lease.<id>`: holder + expiry),
// renewed by compare-and-set every third of its time to live. A holder that cannot renew stops
// driving before the lease expires; an expired lease (its holder was killed) may be taken over.
//
// Renewals never overlap. A second renewal started while the first still waits on NATS (a leader
// election can hold a write for seconds) would expect the same revision, find the first one's write
// in its place and report the lease as taken by another conductor — which, after node kills, made a
// conductor take a run's lease and lose it at every first renewal. Instead a slow renewal is waited
// for, and the driver stops when the lease it can prove would expire before the renewal returns.
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { LeaseRecord, RunStore } from "./run-store.js";

/** A lease this process holds; `signal` aborts the moment it is lost (or released). */
export class Lease {
  readonly runId: string;
  readonly holder: string;
  readonly #store: RunStore;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  readonly #lost = new AbortController();
  #revision: number;
  #expiresAt: number;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> = Promise.resolve();
  /** Whether a renewal is waiting on NATS. */
  #inFlight = false;
  /** When the last renewal started (or the lease was taken). */
  #lastStart: number;

  private constructor(store: RunStore, runId: string, holder: string, ttlMs: number, logger: Logger, revision: number, expiresAt: number) {
    this.#store = store;
    this.runId = runId;
    this.holder = holder;
    this.#ttlMs = ttlMs;
    this.#logger = logger;
    this.#revision = revision;
    this.#expiresAt = expiresAt;
    this.#lastStart = expiresAt - ttlMs;
    // Ticks finer than the renewal period, so a renewal starts on time after a slow one and a stuck
    // one is noticed before the lease runs out.
    this.#timer = setInterval(() => this.#tick(), Math.max(20, Math.floor(ttlMs / 12)));
    this.#timer.unref();
  }

  /**
   * Takes the lease of a run when nobody holds it or its holder let it expire; undefined when
   * another conductor holds it (or won the race for it).
   */
  static async acquire(store: RunStore, runId: string, holder: string, ttlMs: number, logger: Logger): Promise<Lease | undefined> {
    const current = await store.getLease(runId);
    const now = Date.now();
    if (current !== null && current.lease.holder !== holder && current.lease.expiresAt > now) return undefined;
    const expiresAt = now + ttlMs;
    try {
      const revision = await store.putLease(runId, { holder, expiresAt }, current?.revision ?? 0);
      if (current !== null && current.lease.holder !== "" && current.lease.holder !== holder) {
        logger.info("took over an expired lease", { run: runId, from: current.lease.holder, expiredMsAgo: now - current.lease.expiresAt });
      }
      return new Lease(store, runId, holder, ttlMs, logger, revision, expiresAt);
    } catch (err) {
      if (err instanceof AutodidactError && (err.code === Code.Aborted || err.code === Code.AlreadyExists)) return undefined;
      throw err;
    }
  }

  /** Aborted once the lease is lost: the driver stops at once. */
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  /** Stops renewing and aborts `signal`: the driver stops; the lease itself stays until released or expired. */
  abandon(): void {
    this.#stop("abandoned");
  }

  /** Stops renewing and lets the lease expire now, so another conductor may take the run at once. */
  async release(): Promise<void> {
    this.#stop("released");
    await this.#renewing.catch(() => undefined);
    try {
      await this.#store.putLease(this.runId, { holder: "", expiresAt: 0 }, this.#revision);
    } catch {
      // Taken over meanwhile, or NATS away: it expires on its own.
    }
  }

  #stop(why: string): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#lost.signal.aborted) this.#lost.abort(new AutodidactError(`lease of run ${this.runId} ${why}`, Code.Aborted));
  }

  /** Starts a renewal when one is due and none is waiting; stops driving when a waiting one is too late. */
  #tick(): void {
    if (this.#lost.signal.aborted) return;
    const now = Date.now();
    if (this.#inFlight) {
      if (now > this.#expiresAt - this.#ttlMs / 6) {
        this.#logger.warn("renewing the lease of a run takes too long (NATS unavailable?); stopping", { run: this.runId });
        this.#stop("expired");
      }
      return;
    }
    if (now - this.#lastStart < this.#ttlMs / 3) return;
    this.#inFlight = true;
    this.#lastStart = now;
    this.#renewing = this.#renew().finally(() => {
      this.#inFlight = false;
    });
  }

  async #renew(): Promise<void> {
    if (this.#lost.signal.aborted) return;
    const expiresAt = Date.now() + this.#ttlMs;
    try {
      this.#revision = await this.#store.putLease(this.runId, { holder: this.holder, expiresAt } satisfies LeaseRecord, this.#revision);
      this.#expiresAt = expiresAt;
    } catch (err) {
      if (err instanceof AutodidactError && (err.code === Code.Aborted || err.code === Code.AlreadyExists)) {
        this.#logger.warn("lost the lease of a run: another conductor drives it", { run: this.runId });
        this.#stop("lost");
        return;
      }
      // Cannot reach NATS: stop driving well before the lease could expire and be taken over.
      if (Date.now() > this.#expiresAt - this.#ttlMs / 6) {
        this.#logger.warn("could not renew the lease of a run in time; stopping", { run: this.runId, error: String(err) });
        this.#stop("expired");
      }
    }
  }
}
