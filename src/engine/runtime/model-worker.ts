/**
 * Worker-thread side of the model runtime: caches sessions by id and executes runs and calls so
 * that onnxruntime's blocking `run` never stalls the main event loop. Started through
 * `worker-bootstrap.mjs` (which registers tsx so this TypeScript file can load).
 */
import { parentPort } from "node:worker_threads";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { errorToWire, fromWire, toWire, type LoadedInfo, type WorkerReply, type WorkerRequest } from "./protocol.js";
import { createSession, type ModelSession } from "./session.js";
import type { TensorMap } from "./tensor.js";

/**
 * What a worker-side function (run through `ModelWorker.call`) receives: access to the sessions
 * cached in this worker, so multi-step loops (generation) run next to the model without a round
 * trip per step.
 */
export interface WorkerContext {
  session(id: string): ModelSession;
}

const sessions = new Map<string, ModelSession>();
const context: WorkerContext = {
  session(id) {
    const s = sessions.get(id);
    if (!s) throw new AutodidactError(`no session "${id}" in this worker`, Code.NotFound);
    return s;
  },
};

/** Result of a worker call that wants tensors transferred rather than cloned. */
export interface TransferableResult {
  readonly __transfer: readonly ArrayBuffer[];
  readonly value: unknown;
}

async function handle(msg: WorkerRequest): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (msg.kind) {
    case "load": {
      const old = sessions.get(msg.sessionId);
      const s = await createSession(msg.model, msg.options);
      sessions.set(msg.sessionId, s);
      if (old) await old.release();
      const info: LoadedInfo = { inputs: s.inputs, outputs: s.outputs, executionProvider: s.executionProvider };
      return { value: info, transfer: [] };
    }
    case "run": {
      const s = context.session(msg.sessionId);
      const out: TensorMap = await s.run(fromWire(msg.feeds), msg.outputNames);
      const transfer: ArrayBuffer[] = [];
      // ORT may hand back externally-backed buffers; copy into plain ones so they can be transferred.
      const owned: TensorMap = {};
      for (const [k, t] of Object.entries(out)) owned[k] = { ...t, data: t.data.slice() } as typeof t;
      return { value: toWire(owned, transfer), transfer };
    }
    case "release": {
      const s = sessions.get(msg.sessionId);
      sessions.delete(msg.sessionId);
      if (s) await s.release();
      return { value: null, transfer: [] };
    }
    case "call": {
      const mod = (await import(msg.module)) as Record<string, unknown>;
      const fn = mod[msg.fn];
      if (typeof fn !== "function") throw new AutodidactError(`${msg.module} has no function ${msg.fn}`, Code.NotFound);
      const value = (await (fn as (args: unknown, ctx: WorkerContext) => unknown)(msg.args, context)) as unknown;
      if (value && typeof value === "object" && "__transfer" in value) {
        const t = value as TransferableResult;
        return { value: t.value, transfer: [...t.__transfer] };
      }
      return { value, transfer: [] };
    }
  }
}

const port = parentPort;
if (!port) throw new Error("model-worker.ts must run in a worker thread");
port.on("message", (msg: WorkerRequest) => {
  handle(msg).then(
    ({ value, transfer }) => port.postMessage({ id: msg.id, ok: true, value } satisfies WorkerReply, transfer),
    (e: unknown) => port.postMessage({ id: msg.id, ok: false, error: errorToWire(e) } satisfies WorkerReply),
  );
});
