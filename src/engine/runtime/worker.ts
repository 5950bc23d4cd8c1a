import { Worker } from "node:worker_threads";
import { AutodidactError, Code } from "../../errors/index.js";
import { errorFromWire, fromWire, toWire, type LoadedInfo, type WireTensor, type WorkerReply, type WorkerRequest } from "./protocol.js";
import type { SessionOptions } from "./session.js";
import type { TensorMap, ValueMeta } from "./tensor.js";

const BOOTSTRAP = new URL("./worker-bootstrap.mjs", import.meta.url);

/** Options of a run through a worker. */
export interface RemoteRunOptions {
  readonly outputNames?: readonly string[];
  /**
   * Move the feeds' buffers to the worker instead of copying them (faster; the caller's arrays
   * become unusable). Default false.
   */
  readonly transfer?: boolean;
}

/** A model loaded in one or more workers; `run` never blocks the calling thread. */
export interface RemoteSession {
  readonly id: string;
  readonly inputs: readonly ValueMeta[];
  readonly outputs: readonly ValueMeta[];
  readonly executionProvider: "cpu" | "cuda";
  run(feeds: TensorMap, options?: RemoteRunOptions): Promise<TensorMap>;
  release(): Promise<void>;
}

/** Anything that hosts sessions off the main thread: one worker or a pool. */
export interface SessionHost {
  /** Loads ONNX bytes (the same id replaces a previous model atomically per worker). */
  load(model: Uint8Array, options?: SessionOptions, id?: string): Promise<RemoteSession>;
  /**
   * Runs `fn` exported by `module` inside a worker as `fn(args, ctx)` (ctx gives cached sessions),
   * for loops that must stay next to the model (sampling). `module` is a file URL or path.
   */
  call<T>(module: string | URL, fn: string, args: unknown, transfer?: readonly ArrayBuffer[]): Promise<T>;
  close(): Promise<void>;
}

/** One worker thread with its cached sessions. */
export interface ModelWorker extends SessionHost {
  /** Requests sent and not yet answered (the pool balances on it). */
  readonly pending: number;
  runOn(sessionId: string, feeds: TensorMap, options?: RemoteRunOptions): Promise<TensorMap>;
  loadOn(sessionId: string, model: Uint8Array, options?: SessionOptions): Promise<LoadedInfo>;
  releaseOn(sessionId: string): Promise<void>;
}

/** A request without its id (distributes Omit over the union). */
type RequestBody = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, "id"> : never) : never;

let sessionCounter = 0;
function newSessionId(): string {
  return `s${process.pid}-${++sessionCounter}`;
}

/** Starts a worker thread that runs models (see the module doc of model-worker.ts). */
export function createModelWorker(options: { name?: string } = {}): ModelWorker {
  const worker = new Worker(BOOTSTRAP, { name: options.name ?? "autodidact-model" });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let dead: AutodidactError | null = null;
  worker.unref();

  const failAll = (err: AutodidactError): void => {
    dead = err;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  worker.on("message", (reply: WorkerReply) => {
    const w = waiting.get(reply.id);
    if (!w) return;
    waiting.delete(reply.id);
    if (reply.ok) w.resolve(reply.value);
    else w.reject(errorFromWire(reply.error));
    if (waiting.size === 0) worker.unref();
  });
  worker.on("error", (e) => failAll(new AutodidactError(`model worker crashed: ${e.message}`, Code.Unavailable, { cause: e })));
  worker.on("exit", (code) => {
    if (!dead) failAll(new AutodidactError(`model worker exited (code ${code})`, Code.Unavailable));
  });

  const send = <T>(req: RequestBody, transfer: readonly ArrayBuffer[] = []): Promise<T> => {
    if (dead) return Promise.reject(dead);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      try {
        worker.postMessage({ ...req, id }, [...transfer]);
      } catch (cause) {
        waiting.delete(id);
        reject(new AutodidactError(`cannot post to model worker: ${(cause as Error).message}`, Code.InvalidArgument, { cause }));
      }
    });
  };

  const self: ModelWorker = {
    get pending() {
      return waiting.size;
    },
    loadOn(sessionId, model, opts = {}) {
      return send<LoadedInfo>({ kind: "load", sessionId, model, options: opts });
    },
    async runOn(sessionId, feeds, opts = {}) {
      const transfer: ArrayBuffer[] | null = opts.transfer ? [] : null;
      const wire = toWire(feeds, transfer);
      const out = await send<Record<string, WireTensor>>(
        { kind: "run", sessionId, feeds: wire, ...(opts.outputNames ? { outputNames: opts.outputNames } : {}) },
        transfer ?? [],
      );
      return fromWire(out);
    },
    releaseOn(sessionId) {
      return send<void>({ kind: "release", sessionId });
    },
    async load(model, opts = {}, id = newSessionId()) {
      const info = await self.loadOn(id, model, opts);
      return {
        id,
        ...info,
        run: (feeds, o) => self.runOn(id, feeds, o),
        release: () => self.releaseOn(id),
      };
    },
    call<T>(module: string | URL, fn: string, args: unknown, transfer: readonly ArrayBuffer[] = []) {
      const href = module instanceof URL ? module.href : module.startsWith("file:") ? module : new URL(`file://${module}`).href;
      return send<T>({ kind: "call", module: href, fn, args }, transfer);
    },
    async close() {
      if (!dead) dead = new AutodidactError("model worker closed", Code.Unavailable);
      for (const w of waiting.values()) w.reject(dead);
      waiting.clear();
      await worker.terminate();
    },
  };
  return self;
}

/** A set of model workers; sessions load on every worker and runs go to the least busy one. */
export interface WorkerPool extends SessionHost {
  readonly size: number;
}

/**
 * Creates a pool of `size` workers (default 2: this machine's core count). Useful when several
 * independent runs (critics, evaluation shards, pipelined training steps) can overlap.
 */
export function createWorkerPool(options: { size?: number; name?: string } = {}): WorkerPool {
  const size = Math.max(1, options.size ?? 2);
  const workers = Array.from({ length: size }, (_, i) => createModelWorker({ name: `${options.name ?? "autodidact-model"}-${i}` }));
  const pick = (): ModelWorker => workers.reduce((a, b) => (b.pending < a.pending ? b : a));
  return {
    size,
    async load(model, opts = {}, id = newSessionId()) {
      const infos = await Promise.all(workers.map((w) => w.loadOn(id, model, opts)));
      const info = infos[0] as LoadedInfo;
      return {
        id,
        ...info,
        run: (feeds, o) => pick().runOn(id, feeds, o),
        release: async () => {
          await Promise.all(workers.map((w) => w.releaseOn(id)));
        },
      };
    },
    call<T>(module: string | URL, fn: string, args: unknown, transfer?: readonly ArrayBuffer[]) {
      return pick().call<T>(module, fn, args, transfer);
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
