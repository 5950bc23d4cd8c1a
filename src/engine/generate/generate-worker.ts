/**
 * Worker-side entry of generation: `ModelWorker.call(thisModule, "generateInWorker", args)` runs
 * the whole decoding loop next to the cached session, so no per-token message crosses threads.
 */
import type { WorkerContext } from "../runtime/model-worker.js";
import { decodeBatch, type DecodedRow, type DecodeRequest } from "./decode.js";
import { scoreBatch, type ScoredRow, type ScoreRequest } from "./score.js";

/** Arguments of {@link generateInWorker}. */
export interface GenerateInWorkerArgs {
  readonly sessionId: string;
  /** The same model's greedy decoding graph, for greedy requests (see `DecodeBatchOptions.greedyLoop`). */
  readonly greedySessionId?: string;
  readonly request: DecodeRequest;
}

/** Runs {@link decodeBatch} on a session cached in this worker. */
export async function generateInWorker(args: GenerateInWorkerArgs, ctx: WorkerContext): Promise<DecodedRow[]> {
  return decodeBatch(ctx.session(args.sessionId), args.request, args.greedySessionId !== undefined ? { greedyLoop: ctx.session(args.greedySessionId) } : {});
}

/** Arguments of {@link scoreInWorker}. */
export interface ScoreInWorkerArgs {
  readonly sessionId: string;
  readonly request: ScoreRequest;
}

/** Runs {@link scoreBatch} on a session cached in this worker. */
export async function scoreInWorker(args: ScoreInWorkerArgs, ctx: WorkerContext): Promise<ScoredRow[]> {
  return scoreBatch(ctx.session(args.sessionId), args.request);
}
