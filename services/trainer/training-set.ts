import { open, readFile, mkdir, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { gameRecordFromProto, type GameRecord } from "../../src/domain/games/index.js";

/** One critic's vote, as kept next to an accepted sample (traceability of every checkpoint). */
export interface StoredVote {
  criticId: string;
  criticKind: string;
  approve: boolean;
  score: number;
  reason: string;
}

/** An accepted sample in the training set, with the decision that let it in. */
export interface TrainingSample {
  sampleId: string;
  task: string;
  prompt: string;
  completion: string;
  difficulty: number;
  /** Position in the training set (0-based, arrival order): rounds cut the set by it. */
  index: number;
  votes: StoredVote[];
  outcome: string;
  decidedAt: string;
  /** A game task's sample: its game record (what a game round trains on). */
  game?: GameRecord;
}

/**
 * The durable training set: an append-only JSONL file, fsync'ed before the decision is acked, so
 * an accepted sample survives any crash; deduplicated by sample id on append and on load (a
 * redelivered decision or a torn last line never doubles a sample).
 */
export interface TrainingSet {
  /** Appends (durably) unless the id is already present; true when it was new. */
  add(sample: Omit<TrainingSample, "index">): Promise<boolean>;
  /** Samples of a task in arrival order, optionally only those with index in [from, to). */
  samples(task: string, from?: number, to?: number): TrainingSample[];
  /** Number of samples of a task (their next index). */
  count(task: string): number;
  has(sampleId: string): boolean;
  close(): Promise<void>;
}

/** Opens (and loads) the training set file; the directory is created when missing. */
export async function openTrainingSet(path: string): Promise<TrainingSet> {
  await mkdir(dirname(path), { recursive: true });
  const byTask = new Map<string, TrainingSample[]>();
  const ids = new Set<string>();
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new AutodidactError(`cannot read training set ${path}`, Code.Internal, { cause: err });
  }
  const remember = (s: Omit<TrainingSample, "index">): TrainingSample => {
    const list = byTask.get(s.task) ?? [];
    byTask.set(s.task, list);
    const full: TrainingSample = { ...s, index: list.length };
    list.push(full);
    ids.add(s.sampleId);
    return full;
  };
  let torn = false;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let parsed: Omit<TrainingSample, "index">;
    try {
      parsed = JSON.parse(line) as Omit<TrainingSample, "index">;
    } catch {
      torn = true; // a line cut by a crash mid-write: its decision was never acked, so it comes again
      continue;
    }
    if (typeof parsed.sampleId !== "string" || ids.has(parsed.sampleId)) continue;
    remember(parsed);
  }
  const fh: FileHandle = await open(path, "a");
  // A torn tail would glue onto the next line: start the next record on a fresh line.
  if (torn || (text.length > 0 && !text.endsWith("\n"))) {
    await fh.write("\n");
    await fh.sync();
  }
  let queue: Promise<unknown> = Promise.resolve();
  return {
    add(sample) {
      const run = async (): Promise<boolean> => {
        if (ids.has(sample.sampleId)) return false;
        const { index: _i, ...plain } = sample as TrainingSample;
        void _i;
        await fh.write(`${JSON.stringify(plain)}\n`);
        await fh.sync();
        remember(plain);
        return true;
      };
      const next = queue.then(run, run);
      queue = next.catch(() => undefined);
      return next;
    },
    samples(task, from = 0, to = Number.POSITIVE_INFINITY) {
      return (byTask.get(task) ?? []).filter((s) => s.index >= from && s.index < to);
    },
    count: (task) => byTask.get(task)?.length ?? 0,
    has: (id) => ids.has(id),
    async close() {
      await queue;
      await fh.close();
    },
  };
}

/**
 * Turns a `decisions.<task>` payload into a training sample, or undefined when it must not enter
 * the training set (rejected). Malformed payloads throw InvalidArgument (the consumer poisons them).
 */
export function sampleFromDecision(data: Uint8Array): Omit<TrainingSample, "index"> | undefined {
  let d;
  try {
    d = fromBinary(DecisionSchema, data);
  } catch (err) {
    throw new AutodidactError("decision is not a valid autodidact.v1.Decision", Code.InvalidArgument, { cause: err });
  }
  if (!d.accepted) return undefined;
  const s = d.sample;
  if (s === undefined || s.id === "" || d.sampleId === "" || s.id !== d.sampleId) {
    throw new AutodidactError(`accepted decision ${d.sampleId || "(no id)"} carries no matching sample`, Code.InvalidArgument);
  }
  const task = d.task || s.task;
  if (task === "" || s.prompt === "") throw new AutodidactError(`accepted decision ${d.sampleId} has no task or prompt`, Code.InvalidArgument);
  return {
    sampleId: s.id,
    task,
    prompt: s.prompt,
    completion: s.completion,
    difficulty: s.difficulty,
    votes: d.votes.map((v) => ({ criticId: v.criticId, criticKind: v.criticKind, approve: v.approve, score: v.score, reason: v.reason })),
    outcome: d.outcomeDetail,
    decidedAt: d.decidedAt ? new Date(Number(d.decidedAt.seconds) * 1000 + Math.floor(d.decidedAt.nanos / 1e6)).toISOString() : "",
    ...(s.game !== undefined ? { game: gameRecordFromProto(s.game) } : {}),
  };
}
