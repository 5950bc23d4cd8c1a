import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { AutodidactError, Code } from "../../platform/errors/index.js";
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
  /** False once the thread crashed, exited or was closed. */
  readonly alive: boolean;
  /** Called once when the thread dies (not after `close()`), with the error pending requests got. */
  onExit(listener: (error: AutodidactError) => void): void;
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
  let closing = false;
  const exitListeners: ((error: AutodidactError) => void)[] = [];
  worker.unref();

  const failAll = (err: AutodidactError): void => {
    if (dead) return;
    dead = err;
    if (!closing) for (const l of exitListeners) l(err);
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
  worker.on("exit", (code) => failAll(new AutodidactError(`model worker exited (code ${code})`, Code.Unavailable)));

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
    get alive() {
      return dead === null;
    },
    onExit(listener) {
      exitListeners.push(listener);
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
      closing = true;
      failAll(new AutodidactError("model worker closed", Code.Unavailable));
      await worker.terminate();
    },
  };
  return self;
}

/** A set of model workers; sessions load on every worker and runs go to the least busy one. */
export interface WorkerPool extends SessionHost {
  readonly size: number;
  /** How many crashed workers were replaced so far. */
  readonly restarts: number;
}

/**
 * Creates a pool of `size` workers (default 2: this machine's core count). Useful when several
 * independent runs (critics, evaluation shards, pipelined training steps) can overlap. Sessions
 * default to `cores / size` intra-op threads so workers do not oversubscribe the CPU. A worker that
 * crashes is replaced and every loaded session is reloaded into the new one; requests it had in
 * flight fail with Unavailable (runs are safe to retry), later ones go to the replacement.
 */
export function createWorkerPool(options: { size?: number; name?: string } = {}): WorkerPool {
  const size = Math.max(1, options.size ?? 2);
  const threads = Math.max(1, Math.floor(availableParallelism() / size));
  const loaded = new Map<string, { model: Uint8Array; opts: SessionOptions }>();
  let restarts = 0;
  let closed = false;
  interface Slot {
    worker: ModelWorker;
    ready: Promise<void>;
  }
  const spawn = (i: number): Slot => {
    const worker = createModelWorker({ name: `${options.name ?? "autodidact-model"}-${i}` });
    const slot: Slot = { worker, ready: Promise.resolve() };
    worker.onExit(() => {
      if (closed) return;
      restarts++;
      const next = spawn(i);
      next.ready = Promise.all([...loaded].map(([id, l]) => next.worker.loadOn(id, l.model, l.opts))).then(() => undefined);
      next.ready.catch(() => undefined);
      slots[i] = next;
    });
    return slot;
  };
  const slots: Slot[] = [];
  for (let i = 0; i < size; i++) slots.push(spawn(i));
  const pick = (): Slot => slots.reduce((a, b) => (b.worker.pending < a.worker.pending ? b : a));
  const onSlot = async <T>(f: (w: ModelWorker) => Promise<T>): Promise<T> => {
    const slot = pick();
    await slot.ready;
    return f(slot.worker);
  };
  return {
    size,
    get restarts() {
      return restarts;
    },
    async load(model, opts = {}, id = newSessionId()) {
      const o: SessionOptions = opts.intraOpThreads === undefined ? { ...opts, intraOpThreads: threads } : opts;
      loaded.set(id, { model, opts: o });
      let infos: LoadedInfo[];
      try {
        infos = await Promise.all(slots.map(async (s) => {
          await s.ready;
          return s.worker.loadOn(id, model, o);
        }));
      } catch (e) {
        loaded.delete(id);
        await Promise.all(slots.map((s) => s.worker.releaseOn(id).catch(() => undefined)));
        throw e;
      }
      const info = infos[0] as LoadedInfo;
      return {
        id,
        ...info,
        run: (feeds, ro) => onSlot((w) => w.runOn(id, feeds, ro)),
        release: async () => {
          loaded.delete(id);
          await Promise.all(slots.map((s) => s.worker.releaseOn(id).catch(() => undefined)));
        },
      };
    },
    call<T>(module: string | URL, fn: string, args: unknown, transfer?: readonly ArrayBuffer[]) {
      return onSlot((w) => w.call<T>(module, fn, args, transfer));
    },
    async close() {
      closed = true;
      await Promise.all(slots.map((s) => s.worker.close()));
    },
  };
}
