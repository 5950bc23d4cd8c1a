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
  /** `lineages` names the round's journal entry (absent in older journals: the round's only one). */
  | { kind: "end"; round: number; lineages?: string[]; status: "done" | "aborted" | "failed"; reason: string }
  /** A repeated StartRound redoes a round that ended failed or aborted: it is unfinished again. */
  | { kind: "resume"; round: number; lineages: string[] };

/** What the journal knows about one round of some lineages (a trainer may run one round number per disjoint set of lineages). */
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
 * so a SIGKILL never yields a second candidate for one round. A round is identified by its number
 * and lineages: StartRound is idempotent per (lineage, round).
 */
export interface RoundJournal {
  append(entry: JournalEntry): Promise<void>;
  /** The first round entry with this number (a trainer of one lineage has at most one). */
  get(round: number): RoundState | undefined;
  /** The round entry with this number that trains `lineage`. */
  find(round: number, lineage: string): RoundState | undefined;
  /** Every round entry with this number. */
  atRound(round: number): RoundState[];
  /** Rounds in order. */
  rounds(): RoundState[];
  /** Rounds without an end entry (interrupted by a crash). */
  unfinished(): RoundState[];
  lastRound(): number;
  close(): Promise<void>;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/** Opens (and replays) the journal at `path`. */
export async function openRoundJournal(path: string): Promise<RoundJournal> {
  await mkdir(dirname(path), { recursive: true });
  const states: RoundState[] = [];
  const atRound = (round: number): RoundState[] => states.filter((r) => r.plan.round === round);
  const find = (round: number, lineage: string): RoundState | undefined => atRound(round).find((r) => r.plan.lineages.includes(lineage));
  const named = (round: number, lineages: readonly string[] | undefined): RoundState[] =>
    lineages === undefined ? atRound(round) : atRound(round).filter((r) => sameSet(r.plan.lineages, lineages));
  const apply = (e: JournalEntry): void => {
    if (e.kind === "start") {
      // A start of the same round and lineages replaces the older entry (it was never run).
      const i = states.findIndex((r) => r.plan.round === e.plan.round && sameSet(r.plan.lineages, e.plan.lineages));
      const state: RoundState = { plan: e.plan, allocated: new Map(), candidates: new Map() };
      if (i >= 0) states[i] = state;
      else states.push(state);
      return;
    }
    if (e.kind === "allocated" || e.kind === "candidate") {
      const r = find(e.round, e.lineage);
      if (r === undefined) return;
      if (e.kind === "allocated") r.allocated.set(e.lineage, e.version);
      else r.candidates.set(e.lineage, e.version);
      return;
    }
    for (const r of named(e.round, e.lineages)) {
      if (e.kind === "resume") delete r.end;
      else r.end = { status: e.status, reason: e.reason };
    }
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
  const ordered = (): RoundState[] => [...states].sort((a, b) => a.plan.round - b.plan.round);
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
    get: (round) => atRound(round)[0],
    find,
    atRound,
    rounds: ordered,
    unfinished: () => ordered().filter((r) => r.end === undefined),
    lastRound: () => Math.max(0, ...states.map((r) => r.plan.round)),
    async close() {
      await queue;
      await fh.close();
    },
  };
}
