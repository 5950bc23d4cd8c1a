/** The signals that ask a foreground `autodidact up` to stop: Ctrl-C, a supervisor's TERM, a closed terminal. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * How `autodidact up` answers stop signals: the first asks for an orderly stop (every service drains),
 * the second forces it (the user will not wait), later ones are ignored. The handlers stay installed
 * until {@link StopSignals.dispose}: a repeated Ctrl-C must never fall back to the default action,
 * which would kill the supervisor and leave its services running without it.
 */
export class StopSignals {
  /** Aborted by the first signal: stop in order. */
  readonly stop = new AbortController();
  /** Aborted by the second signal: stop now. */
  readonly force = new AbortController();
  private received = 0;
  private readonly handler = (signal: NodeJS.Signals): void => this.onSignal(signal);

  constructor(private readonly signals: readonly NodeJS.Signals[] = STOP_SIGNALS) {
    for (const s of this.signals) process.on(s, this.handler);
  }

  /** Resolves with the first signal. */
  stopped(): Promise<void> {
    const signal = this.stop.signal;
    return new Promise((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Removes the handlers (the default actions apply again). */
  dispose(): void {
    for (const s of this.signals) process.off(s, this.handler);
  }

  private onSignal(signal: NodeJS.Signals): void {
    this.received += 1;
    if (this.received === 1) this.stop.abort(signal);
    else if (this.received === 2) this.force.abort(signal);
  }
}
