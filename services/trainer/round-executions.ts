// The rounds a trainer is running or has queued, by (round, lineages): a repeated StartRound for one of
// them attaches to it (its progress from then on, then its report) instead of running it twice.
import type { RoundEvent } from "../../src/gen/autodidact/v1/trainer_pb.js";
import type { RoundPlan } from "./round-journal.js";

/** Where a round's events go: every caller attached to it. */
type Listener = (event: RoundEvent) => void;

/** One round queued or running in this process, with the callers following it. */
class Execution {
  readonly listeners = new Set<Listener>();
  /** The latest progress event, replayed to a caller that attaches (so it sees where the round is). */
  last: RoundEvent | undefined;
  promise!: Promise<RoundEvent>;

  emit(event: RoundEvent): void {
    if (event.event.case === "progress") this.last = event;
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a caller gone away never breaks the round
      }
    }
  }
}

/** The key of a round: its number and its lineages (a trainer runs one round number per set of lineages). */
export function roundKey(round: number, lineages: readonly string[]): string {
  return `${round}:${[...lineages].sort().join(",")}`;
}

/**
 * Rounds in flight in this trainer. A round runs once whoever asks for it (a StartRound, its repeat
 * after the caller crashed, the recovery of a round a trainer crash interrupted): the first request
 * starts it, later ones attach to it. A caller that goes away (its stream cancelled) only detaches:
 * the round goes on.
 */
export class RoundExecutions {
  readonly #inFlight = new Map<string, Execution>();

  /** Whether a round of these lineages is queued or running. */
  has(plan: Pick<RoundPlan, "round" | "lineages">): boolean {
    return this.#inFlight.has(roundKey(plan.round, plan.lineages));
  }

  /**
   * Runs `start` for the round unless it is already in flight, and follows it with `emit` until it
   * ends; resolves with its report event (or rejects as it fails).
   */
  follow(plan: Pick<RoundPlan, "round" | "lineages">, emit: Listener, start: (emit: Listener) => Promise<RoundEvent>): Promise<RoundEvent> {
    const key = roundKey(plan.round, plan.lineages);
    const running = this.#inFlight.get(key);
    if (running !== undefined) {
      if (running.last !== undefined) emit(running.last);
      running.listeners.add(emit);
      return running.promise.finally(() => running.listeners.delete(emit));
    }
    const mine = new Execution();
    // Listening before it starts: a round may say something at once (queued).
    mine.listeners.add(emit);
    this.#inFlight.set(key, mine);
    mine.promise = start((e) => mine.emit(e)).finally(() => this.#inFlight.delete(key));
    return mine.promise.finally(() => mine.listeners.delete(emit));
  }
}
