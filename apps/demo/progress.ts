/**
 * Terminal output of the demo: progress bars that redraw in place on a terminal (and print a line
 * now and then when stdout is a file or a pipe), and the per-round table printed row by row.
 */

/** Where the demo writes: a terminal redraws progress in place; anything else gets plain lines. */
export interface DemoOutput {
  readonly isTTY: boolean;
  write(text: string): void;
}

/** A progress bar for one phase (proposing, judging, training a lineage, evaluating). */
export interface ProgressBar {
  /** Sets the done count (and optionally a short status such as the latest loss). */
  update(done: number, status?: string): void;
  /** Completes the bar and moves to the next line. */
  done(status?: string): void;
}

const WIDTH = 28;

/** Creates a progress bar `label [#####.....] done/total status`, redrawn at most every 100 ms. */
export function createProgressBar(out: DemoOutput, label: string, total: number): ProgressBar {
  let last = 0;
  let lastPlain = -1;
  let finished = false;
  const line = (done: number, status: string): string => {
    const share = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(share * WIDTH);
    return `  ${label.padEnd(30)} [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${String(done).padStart(String(total).length)}/${total}${status ? `  ${status}` : ""}`;
  };
  return {
    update(done, status = "") {
      if (finished) return;
      const now = Date.now();
      if (out.isTTY) {
        if (now - last < 100 && done < total) return;
        last = now;
        out.write(`\r${line(done, status)}\x1b[K`);
        return;
      }
      // Plain output: a line at every quarter, so a log shows the run is alive without flooding.
      const quarter = total > 0 ? Math.floor((4 * done) / total) : 4;
      if (quarter > lastPlain && done < total) {
        lastPlain = quarter;
        out.write(`${line(done, status)}\n`);
      }
    },
    done(status = "") {
      if (finished) return;
      finished = true;
      out.write(out.isTTY ? `\r${line(total, status)}\x1b[K\n` : `${line(total, status)}\n`);
    },
  };
}

/** Formats a share as a percentage with no decimals, or `-` when unknown. */
export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : `${Math.round(v * 100)}`;
}
