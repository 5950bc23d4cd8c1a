import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Manifest } from "../checkpoint/files.js";
import { saveLoraAdapter } from "../checkpoint/peft.js";
import type { TransformerConfig } from "../model/config.js";
import { peftTargetModules } from "../model/lora-sites.js";
import type { Parameters } from "../model/params.js";
import { createModelWorker, type SessionHost } from "../runtime/worker.js";
import type { Batch } from "./batch.js";
import { DEFAULT_LORA, type LoraOptions, type TrainMode } from "./graph.js";
import { mergeLora, type Adapters } from "./lora.js";
import type { AdamWState } from "./optimizer.js";
import type { StepResult, TrainerOptions } from "./trainer-core.js";

const WORKER_MODULE = new URL("./trainer-worker.ts", import.meta.url);

/** Options of {@link createTrainer}. */
export interface CreateTrainerOptions extends TrainerOptions {
  /**
   * Model worker to run in (shared with other sessions); default: a dedicated worker that
   * `close()` stops.
   */
  readonly host?: SessionHost;
}

/**
 * A model being trained, living in a worker thread: every method is asynchronous and the event
 * loop keeps running while a step executes. Calls are queued, so steps never overlap.
 */
export interface Trainer {
  readonly config: TransformerConfig;
  readonly mode: TrainMode;
  /** LoRA settings in LoRA mode. */
  readonly lora: LoraOptions | undefined;
  /** Names of the trained tensors (parameters or adapter tensors). */
  readonly trainable: readonly string[];
  /** One update on a batch. Rejects with `Code.Aborted` on NaN/Inf/exploding gradients, weights untouched. */
  step(batch: Batch): Promise<StepResult>;
  /** Loss on a batch, no update. */
  evaluate(batch: Batch): Promise<number>;
  /** Full weights (the frozen base in LoRA mode). */
  getWeights(): Promise<Parameters>;
  setWeights(weights: Parameters): Promise<void>;
  /** Adapter tensors under PEFT names (LoRA mode). */
  getAdapters(): Promise<Adapters>;
  /** Swaps adapters: a tensor swap, no new session. */
  setAdapters(adapters: Adapters): Promise<void>;
  /** Weights with the adapters merged in (LoRA mode) or the weights themselves (full mode). */
  getMergedWeights(): Promise<Parameters>;
  /**
   * Writes the current adapters as a PEFT folder (adapter_config.json, adapter_model.safetensors,
   * manifest.json) with the checkpoint helpers. LoRA mode only.
   */
  saveAdapter(dir: string, options: { baseModel: string; metadata?: Record<string, string> }): Promise<Manifest>;
  optimizerState(): Promise<AdamWState>;
  loadOptimizerState(state: AdamWState): Promise<void>;
  /** Frees the session (and the worker if the trainer owns it). */
  close(): Promise<void>;
}

let trainerCounter = 0;

/**
 * Starts a trainer in a worker thread: builds the training graph for the config and mode there,
 * loads it into onnxruntime, and returns a handle whose steps run off the main thread.
 */
export async function createTrainer(options: CreateTrainerOptions): Promise<Trainer> {
  const { host: given, ...rest } = options;
  if (rest.optimizer.decay !== undefined) {
    throw new AutodidactError("optimizer.decay (a function) cannot cross into the trainer worker; use TrainerCore in-thread", Code.InvalidArgument);
  }
  const host = given ?? createModelWorker({ name: "autodidact-trainer" });
  const id = `trainer-${process.pid}-${++trainerCounter}`;
  const call = <T>(fn: string, args: Record<string, unknown>): Promise<T> => host.call<T>(WORKER_MODULE, fn, { id, ...args });
  let created: { trainable: string[]; frozen: string[] };
  try {
    created = await call("trainerCreate", { options: rest });
  } catch (e) {
    if (!given) await host.close();
    throw e;
  }
  const lora = rest.mode === "lora" ? (rest.lora ?? DEFAULT_LORA) : undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new AutodidactError("trainer is closed", Code.FailedPrecondition));
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  const trainer: Trainer = {
    config: rest.config,
    mode: rest.mode,
    lora,
    trainable: created.trainable,
    step: (batch) => serial(() => call<StepResult>("trainerStep", { batch })),
    evaluate: (batch) => serial(() => call<number>("trainerEvaluate", { batch })),
    getWeights: () => serial(() => call<Parameters>("trainerWeights", {})),
    setWeights: (weights) => serial(async () => void (await call("trainerSetWeights", { weights }))),
    getAdapters: () => serial(() => call<Adapters>("trainerAdapters", {})),
    setAdapters: (adapters) => serial(async () => void (await call("trainerSetAdapters", { adapters }))),
    async getMergedWeights() {
      const weights = await trainer.getWeights();
      if (lora === undefined) return weights;
      return mergeLora(rest.config, weights, await trainer.getAdapters(), lora);
    },
    async saveAdapter(dir, o) {
      if (lora === undefined) throw new AutodidactError("saveAdapter needs a LoRA trainer", Code.FailedPrecondition);
      const adapters = await trainer.getAdapters();
      return saveLoraAdapter(dir, {
        adapters,
        rank: lora.rank,
        alpha: lora.alpha,
        // The names PEFT matches on this family (GPT-2: c_attn for q/k/v), with its Conv1D flag.
        targetModules: peftTargetModules(rest.config, lora.targetModules),
        fanInFanOut: rest.config.family === "gpt2",
        dropout: lora.dropout ?? 0,
        baseModel: o.baseModel,
        ...(o.metadata ? { metadata: o.metadata } : {}),
      });
    },
    optimizerState: () => serial(() => call<AdamWState>("trainerOptimizerState", {})),
    loadOptimizerState: (state) => serial(async () => void (await call("trainerLoadOptimizerState", { state }))),
    async close() {
      if (closed) return;
      const last = serial(() => call("trainerRelease", {}));
      closed = true;
      try {
        await last;
      } finally {
        if (!given) await host.close();
      }
    },
  };
  return trainer;
}
