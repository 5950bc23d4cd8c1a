// What the sweeper has to come back to: open samples with the time their timeout fires, and
// decisions seen stored but not published. The decision paths write it, the sweeper reads it.

/** The sweeper's to-do list of one worker. */
export class DueWork {
  /** Samples still open, with the time their timeout fires. */
  readonly deadlines = new Map<string, number>();
  /** Decisions seen stored but not published, with when they were decided (0: at once). */
  readonly unpublished = new Map<string, number>();

  /** The sample's timeout fires at `at` (or later, once it was seen again). */
  open(sampleId: string, at: number): void {
    this.deadlines.set(sampleId, at);
  }

  /** The sample is decided: no timeout to watch. */
  close(sampleId: string): void {
    this.deadlines.delete(sampleId);
  }

  /** A decision of the sample, made at `decidedAt`, is stored but not published. */
  unpublishedSince(sampleId: string, decidedAt: number): void {
    this.unpublished.set(sampleId, decidedAt);
  }

  /** The sample's decision went out: nothing left to re-publish. */
  published(sampleId: string): void {
    this.unpublished.delete(sampleId);
  }

  /** Whether some open sample's timeout has passed at `now`. */
  anyOverdue(now: number): boolean {
    for (const d of this.deadlines.values()) if (d <= now) return true;
    return false;
  }
}
