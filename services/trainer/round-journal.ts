import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { MixMode } from "./mix.js";

/** Everything a round was started with, so a restarted trainer redoes exactly the same round. */
export interface RoundPlan {
  round: number;
  task: string;
  lineages: string[];
  /** Parent (base) version per lineage. */
  parents: Record<string, number>;
  mode: "lora" | "full";
  mixMode: MixMode;
  /** Training-set slice of the task used by this round: indices [from, to). */
  from: number;
  to: number;
  maxSamples: number;
  anchorRatio: number;
  /** Difficulty range of the real anchor data, 0 = the pool's (absent in older journals: the trainer's flags). */
  anchorMinDifficulty?: number;
  anchorMaxDifficulty?: number;
  steps: number;
  batchSize: number;
  maxReuse: number;
  lr: number;
  loraRank: number;
  loraAlpha: number;
  seed: string;
  /** Gradient-norm abort threshold (absent in journals of older trainers: 1e6). */
  abortGradNorm?: number;
  /** AdamW weight decay (absent in older journals: 0). */
  weightDecay?: number;
  /** Warmup-stable-decay schedule: warmup steps and the share of steps in the final decay (absent: constant lr). */
  warmupSteps?: number;
  decayShare?: number;
  /** Share of each batch's synthetic slots from the pool's hardest difficulty (0 or absent: uniform). */
  hardestShare?: number;
  /** Gradient clipping norm (absent or 0: no clipping). */
  maxGradNorm?: number;
}

/** A line of the round journal. */
export type JournalEntry =
  | { kind: "start"; plan: RoundPlan }
  | { kind: "allocated"; round: number; lineage: string; version: number }
  | { kind: "candidate"; round: number; lineage: string; version: number }
  | { kind: "end"; round: number; status: "done" | "aborted" | "failed"; reason: string };

/** What the journal knows about one round. */
export interface RoundState {
  plan: RoundPlan;
  allocated: Map<string, number>;
  candidates: Map<string, number>;
  end?: { status: "done" | "aborted" | "failed"; reason: string };
}

/**
 * The trainer's crash journal (append-only JSONL with fsync in the data dir): a round's plan, then
 * the version allocated per lineage BEFORE anything is uploaded, then the candidate, then the end.
 * On restart a round with an existing candidate is not redone and an allocated version is reused,
 * so a SIGKILL never yields a second candidate for one round.
 */
export interface RoundJournal {
  append(entry: JournalEntry): Promise<void>;
  get(round: number): RoundState | undefined;
  /** Rounds in order. */
  rounds(): RoundState[];
  /** Rounds without an end entry (interrupted by a crash). */
  unfinished(): RoundState[];
  lastRound(): number;
  close(): Promise<void>;
}

/** Opens (and replays) the journal at `path`. */
export async function openRoundJournal(path: string): Promise<RoundJournal> {
  await mkdir(dirname(path), { recursive: true });
  const rounds = new Map<number, RoundState>();
  const apply = (e: JournalEntry): void => {
    if (e.kind === "start") {
      rounds.set(e.plan.round, { plan: e.plan, allocated: new Map(), candidates: new Map() });
      return;
    }
    const r = rounds.get(e.round);
    if (r === undefined) return;
    if (e.kind === "allocated") r.allocated.set(e.lineage, e.version);
    else if (e.kind === "candidate") r.candidates.set(e.lineage, e.version);
    else r.end = { status: e.status, reason: e.reason };
  };
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new AutodidactError(`cannot read round journal ${path}`, Code.Internal, { cause: err });
  }
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      apply(JSON.parse(line) as JournalEntry);
    } catch {
      // torn last line of a crash: the step it described did not complete
    }
  }
  const fh: FileHandle = await open(path, "a");
  if (text.length > 0 && !text.endsWith("\n")) await fh.write("\n");
  let queue: Promise<unknown> = Promise.resolve();
  return {
    append(entry) {
      const run = async (): Promise<void> => {
        await fh.write(`${JSON.stringify(entry)}\n`);
        await fh.sync();
        apply(entry);
      };
      const next = queue.then(run, run);
      queue = next.catch(() => undefined);
      return next;
    },
    get: (round) => rounds.get(round),
    rounds: () => [...rounds.values()].sort((a, b) => a.plan.round - b.plan.round),
    unfinished: () => [...rounds.values()].filter((r) => r.end === undefined).sort((a, b) => a.plan.round - b.plan.round),
    lastRound: () => Math.max(0, ...rounds.keys()),
    async close() {
      await queue;
      await fh.close();
    },
  };
}
