export type { HostTensor, TensorMap, ValueMeta } from "./tensor.js";
export { allocate, arrayFor, bytesPer, tensor, zeros } from "./tensor.js";
export type { ExecutionProvider, ModelSession, SessionOptions } from "./session.js";
export { createSession, cudaAvailable, defaultExecutionProvider, selectedExecutionProvider } from "./session.js";
export type { LoadedInfo } from "./protocol.js";
export type { ModelWorker, RemoteRunOptions, RemoteSession, SessionHost, WorkerPool } from "./worker.js";
export { createModelWorker, createWorkerPool } from "./worker.js";
export type { TransferableResult, WorkerContext } from "./model-worker.js";
