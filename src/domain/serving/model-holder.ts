import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createLogger, type Logger } from "../../platform/telemetry/index.js";

/** A model freshly loaded and not yet serving: what a loader hands to {@link ModelHolder.swap}. */
export interface LoadedModel<M> {
  /** Version string on the wire: `<lineage>@<version>` or `sha256:<digest>`. */
  readonly version: string;
  readonly model: M;
  /** Frees the model (worker session, memory); called once, after its last request finished. */
  release(): Promise<void>;
}

/** What a completed swap reports (mirrors `autodidact.v1.SwapModelResponse`). */
export interface SwapResult {
  /** "" when nothing was serving before. */
  readonly oldVersion: string;
  readonly newVersion: string;
  readonly swappedAt: Date;
  /** Time spent loading and validating the new model. */
  readonly loadMs: number;
}

/** Options of {@link createModelHolder}. */
export interface ModelHolderOptions<M> {
  /** Name in logs and errors ("critic model", "generator model"). */
  readonly name: string;
  /**
   * Checks a loaded model before it may serve (signature, warm-up run). Throwing refuses the swap;
   * the old model keeps serving.
   */
  readonly validate?: (loaded: LoadedModel<M>) => Promise<void>;
  readonly logger?: Logger;
}

/**
 * Holds the one model a service serves and replaces it live. Exists so every model-backed service
 * swaps the same way: requests take a reference to the model current when they start and finish on
 * it; a swap loads and validates the new model first (a failure leaves the old one serving), switches
 * in one assignment, and frees the old model once its last request is done.
 */
export interface ModelHolder<M> {
  /** The serving version, or undefined when no model is loaded yet. */
  readonly version: string | undefined;
  /** Requests running right now, over all versions. */
  readonly inFlight: number;
  /**
   * Runs `fn` with the current model and its version; the model stays alive until `fn` settles even
   * if a swap happens meanwhile. Unavailable when no model is loaded.
   */
  use<T>(fn: (model: M, version: string) => Promise<T>): Promise<T>;
  /**
   * Loads (via `load`), validates and switches to a new model. Swaps are serialized. A failing load
   * or validation throws (FailedPrecondition unless the error already says InvalidArgument or
   * NotFound) and changes nothing.
   */
  swap(load: () => Promise<LoadedModel<M>>): Promise<SwapResult>;
  /** Waits until every retired model has been released (tests, shutdown). */
  drained(): Promise<void>;
  /** Refuses new requests, waits for running ones, and releases every model. */
  close(): Promise<void>;
}

interface Entry<M> {
  readonly loaded: LoadedModel<M>;
  refs: number;
  retired: boolean;
  released?: Promise<void>;
}

const KEEP = new Set<Code>([Code.InvalidArgument, Code.NotFound, Code.FailedPrecondition]);

/** Wraps a load/validation failure into the status a SwapModel caller should see. */
function refusal(name: string, err: unknown): AutodidactError {
  if (err instanceof AutodidactError && KEEP.has(err.code)) {
    return new AutodidactError(`${name} refused: ${err.rawMessage}`, err.code, { cause: err });
  }
  const message = err instanceof AutodidactError ? err.rawMessage : err instanceof Error ? err.message : String(err);
  return new AutodidactError(`${name} refused: ${message}`, Code.FailedPrecondition, { cause: err });
}

/** Creates an empty {@link ModelHolder}; the first {@link ModelHolder.swap} loads the first model. */
export function createModelHolder<M>(options: ModelHolderOptions<M>): ModelHolder<M> {
  const logger = options.logger ?? createLogger("serving");
  let current: Entry<M> | undefined;
  let closed = false;
  let chain: Promise<unknown> = Promise.resolve();
  const releasing = new Set<Promise<void>>();
  let inFlight = 0;

  const release = (entry: Entry<M>): void => {
    if (entry.released !== undefined) return;
    entry.released = entry.loaded.release().catch((err: unknown) => {
      logger.warn(`${options.name}: releasing ${entry.loaded.version} failed`, { error: String(err) });
    });
    releasing.add(entry.released);
    void entry.released.finally(() => releasing.delete(entry.released!));
  };

  const holder: ModelHolder<M> = {
    get version() {
      return current?.loaded.version;
    },
    get inFlight() {
      return inFlight;
    },
    async use(fn) {
      const entry = current;
      if (entry === undefined || closed) {
        throw new AutodidactError(`${options.name}: no model loaded`, closed ? Code.Unavailable : Code.FailedPrecondition);
      }
      entry.refs++;
      inFlight++;
      try {
        return await fn(entry.loaded.model, entry.loaded.version);
      } finally {
        entry.refs--;
        inFlight--;
        if (entry.retired && entry.refs === 0) release(entry);
      }
    },
    swap(load) {
      const run = async (): Promise<SwapResult> => {
        if (closed) throw new AutodidactError(`${options.name}: closed`, Code.Unavailable);
        const t0 = performance.now();
        let loaded: LoadedModel<M>;
        try {
          loaded = await load();
        } catch (err) {
          throw refusal(options.name, err);
        }
        try {
          await options.validate?.(loaded);
        } catch (err) {
          await loaded.release().catch(() => undefined);
          throw refusal(options.name, err);
        }
        const loadMs = performance.now() - t0;
        const old = current;
        current = { loaded, refs: 0, retired: false };
        if (old !== undefined) {
          old.retired = true;
          if (old.refs === 0) release(old);
        }
        logger.info(`${options.name}: now serving ${loaded.version}`, { old: old?.loaded.version ?? "", loadMs: Math.round(loadMs) });
        return { oldVersion: old?.loaded.version ?? "", newVersion: loaded.version, swappedAt: new Date(), loadMs };
      };
      const next = chain.then(run, run);
      chain = next.catch(() => undefined);
      return next;
    },
    async drained() {
      while (releasing.size > 0) await Promise.all([...releasing]);
    },
    async close() {
      if (closed) return;
      closed = true;
      await chain;
      const last = current;
      if (last !== undefined) {
        last.retired = true;
        if (last.refs === 0) release(last);
      }
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      await holder.drained();
    },
  };
  return holder;
}
