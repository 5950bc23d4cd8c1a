// Finds the runs to drive (PENDING or RUNNING) and drives each whose lease this conductor can take:
// a run without a live driver (never picked up, or its conductor was killed and its lease expired) is
// taken over within a lease's time to live. Several conductors may run side by side; each run has one driver.
import { RunStatus } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { RunDriver } from "./driver.js";
import { Lease } from "./lease.js";
import type { ConductorServices } from "./phases/index.js";
import { sleep } from "./phases/wait.js";

/** Options of {@link RunScheduler}. */
export interface SchedulerOptions {
  /** This process's lease holder id (unique per process). */
  readonly holder: string;
  readonly leaseTtlMs: number;
  /** How often runs are looked for. */
  readonly scanMs: number;
}

/** The runs this conductor drives. */
export class RunScheduler {
  readonly #services: ConductorServices;
  readonly #options: SchedulerOptions;
  readonly #driving = new Map<string, { lease: Lease; done: Promise<void> }>();
  readonly #stop = new AbortController();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(services: ConductorServices, options: SchedulerOptions) {
    this.#services = services;
    this.#options = options;
  }

  /** Ids of the runs driven now. */
  driving(): string[] {
    return [...this.#driving.keys()];
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Looks for runs at once (after a run was created or resumed). */
  kick(): void {
    this.#wake?.();
  }

  /** Stops driving: every driver stops where it is (the next conductor resumes there) and its lease is released. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#wake?.();
    await this.#loop;
    await Promise.all(
      [...this.#driving.values()].map(async ({ lease, done }) => {
        lease.abandon();
        await done;
        await lease.release();
      }),
    );
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        await this.#scan();
      } catch (err) {
        this.#services.logger.warn("looking for runs to drive failed", { error: String(err) });
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        void sleep(this.#options.scanMs, this.#stop.signal).then(resolve);
      });
      this.#wake = undefined;
    }
  }

  async #scan(): Promise<void> {
    for (const run of await this.#services.store.list()) {
      if (this.#stop.signal.aborted) return;
      if (this.#driving.has(run.id) || (run.status !== RunStatus.PENDING && run.status !== RunStatus.RUNNING)) continue;
      const lease = await Lease.acquire(this.#services.store, run.id, this.#options.holder, this.#options.leaseTtlMs, this.#services.logger);
      if (lease === undefined) continue;
      this.#services.logger.info("driving a run", { run: run.id, round: run.round });
      const done = new RunDriver(this.#services, lease).drive().finally(async () => {
        this.#driving.delete(run.id);
        if (!lease.signal.aborted) await lease.release();
        this.kick();
      });
      this.#driving.set(run.id, { lease, done });
    }
  }
}
