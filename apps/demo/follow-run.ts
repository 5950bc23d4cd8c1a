// Follows one run at the conductor (WatchRun) and turns its events into what the user sees: phase
// progress bars, the base row once the bases are imported, a table row per finished round, and the
// run's data for the report. It decides nothing: the run goes on at the conductor whatever it prints.
import { RoundPhase, RunStatus, type RunEvent } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Registry } from "../../src/domain/registry/index.js";
import type { DemoRound, DemoRun } from "../report/types.js";
import { PhaseBars } from "./phase-bars.js";
import type { DemoOutput } from "./progress.js";
import type { RoundResults } from "./results.js";
import { printHeader, printRow, roundRow } from "./table.js";

/** What the follower needs. */
export interface FollowOptions {
  readonly out: DemoOutput;
  readonly results: RoundResults;
  readonly registry: Registry;
  readonly lineages: readonly string[];
  /** Lengths of the table's columns (the test split's). */
  readonly lengths: readonly number[];
  /** The run as the report holds it before any round (name, variant, labels...). */
  readonly run: Omit<DemoRun, "base" | "rounds" | "seconds">;
  readonly onRound?: (run: DemoRun) => void | Promise<void>;
}

/** Builds the run's report data from its events. */
export class RunFollower {
  readonly #o: FollowOptions;
  readonly #bars: PhaseBars;
  readonly #started = Date.now();
  #base: DemoRun["base"] | undefined;
  #rounds: DemoRound[] = [];
  #end: RunEvent | undefined;

  constructor(o: FollowOptions) {
    this.#o = o;
    this.#bars = new PhaseBars(o.out);
  }

  /** The run so far. */
  run(): DemoRun {
    return { ...this.#o.run, base: this.#base ?? { frontier: 0, accuracyByLength: [] }, rounds: [...this.#rounds], seconds: (Date.now() - this.#started) / 1000 };
  }

  /** Consumes the run's events until the run ends; the run's data, or the reason it failed or was cancelled. */
  async follow(events: AsyncIterable<RunEvent>): Promise<DemoRun> {
    for await (const e of events) await this.#onEvent(e);
    this.#bars.finish();
    const end = this.#end?.event.case === "status" ? this.#end.event.value : undefined;
    if (end === undefined) throw new AutodidactError("the conductor's event stream ended before the run did", Code.Unavailable);
    if (end.status !== RunStatus.SUCCEEDED) {
      throw new AutodidactError(`run ${end.id} ${RunStatus[end.status]?.toLowerCase()}: ${end.message} (see the logs in ${this.#o.run.stateDir}/logs)`, Code.Aborted);
    }
    return this.run();
  }

  async #onEvent(e: RunEvent): Promise<void> {
    switch (e.event.case) {
      case "status": {
        const s = e.event.value.status;
        if (s === RunStatus.SUCCEEDED || s === RunStatus.FAILED || s === RunStatus.CANCELLED) this.#end = e;
        return;
      }
      case "phaseStarted":
        // The first SERVE comes after IMPORT: the bases are promoted and evaluated.
        if (e.event.value === RoundPhase.SERVE && this.#base === undefined) {
          this.#bars.finish();
          await this.#printBase();
        }
        this.#bars.onEvent(e);
        return;
      case "progress":
        this.#bars.onEvent(e);
        return;
      case "roundDone": {
        this.#bars.finish();
        const row = await this.#o.results.round(e.event.value);
        this.#rounds.push(row);
        const probes = e.event.value.probes.map((p) => `${p.difficulty}:${Math.round(100 * p.agreement)}`).join(" ");
        printRow(this.#o.out, this.#o.lengths, roundRow(row, probes));
        await this.#o.onRound?.(this.run());
        return;
      }
      default:
        return;
    }
  }

  /** Round 0: the promoted bases' test accuracy (the generator's row, every lineage's frontier). */
  async #printBase(): Promise<void> {
    const { out, results, registry, lineages, lengths } = this.#o;
    const accs = await Promise.all(
      lineages.map(async (l) => {
        const promoted = await registry.getPromoted(l);
        return promoted === undefined ? [] : results.accuracy(l, BigInt(promoted.version));
      }),
    );
    const frontiers = accs.map((a) => results.frontier(a));
    this.#base = { frontier: frontiers[0]!, accuracyByLength: accs[0]! };
    printHeader(out, lengths);
    printRow(out, lengths, { round: 0, labelLength: null, proposed: null, accepted: null, acc: null, propAcc: null, accuracy: accs[0]!, frontier: frontiers[0]!, status: `base (lineage frontiers ${frontiers.join(",")})` });
  }
}
