import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Parameters } from "../model/params.js";
import type { PolicyValueConfig } from "../model/policy-value.js";
import { createModelWorker, type SessionHost } from "../runtime/worker.js";
import type { AdamWState } from "./optimizer.js";
import type { PolicyValueBatch, PolicyValueStepResult, PolicyValueTrainerOptions } from "./policy-value.js";

const WORKER_MODULE = new URL("./policy-value-worker.ts", import.meta.url);

/** Options of {@link createPolicyValueTrainer}. */
export interface CreatePolicyValueTrainerOptions extends PolicyValueTrainerOptions {
  /** Model worker to run in; default a dedicated worker that `close()` stops. */
  readonly host?: SessionHost;
}

/**
 * A policy/value network being trained in a worker thread: every call is asynchronous and queued
 * (steps never overlap), so self-play and matches keep running on the main thread meanwhile.
 */
export interface PolicyValueTrainer {
  readonly config: PolicyValueConfig;
  step(batch: PolicyValueBatch): Promise<PolicyValueStepResult>;
  evaluate(batch: PolicyValueBatch): Promise<{ loss: number; policyLoss: number; valueLoss: number }>;
  getWeights(): Promise<Parameters>;
  setWeights(weights: Parameters): Promise<void>;
  optimizerState(): Promise<AdamWState>;
  loadOptimizerState(state: AdamWState): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;

/** Starts a policy/value trainer in a worker thread (builds the training graph there). */
export async function createPolicyValueTrainer(options: CreatePolicyValueTrainerOptions): Promise<PolicyValueTrainer> {
  const { host: given, ...rest } = options;
  if (rest.optimizer.decay !== undefined) {
    throw new AutodidactError("optimizer.decay (a function) cannot cross into the trainer worker; use PolicyValueTrainerCore in-thread", Code.InvalidArgument);
  }
  const host = given ?? createModelWorker({ name: "autodidact-pv-trainer" });
  const id = `pv-trainer-${process.pid}-${++counter}`;
  const call = <T>(fn: string, args: Record<string, unknown>): Promise<T> => host.call<T>(WORKER_MODULE, fn, { id, ...args });
  try {
    await call("pvCreate", { options: rest });
  } catch (e) {
    if (!given) await host.close();
    throw e;
  }
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new AutodidactError("policy-value trainer is closed", Code.FailedPrecondition));
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    config: rest.config,
    step: (batch) => serial(() => call<PolicyValueStepResult>("pvStep", { batch })),
    evaluate: (batch) => serial(() => call("pvEvaluate", { batch })),
    getWeights: () => serial(() => call<Parameters>("pvWeights", {})),
    setWeights: (weights) => serial(async () => void (await call("pvSetWeights", { weights }))),
    optimizerState: () => serial(() => call<AdamWState>("pvOptimizerState", {})),
    loadOptimizerState: (state) => serial(async () => void (await call("pvLoadOptimizerState", { state }))),
    async close() {
      if (closed) return;
      const last = serial(() => call("pvRelease", {}));
      closed = true;
      try {
        await last;
      } finally {
        if (!given) await host.close();
      }
    },
  };
}
