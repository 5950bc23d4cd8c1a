// Training on onnxruntime: training graphs (full / LoRA), loss, AdamW, schedules, batching, the worker-thread trainer.
export type { Batch, BatchOptions, Example } from "./batch.js";
export { makeBatch } from "./batch.js";
export type { LossGraph, LoraOptions, TrainingGraph, TrainingGraphOptions, TrainMode } from "./graph.js";
export { buildLossGraph, buildTrainingGraph, DEFAULT_LORA, validateLora } from "./graph.js";
export { appendCrossEntropyLoss, LOSS_NAMES } from "./loss.js";
export type { AdaptedLinear, Adapters } from "./lora.js";
export { adaptedLinears, checkAdapters, initLoraAdapters, mergeLora } from "./lora.js";
export type { AdamWOptions, AdamWState, OptimizerParam, ScheduleKind, ScheduleOptions, UpdateResult } from "./optimizer.js";
export { AdamW, learningRate } from "./optimizer.js";
export type { StepResult, TrainerOptions } from "./trainer-core.js";
export { TrainerCore } from "./trainer-core.js";
export type { CreateTrainerOptions, Trainer } from "./trainer.js";
export { createTrainer } from "./trainer.js";
export type { PolicyValueBatch, PolicyValueStepResult, PolicyValueTrainerOptions, PolicyValueTrainingGraph, PolicyValueTrainingGraphOptions } from "./policy-value.js";
export { buildPolicyValueTrainingGraph, checkPolicyValueBatch, PolicyValueTrainerCore } from "./policy-value.js";
export type { CreatePolicyValueTrainerOptions, PolicyValueTrainer } from "./policy-value-trainer.js";
export { createPolicyValueTrainer } from "./policy-value-trainer.js";
